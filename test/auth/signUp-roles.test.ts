import { afterAll, beforeAll, expect, it } from 'vitest'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { createGlobalApiKey, personWithRoles, sql, strongPassword, uniqueEmail } from '../testkit/fixtures.js'

/**
 * signUp with roles is a grant like addGlobalIdentityRoles, and bound the same
 * way: only global roles, and only roles that give nothing the granter does not
 * hold (super_admin only from a super admin). Here a project_admin is granted role
 * granting, key creation and sign-up through CUSTOS_ROLE_GRANTS, and project_creator
 * the audit log, which project_admin does not hold.
 */

let app: TestApp

beforeAll(async () => {
  app = await startTestApp({
    CUSTOS_ROLE_GRANTS: JSON.stringify({
      project_admin: ['identity:addGlobalRoles', 'apiKey:createGlobal', 'person:signUp'],
      project_creator: ['system:viewAuthLog'],
      person: ['idp:view'],
    }),
  })
})
afterAll(() => app?.stop())

const signUpWithRoles = (token: string, email: string, roles: string[]) =>
  app.gql('mutation ($email: String!, $password: String!, $roles: [String!]) { signUp(email: $email, password: $password, roles: $roles) { ok error { code } } }', {
    variables: { email, password: strongPassword(), roles },
    token,
  })

const identityRolesOf = async (email: string) =>
  (await sql<{ roles: string[] }>(app, 'SELECT identity.roles FROM person JOIN identity ON identity.id = person.identity_id WHERE person.email = $1', [email]))[0]?.roles

it('refuses super_admin to a role granter who is not a super admin, as addGlobalIdentityRoles does', async () => {
  const granter = await personWithRoles(app, ['project_admin'])
  const email = uniqueEmail('escalated')
  const response = await signUpWithRoles(granter.token, email, ['super_admin'])
  expect(response.errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
  expect(await identityRolesOf(email)).toBeUndefined()
})

it('refuses roles that are not global roles', async () => {
  const email = uniqueEmail('unknown-role')
  const response = await signUpWithRoles(app.rootToken, email, ['project_creator', 'no_such_role'])
  expect(response.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT')
  expect(await identityRolesOf(email)).toBeUndefined()
})

it('lets a role granter give the roles it holds, refuses one that gives more (a privilege it lacks), and lets a super admin give super_admin', async () => {
  const granter = await personWithRoles(app, ['project_admin'])
  const peer = uniqueEmail('peer')
  expect((await signUpWithRoles(granter.token, peer, ['project_admin'])).data.signUp.ok).toBe(true)
  expect(await identityRolesOf(peer)).toEqual(['person', 'project_admin'])
  const creator = uniqueEmail('creator')
  const refused = await signUpWithRoles(granter.token, creator, ['project_creator'])
  expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
  expect(await identityRolesOf(creator)).toBeUndefined()
  const admin = uniqueEmail('admin')
  expect((await signUpWithRoles(app.rootToken, admin, ['super_admin'])).data.signUp.ok).toBe(true)
  expect(await identityRolesOf(admin)).toEqual(['person', 'super_admin'])
})

it('does not let a delegate of addGlobalIdentityRoles or createGlobalApiKey give out a privilege it lacks (here the audit log)', async () => {
  const delegate = await personWithRoles(app, ['project_admin'])
  const readsLog = async (token: string) => (await app.gql('{ authLogTypes { type } }', { token })).errors?.[0]?.extensions?.code ?? 'allowed'
  expect(await readsLog(delegate.token)).toBe('FORBIDDEN')

  const key = await app.gql('mutation { createGlobalApiKey(description: "mine", roles: ["project_creator"]) { ok error { code developerMessage } result { apiKey { id } } } }', {
    token: delegate.token,
  })
  expect(key.data.createGlobalApiKey).toMatchObject({ ok: false, error: { code: 'INVALID_MEMBERSHIP' }, result: null })
  expect(key.data.createGlobalApiKey.error.developerMessage).toContain('project_creator')

  const grant = await app.gql('mutation ($id: String!) { addGlobalIdentityRoles(identityId: $id, roles: ["project_creator"]) { ok error { code } } }', {
    variables: { id: delegate.identityId },
    token: delegate.token,
  })
  expect(grant.data.addGlobalIdentityRoles).toEqual({ ok: false, error: { code: 'INVALID_ROLE' } })
  expect(await readsLog(delegate.token)).toBe('FORBIDDEN')
  const [row] = await sql<{ count: number }>(app, "SELECT count(*)::int AS count FROM person_auth_log WHERE type = 'api_key_create' AND event_data ->> 'description' = 'mine'")
  expect(row!.count).toBe(0)

  // person is anyone's to give, but not with what CUSTOS_ROLE_GRANTS adds to it (here idp:view): a delegate key that is no person lacks it.
  const delegateKey = await createGlobalApiKey(app, ['project_admin'])
  const personKey = await app.gql('mutation { createGlobalApiKey(description: "person", roles: ["person"]) { ok error { code } } }', { token: delegateKey.token })
  expect(personKey.data.createGlobalApiKey).toEqual({ ok: false, error: { code: 'INVALID_MEMBERSHIP' } })

  // What it holds itself it may hand out: a key with project_admin.
  const peerKey = await app.gql('mutation { createGlobalApiKey(description: "peer", roles: ["project_admin"]) { ok } }', { token: delegate.token })
  expect(peerKey.data.createGlobalApiKey.ok).toBe(true)
})
