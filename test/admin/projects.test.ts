import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decrypt } from '../../src/crypto/encryption.js'
import { projectSecretBinding } from '../../src/tenant/projects/projects.js'
import { startTestApp, type TestApp } from '../testkit/app.js'
import { createApiKeyForProject, createProject, personWithRoles, projectAdmin, sql } from '../testkit/fixtures.js'
import { entriesSince, expectNoEffect, expectSingleEntry, logSize } from '../testkit/expectations.js'

let app: TestApp
beforeAll(async () => {
  app = await startTestApp()
})
afterAll(() => app?.stop())

const CREATE = `mutation ($slug: String!, $name: String, $config: Json, $secrets: [ProjectSecret!], $options: CreateProjectOptions) {
  createProject(projectSlug: $slug, name: $name, config: $config, secrets: $secrets, options: $options) {
    ok error { code developerMessage } result { deployerApiKey { id token identity { id } } }
  }
}`
const UPDATE = `mutation ($slug: String!, $name: String, $config: Json, $merge: Boolean) {
  updateProject(projectSlug: $slug, name: $name, config: $config, mergeConfig: $merge) { ok error { code } }
}`
const SET_SECRET = `mutation ($slug: String!, $key: String!, $value: String!) {
  setProjectSecret(projectSlug: $slug, key: $key, value: $value) { ok error { code } }
}`


const secretsOf = (slug: string) =>
  sql<{ key: string; value_encrypted: Uint8Array; version: number }>(
    app,
    'SELECT s.key, s.value_encrypted, s.version FROM project_secret s JOIN project p ON p.id = s.project_id WHERE p.slug = $1 ORDER BY s.key',
    [slug],
  )

describe('createProject', () => {
  it('creates the project with encrypted secrets and records project_create with key names only', async () => {
    const mark = await logSize(app)
    const response = await app.gql(CREATE, {
      variables: {
        slug: 'blog',
        name: 'Blog',
        config: { theme: 'dark' },
        secrets: [{ key: 'smtp.password', value: 'hunter2-is-secret' }, { key: 'apiKey', value: 'k-123' }],
        options: { noDeployToken: true },
      },
      token: app.rootToken,
    })
    expect(response.data.createProject).toEqual({ ok: true, error: null, result: { deployerApiKey: null } })
    const [project] = await sql(app, "SELECT id, name, config FROM project WHERE slug = 'blog'")
    expect(project).toMatchObject({ name: 'Blog', config: { theme: 'dark' } })
    const projectId = project!.id as string

    const secrets = await secretsOf('blog')
    expect(secrets.map((secret) => secret.key)).toEqual(['apiKey', 'smtp.password'])
    const stored = Buffer.from(secrets[1]!.value_encrypted)
    expect(stored.includes(Buffer.from('hunter2-is-secret'))).toBe(false)
    expect(String(decrypt(app.app.services.encryptionKey, stored, projectSecretBinding(projectId, 'smtp.password')))).toBe('hunter2-is-secret')
    // Bound to its project and key: the same ciphertext does not decrypt as another secret.
    expect(() => decrypt(app.app.services.encryptionKey, stored, projectSecretBinding(projectId, 'apiKey'))).toThrow()

    const entry = await expectSingleEntry(app, mark, {
      type: 'project_create',
      success: true,
      personId: null,
      targetPersonId: null,
      eventData: { projectSlug: 'blog', name: 'Blog', secretKeys: ['apiKey', 'smtp.password'] },
    })
    expect(JSON.stringify(entry)).not.toContain('hunter2')
  })

  it('makes a project_creator the admin member and a deployer key, each with its own entry', async () => {
    const creator = await personWithRoles(app, ['project_creator'])
    const mark = await logSize(app)
    const response = await app.gql(CREATE, { variables: { slug: 'shop' }, token: creator.token })
    const deployer = response.data.createProject.result.deployerApiKey
    expect(deployer.token).toMatch(/^[0-9a-f]{40}$/)
    const entries = await entriesSince(app, mark)
    const [project] = await sql<{ id: string }>(app, "SELECT id FROM project WHERE slug = 'shop'")
    expect(entries.map((entry) => [entry.type, entry.eventData])).toEqual([
      ['project_create', { projectSlug: 'shop', name: 'shop', secretKeys: [] }],
      ['project_membership_create', { projectId: project!.id, identityId: creator.identityId, before: [], after: [{ role: 'admin', variables: [] }] }],
      [
        'api_key_create',
        { apiKeyId: deployer.id, identityId: deployer.identity.id, description: 'Deployer of shop', memberships: [{ role: 'deployer', variables: [] }] },
      ],
    ])
    expect(entries.every((entry) => entry.invokedByIdentityId === creator.identityId && entry.personId === creator.id)).toBe(true)
    expect(entries.map((entry) => entry.targetPersonId)).toEqual([null, creator.id, null])
    // The admin membership lets the creator manage the project.
    expect((await app.gql(UPDATE, { variables: { slug: 'shop', name: 'Shop' }, token: creator.token })).data.updateProject.ok).toBe(true)
    // The deployer key is a member of the project and can see it.
    const seen = await app.gql('{ projects { slug } }', { token: deployer.token })
    expect(seen.data.projects).toEqual([{ slug: 'shop' }])
  })

  it('refuses a duplicate slug, a malformed slug, a non-object config, and repeated secret keys without any effect', async () => {
    await createProject(app, { slug: 'taken' })
    await expectNoEffect(app, async () => {
      const duplicate = await app.gql(CREATE, { variables: { slug: 'taken', options: { noDeployToken: true } }, token: app.rootToken })
      expect(duplicate.data.createProject.error.code).toBe('ALREADY_EXISTS')
      for (const variables of [
        { slug: 'Not A Slug' },
        { slug: 'fine', config: '{"theme": "dark"' },
        { slug: 'fine', config: [1, 2] },
        { slug: 'fine', secrets: [{ key: 'a', value: '1' }, { key: 'a', value: '2' }] },
        { slug: 'fine', secrets: [{ key: 'spaces are bad', value: '1' }] },
      ]) {
        const response = await app.gql(CREATE, { variables, token: app.rootToken })
        expect(response.errors?.[0]?.extensions?.code, JSON.stringify(variables)).toBe('BAD_USER_INPUT')
      }
      // A deploy token hash malformed or in use is named as the option it came in.
      const inUse = createHash('sha256').update(app.rootToken).digest('hex')
      for (const deployTokenHash of ['not-a-hash', inUse]) {
        const response = await app.gql(CREATE, { variables: { slug: 'fine', options: { deployTokenHash } }, token: app.rootToken })
        expect(response.errors?.[0]?.extensions, deployTokenHash).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'options.deployTokenHash' })
      }
      const malformedLiteral = await app.gql('mutation { createProject(projectSlug: "x", config: {a: }) { ok } }', { token: app.rootToken })
      expect(malformedLiteral.errors?.[0]?.extensions?.code).toBe('GRAPHQL_PARSE_FAILED')
    })
  })
})

