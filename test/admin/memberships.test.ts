import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashToken } from '../../src/tenant/apiKeys/tokens.js'
import { startTestApp, type TestApp } from '../testkit/app.js'
import { addProjectMember, createApiKeyForProject, createProject, signUpPerson, sql } from '../testkit/fixtures.js'
import { entriesSince, expectNoEffect, expectSingleEntry, logSize } from '../testkit/expectations.js'

let app: TestApp
let project: { id: string; slug: string }
beforeAll(async () => {
  app = await startTestApp()
  project = await createProject(app, { slug: 'members' })
})
afterAll(() => app?.stop())

const MEMBER_MUTATION = (name: string) => `mutation ($slug: String!, $identityId: String!, $memberships: [MembershipInput!]!) {
  ${name}(projectSlug: $slug, identityId: $identityId, memberships: $memberships) { ok error { code developerMessage membershipValidation { code role variable } } }
}`
const REMOVE = `mutation ($slug: String!, $identityId: String!) {
  removeProjectMember(projectSlug: $slug, identityId: $identityId) { ok error { code } }
}`
const editor = { role: 'editor', variables: [{ name: 'language', values: ['cs', 'en'] }] }
const viewer = { role: 'viewer', variables: [] }


describe('project memberships', () => {
  it('adds, updates and removes, each with one entry holding before and after', async () => {
    const person = await signUpPerson(app)
    const mark = await logSize(app)
    const call = (name: string, memberships: unknown[]) =>
      app.gql(MEMBER_MUTATION(name), { variables: { slug: project.slug, identityId: person.identityId, memberships }, token: app.rootToken })

    expect((await call('addProjectMember', [editor])).data.addProjectMember).toEqual({ ok: true, error: null })
    expect((await call('updateProjectMember', [viewer, { ...editor, variables: [{ name: 'language', values: ['de'] }] }])).data.updateProjectMember.ok).toBe(true)
    // The memberships it has, in another order: no change, and no entry (checked below).
    const rows = () => sql(app, 'SELECT id, role, variables FROM project_membership WHERE identity_id = $1 ORDER BY id', [person.identityId])
    const stored = await rows()
    expect((await call('updateProjectMember', [{ ...editor, variables: [{ name: 'language', values: ['de'] }] }, viewer])).data.updateProjectMember.ok).toBe(true)
    expect(await rows()).toEqual(stored)
    const removed = await app.gql(REMOVE, { variables: { slug: project.slug, identityId: person.identityId }, token: app.rootToken })
    expect(removed.data.removeProjectMember).toEqual({ ok: true, error: null })

    const entries = await entriesSince(app, mark)
    const common = { projectId: project.id, identityId: person.identityId }
    const updated = [{ role: 'editor', variables: [{ name: 'language', values: ['de'] }] }, viewer]
    expect(entries.map((entry) => [entry.type, entry.eventData])).toEqual([
      ['project_membership_create', { ...common, before: [], after: [editor] }],
      ['project_membership_update', { ...common, before: [editor], after: updated }],
      ['project_membership_remove', { ...common, before: updated, after: [] }],
    ])
    for (const entry of entries) expect(entry).toMatchObject({ targetPersonId: person.id, personId: null, success: true })
  })

  it('refuses unknown projects and identities, double adds, non-members and invalid memberships without any effect', async () => {
    const member = await signUpPerson(app)
    await addProjectMember(app, project.slug, member.identityId, [viewer])
    const stranger = await signUpPerson(app)
    const unknownId = '00000000-0000-4000-8000-000000000000'
    const cases: [string, Record<string, unknown>, string][] = [
      ['addProjectMember', { slug: 'nope', identityId: stranger.identityId, memberships: [viewer] }, 'PROJECT_NOT_FOUND'],
      ['addProjectMember', { slug: project.slug, identityId: unknownId, memberships: [viewer] }, 'IDENTITY_NOT_FOUND'],
      ['addProjectMember', { slug: project.slug, identityId: 'not-a-uuid', memberships: [viewer] }, 'IDENTITY_NOT_FOUND'],
      ['addProjectMember', { slug: project.slug, identityId: member.identityId, memberships: [editor] }, 'ALREADY_MEMBER'],
      ['addProjectMember', { slug: project.slug, identityId: stranger.identityId, memberships: [] }, 'INVALID_MEMBERSHIP'],
      ['addProjectMember', { slug: project.slug, identityId: stranger.identityId, memberships: [viewer, viewer] }, 'INVALID_MEMBERSHIP'],
      ['updateProjectMember', { slug: project.slug, identityId: stranger.identityId, memberships: [viewer] }, 'NOT_MEMBER'],
      ['updateProjectMember', { slug: 'nope', identityId: member.identityId, memberships: [viewer] }, 'PROJECT_NOT_FOUND'],
    ]
    await expectNoEffect(app, async () => {
      for (const [name, variables, code] of cases) {
        const response = await app.gql(MEMBER_MUTATION(name), { variables, token: app.rootToken })
        expect(response.data[name].error.code, `${name} ${JSON.stringify(variables)}`).toBe(code)
      }
      const invalid = await app.gql(MEMBER_MUTATION('addProjectMember'), {
        variables: {
          slug: project.slug,
          identityId: stranger.identityId,
          memberships: [{ role: 'bad role', variables: [] }, { role: 'ok', variables: [{ name: 'lang', values: [] }] }],
        },
        token: app.rootToken,
      })
      expect(invalid.data.addProjectMember.error.membershipValidation).toEqual([
        { code: 'ROLE_NOT_FOUND', role: 'bad role', variable: null },
        { code: 'VARIABLE_EMPTY', role: 'ok', variable: 'lang' },
      ])
      for (const [slug, identityId, code] of [
        [project.slug, stranger.identityId, 'NOT_MEMBER'],
        ['nope', member.identityId, 'PROJECT_NOT_FOUND'],
      ]) {
        const response = await app.gql(REMOVE, { variables: { slug, identityId }, token: app.rootToken })
        expect(response.data.removeProjectMember.error.code).toBe(code)
      }
    })
  })
})

