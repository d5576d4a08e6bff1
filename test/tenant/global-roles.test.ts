import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { expectNoEffect } from '../testkit/expectations.js'
import { createGlobalApiKey, personWithRoles, readLog, signedInPerson, sql, storedLogRows, uniqueEmail } from '../testkit/fixtures.js'

let app: TestApp
let rootIdentityId: string

const GRANT = `mutation ($identityId: String!, $roles: [String!]!) {
  addGlobalIdentityRoles(identityId: $identityId, roles: $roles) { ok error { code developerMessage } result { identity { id roles } } }
}`
const REVOKE = `mutation ($identityId: String!, $roles: [String!]!) {
  removeGlobalIdentityRoles(identityId: $identityId, roles: $roles) { ok error { code developerMessage } result { identity { id roles } } }
}`

beforeAll(async () => {
  app = await startTestApp()
  rootIdentityId = (await app.gql('{ me { id } }', { token: app.rootToken })).data.me.id
})

afterAll(() => app?.stop())

const rolesOf = async (identityId: string) =>
  (await sql<{ roles: string[] }>(app, 'SELECT roles FROM identity WHERE id = $1', [identityId]))[0]!.roles

describe('global role changes', () => {
  it('records a grant with the roles before and after, and the person behind the identity', async () => {
    const person = await signedInPerson(app)
    const response = await app.gql(GRANT, { variables: { identityId: person.identityId, roles: ['project_admin', 'project_creator'] }, token: app.rootToken })
    expect(response.data.addGlobalIdentityRoles).toEqual({
      ok: true,
      error: null,
      result: { identity: { id: person.identityId, roles: ['person', 'project_admin', 'project_creator'] } },
    })
    const [entry] = (await readLog(app, { filter: { types: ['global_role_grant'], targetPersonId: person.id } })).entries
    expect(entry).toMatchObject({
      success: true,
      invokedByIdentityId: rootIdentityId,
      personId: null,
      targetPersonId: person.id,
      errorCode: null,
      eventData: { before: { roles: ['person'] }, after: { roles: ['person', 'project_admin', 'project_creator'] } },
    })
    // The grant takes effect for the person's existing session.
    expect((await app.gql('{ me { roles } }', { token: person.token })).data.me.roles).toContain('project_admin')
  })

  it('records a revoke the same way', async () => {
    const person = await personWithRoles(app, ['project_admin'])
    const response = await app.gql(REVOKE, { variables: { identityId: person.identityId, roles: ['project_admin'] }, token: app.rootToken })
    expect(response.data.removeGlobalIdentityRoles.result.identity.roles).toEqual(['person'])
    const [entry] = (await readLog(app, { filter: { types: ['global_role_revoke'], targetPersonId: person.id } })).entries
    expect(entry!.eventData).toEqual({ before: { roles: ['person', 'project_admin'] }, after: { roles: ['person'] } })
    expect(await rolesOf(person.identityId)).toEqual(['person'])
  })

  it('grants a role listed twice once', async () => {
    const person = await signedInPerson(app)
    const response = await app.gql(GRANT, { variables: { identityId: person.identityId, roles: ['project_admin', 'project_admin'] }, token: app.rootToken })
    expect(response.data.addGlobalIdentityRoles.result.identity.roles).toEqual(['person', 'project_admin'])
    expect(await rolesOf(person.identityId)).toEqual(['person', 'project_admin'])
  })

  it('answers a grant of held roles and a revoke of absent ones ok, changing and recording nothing', async () => {
    const person = await personWithRoles(app, ['project_admin'])
    await expectNoEffect(app, async () => {
      const grant = await app.gql(GRANT, { variables: { identityId: person.identityId, roles: ['project_admin'] }, token: app.rootToken })
      expect(grant.data.addGlobalIdentityRoles).toEqual({ ok: true, error: null, result: { identity: { id: person.identityId, roles: ['person', 'project_admin'] } } })
      const revoke = await app.gql(REVOKE, { variables: { identityId: person.identityId, roles: ['project_creator'] }, token: app.rootToken })
      expect(revoke.data.removeGlobalIdentityRoles.ok).toBe(true)
    })
  })

  it('names no target person for an identity that belongs to no person (an API key)', async () => {
    const key = await createGlobalApiKey(app, [])
    await app.gql(GRANT, { variables: { identityId: key.identityId, roles: ['login'] }, token: app.rootToken })
    const [entry] = (await readLog(app, { filter: { types: ['global_role_grant'] }, limit: 1 })).entries
    expect(entry).toMatchObject({ targetPersonId: null, eventData: { before: { roles: [] }, after: { roles: ['login'] } } })
    expect((await app.gql('{ me { roles } }', { token: key.token })).data.me.roles).toEqual(['login'])
  })

  it('lets the roles of a super admin session act on the grant (a person granted super_admin may grant)', async () => {
    const admin = await personWithRoles(app, ['super_admin'])
    const target = await signedInPerson(app)
    const response = await app.gql(GRANT, { variables: { identityId: target.identityId, roles: ['project_creator'] }, token: admin.token })
    expect(response.data.addGlobalIdentityRoles.ok).toBe(true)
    const [entry] = (await readLog(app, { filter: { targetPersonId: target.id } })).entries
    expect(entry).toMatchObject({ type: 'global_role_grant', invokedByIdentityId: admin.identityId, personId: admin.id })
  })
})