describe('updateProject', () => {
  it('records before and after of what changed only', async () => {
    await createProject(app, { slug: 'docs', name: 'Docs', config: { a: 1, nested: { b: 2, c: 3 } } })
    const mark = await logSize(app)
    const merged = await app.gql(UPDATE, { variables: { slug: 'docs', config: { nested: { c: 4 } }, merge: true }, token: app.rootToken })
    expect(merged.data.updateProject).toEqual({ ok: true, error: null })
    const renamed = await app.gql(UPDATE, { variables: { slug: 'docs', name: 'Documentation', config: { z: true } }, token: app.rootToken })
    expect(renamed.data.updateProject.ok).toBe(true)
    const [project] = await sql(app, "SELECT name, config FROM project WHERE slug = 'docs'")
    expect(project).toEqual({ name: 'Documentation', config: { z: true } })
    const entries = await entriesSince(app, mark)
    expect(entries.map((entry) => entry.eventData)).toEqual([
      { projectSlug: 'docs', before: { config: { a: 1, nested: { b: 2, c: 3 } } }, after: { config: { a: 1, nested: { b: 2, c: 4 } } } },
      { projectSlug: 'docs', before: { name: 'Docs', config: { a: 1, nested: { b: 2, c: 4 } } }, after: { name: 'Documentation', config: { z: true } } },
    ])
    expect(entries.every((entry) => entry.type === 'project_update' && entry.targetPersonId === null)).toBe(true)
    // The same name and config again change nothing, and record nothing.
    await expectNoEffect(app, async () => {
      const same = await app.gql(UPDATE, { variables: { slug: 'docs', name: 'Documentation', config: { z: true } }, token: app.rootToken })
      expect(same.data.updateProject).toEqual({ ok: true, error: null })
    })
  })

  it('refuses a "__proto__" key in a config, which the database and the log would not keep alike', async () => {
    await createProject(app, { slug: 'proto', config: { a: 1 } })
    await expectNoEffect(app, async () => {
      // Written as JSON text: a "__proto__" key in an object literal would set its prototype here already.
      const response = await fetch(`${app.url}/tenant`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${app.rootToken}` },
        body: `{ "query": ${JSON.stringify(UPDATE)}, "variables": { "slug": "proto", "merge": true, "config": { "x": { "__proto__": { "secretFlag": "on" } } } } }`,
      })
      expect((await response.json()).errors).toEqual([{ message: 'A JSON object must not have the key "__proto__".', extensions: { code: 'BAD_USER_INPUT', variable: 'config' } }])
      const literal = await app.gql('mutation { updateProject(projectSlug: "proto", config: { __proto__: { secretFlag: "on" } }, mergeConfig: true) { ok } }', { token: app.rootToken })
      expect(literal.errors).toEqual([{ message: 'A JSON object must not have the key "__proto__".', extensions: { code: 'BAD_USER_INPUT' } }])
    })
  })

  it('answers PROJECT_NOT_FOUND or BAD_USER_INPUT without any effect', async () => {
    await createProject(app, { slug: 'stable', config: { keep: true } })
    await expectNoEffect(app, async () => {
      expect((await app.gql(UPDATE, { variables: { slug: 'missing', name: 'x' }, token: app.rootToken })).data.updateProject.error.code).toBe(
        'PROJECT_NOT_FOUND',
      )
      const notObject = await app.gql(UPDATE, { variables: { slug: 'stable', config: 'not json {' }, token: app.rootToken })
      expect(notObject.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'config' })
    })
  })
})

describe('setProjectSecret', () => {
  it('stores the value encrypted, bumps the version on change, and records the key only', async () => {
    await createProject(app, { slug: 'vault' })
    const mark = await logSize(app)
    for (const value of ['first-value', 'second-value']) {
      expect((await app.gql(SET_SECRET, { variables: { slug: 'vault', key: 'token', value }, token: app.rootToken })).data.setProjectSecret.ok).toBe(true)
    }
    const [secret] = await secretsOf('vault')
    expect(secret!.version).toBe(2)
    const [project] = await sql<{ id: string }>(app, "SELECT id FROM project WHERE slug = 'vault'")
    expect(String(decrypt(app.app.services.encryptionKey, Buffer.from(secret!.value_encrypted), projectSecretBinding(project!.id, 'token')))).toBe('second-value')
    const entries = await entriesSince(app, mark)
    expect(entries.map((entry) => [entry.type, entry.eventData])).toEqual([
      ['project_secret_change', { projectSlug: 'vault', key: 'token' }],
      ['project_secret_change', { projectSlug: 'vault', key: 'token' }],
    ])
  })

  it('answers PROJECT_NOT_FOUND for an unknown project without any effect', async () => {
    await expectNoEffect(app, async () => {
      const response = await app.gql(SET_SECRET, { variables: { slug: 'nowhere', key: 'k', value: 'v' }, token: app.rootToken })
      expect(response.data.setProjectSecret.error.code).toBe('PROJECT_NOT_FOUND')
    })
  })
})

describe('project queries', () => {
  it('shows a project admin its project with members, and nothing of others', async () => {
    const mine = await createProject(app, { slug: 'mine' })
    await createProject(app, { slug: 'theirs' })
    const admin = await projectAdmin(app, mine.slug)
    const projects = await app.gql('{ projects { slug } }', { token: admin.token })
    expect(projects.data.projects).toEqual([{ slug: 'mine' }])
    const bySlug = await app.gql(
      `{ projectBySlug(slug: "mine") { id slug members(input: { filter: { memberType: PERSON } }) { identity { id person { email } } memberships { role variables { name values } } } } }`,
      { token: admin.token },
    )
    expect(bySlug.data.projectBySlug).toEqual({
      id: mine.id,
      slug: 'mine',
      members: [{ identity: { id: admin.identityId, person: { email: admin.email } }, memberships: [{ role: 'editor', variables: [] }] }],
    })
    const memberships = await app.gql(`query ($id: String!) { projectMemberships(projectSlug: "mine", identityId: $id) { role } }`, {
      variables: { id: admin.identityId },
      token: admin.token,
    })
    expect(memberships.data.projectMemberships).toEqual([{ role: 'editor' }])
    const me = await app.gql('{ me { projects { project { slug } memberships { role } } } }', { token: admin.token })
    expect(me.data.me.projects).toEqual([{ project: { slug: 'mine' }, memberships: [{ role: 'editor' }] }])
    const key = await createApiKeyForProject(app, 'mine', [{ role: 'reader', variables: [] }])
    const filtered = async (filter: Record<string, unknown>) => {
      const response = await app.gql('query ($filter: ProjectMembersFilter) { projectBySlug(slug: "mine") { members(input: { filter: $filter }) { identity { id } } } }', {
        variables: { filter },
        token: admin.token,
      })
      return response.data.projectBySlug.members.map((member: { identity: { id: string } }) => member.identity.id)
    }
    expect(await filtered({ memberType: 'API_KEY' })).toEqual([key.identityId])
    expect(await filtered({})).toEqual([admin.identityId, key.identityId])
    expect(await filtered({ email: [admin.email.toUpperCase()] })).toEqual([admin.identityId])
    expect(await filtered({ personId: [admin.id], identityId: [key.identityId] })).toEqual([])
    const other = await app.gql('{ projectBySlug(slug: "theirs") { id } }', { token: admin.token })
    expect(other.errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
    expect(other.errors?.[0]?.message).toBe('You are not allowed to view this project.')
  })
})