describe('createApiKey', () => {
  it('creates a project member key and records api_key_create with its memberships, never the token or hash', async () => {
    const mark = await logSize(app)
    const key = await createApiKeyForProject(app, project.slug, [editor], { description: 'CI deploy' })
    const entry = await expectSingleEntry(app, mark, {
      type: 'api_key_create',
      targetPersonId: null,
      eventData: { apiKeyId: key.id, identityId: key.identityId, description: 'CI deploy', memberships: [editor] },
    })
    expect(JSON.stringify(entry)).not.toContain(key.token)
    expect(JSON.stringify(entry)).not.toContain(hashToken(key.token))
    const seen = await app.gql('{ me { projects { project { slug } memberships { role } } } }', { token: key.token })
    expect(seen.data.me.projects).toEqual([{ project: { slug: project.slug }, memberships: [{ role: 'editor' }] }])
  })

  it('accepts a caller-computed token hash and refuses a reused or malformed one, unknown projects and bad memberships', async () => {
    const token = 'my-own-token-0123456789'
    const key = await createApiKeyForProject(app, project.slug, [viewer], { tokenHash: hashToken(token) })
    expect(key.token).toBeNull()
    expect((await app.gql('{ me { id } }', { token })).data.me.id).toBe(key.identityId)
    const CREATE = `mutation ($slug: String!, $memberships: [MembershipInput!]!, $hash: String) {
      createApiKey(projectSlug: $slug, memberships: $memberships, description: "x", tokenHash: $hash) { ok error { code } }
    }`
    await expectNoEffect(app, async () => {
      const reused = await app.gql(CREATE, { variables: { slug: project.slug, memberships: [viewer], hash: hashToken(token) }, token: app.rootToken })
      expect(reused.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT')
      const malformed = await app.gql(CREATE, { variables: { slug: project.slug, memberships: [viewer], hash: 'XYZ' }, token: app.rootToken })
      expect(malformed.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'tokenHash' })
      const unknown = await app.gql(CREATE, { variables: { slug: 'nope', memberships: [viewer] }, token: app.rootToken })
      expect(unknown.data.createApiKey.error.code).toBe('PROJECT_NOT_FOUND')
      const empty = await app.gql(CREATE, { variables: { slug: project.slug, memberships: [] }, token: app.rootToken })
      expect(empty.data.createApiKey.error.code).toBe('INVALID_MEMBERSHIP')
    })
  })
})