describe('roles given at sign-up', () => {
  const SIGN_UP = `mutation ($email: String!, $roles: [String!]) {
    signUp(email: $email, password: "Sign-up-pass-1", roles: $roles) { ok result { person { id identity { roles } } } }
  }`

  it('are recorded as a grant to the new person', async () => {
    const response = await app.gql(SIGN_UP, { variables: { email: uniqueEmail(), roles: ['project_admin'] }, token: app.rootToken })
    const { person } = response.data.signUp.result
    expect(person.identity.roles).toEqual(['person', 'project_admin'])
    const { entries } = await readLog(app, { filter: { targetPersonId: person.id } })
    expect(entries).toMatchObject([
      { type: 'global_role_grant', invokedByIdentityId: rootIdentityId, eventData: { before: { roles: [] }, after: { roles: ['person', 'project_admin'] } } },
    ])
  })

  it('record nothing when only the default role is given', async () => {
    const response = await app.gql(SIGN_UP, { variables: { email: uniqueEmail(), roles: ['person'] }, token: app.loginToken })
    const { person } = response.data.signUp.result
    expect((await readLog(app, { filter: { targetPersonId: person.id } })).entries).toEqual([])
  })

  it('are refused to a caller who may not grant roles, creating and recording nothing', async () => {
    const email = uniqueEmail()
    const before = await storedLogRows(app)
    const response = await app.gql(SIGN_UP, { variables: { email, roles: ['super_admin'] }, token: app.loginToken })
    expect(response.errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
    expect(await sql(app, 'SELECT id FROM person WHERE email = $1', [email])).toEqual([])
    expect(await storedLogRows(app)).toEqual(before)
  })
})

describe('refused role changes change nothing and record nothing', () => {
  const refusals: Array<{ name: string; caller: () => Promise<string>; identity?: string; roles: string[]; expect: { code: string; graphql?: boolean } }> = [
    { name: 'a grant by a person session', caller: async () => (await signedInPerson(app)).token, roles: ['project_admin'], expect: { code: 'FORBIDDEN', graphql: true } },
    { name: 'a grant by a project_admin', caller: async () => (await personWithRoles(app, ['project_admin'])).token, roles: ['project_admin'], expect: { code: 'FORBIDDEN', graphql: true } },
    { name: 'a self-grant of super_admin by the login key', caller: async () => app.loginToken, roles: ['super_admin'], expect: { code: 'FORBIDDEN', graphql: true } },
    { name: 'an unknown role', caller: async () => app.rootToken, roles: ['project_admin', 'emperor'], expect: { code: 'INVALID_ROLE' } },
    { name: 'a malformed identity id', caller: async () => app.rootToken, identity: "x' OR 1=1 --", roles: ['project_admin'], expect: { code: 'IDENTITY_NOT_FOUND' } },
    { name: 'an unknown identity id', caller: async () => app.rootToken, identity: '00000000-0000-4000-8000-000000000000', roles: ['project_admin'], expect: { code: 'IDENTITY_NOT_FOUND' } },
  ]

  for (const refusal of refusals) {
    it(`refuses ${refusal.name}`, async () => {
      const target = await signedInPerson(app)
      const token = await refusal.caller()
      const before = await storedLogRows(app)
      const identityId = refusal.identity ?? target.identityId
      const response = await app.gql(GRANT, { variables: { identityId, roles: refusal.roles }, token })
      if (refusal.expect.graphql) {
        expect(response.data?.addGlobalIdentityRoles ?? null).toBeNull()
        expect(response.errors?.[0]).toMatchObject({ extensions: { code: 'FORBIDDEN' }, message: 'You are not allowed to grant global roles.' })
      } else {
        expect(response.data.addGlobalIdentityRoles).toMatchObject({ ok: false, error: { code: refusal.expect.code }, result: null })
      }
      expect(await storedLogRows(app)).toEqual(before)
      expect(await rolesOf(target.identityId)).toEqual(['person'])
    })
  }

  it('refuses a revoke by a person session', async () => {
    const target = await personWithRoles(app, ['project_admin'])
    const before = await storedLogRows(app)
    const response = await app.gql(REVOKE, { variables: { identityId: target.identityId, roles: ['project_admin'] }, token: target.token })
    expect(response.errors?.[0]).toMatchObject({ extensions: { code: 'FORBIDDEN' }, message: 'You are not allowed to revoke global roles.' })
    expect(await storedLogRows(app)).toEqual(before)
    expect(await rolesOf(target.identityId)).toEqual(['person', 'project_admin'])
  })
})
