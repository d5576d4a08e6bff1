import { afterAll, beforeAll, expect, it } from 'vitest'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { personWithRoles, sql, strongPassword, uniqueEmail } from '../testkit/fixtures.js'

/**
 * signUp with roles is a grant like addGlobalIdentityRoles, and bound the same
 * way: only global roles, and super_admin only from a super admin. Here a
 * project_admin is granted role granting and sign-up through CUSTOS_ROLE_GRANTS.
 */

let app: TestApp

beforeAll(async () => {
  app = await startTestApp({ CUSTOS_ROLE_GRANTS: JSON.stringify({ project_admin: ['identity:addGlobalRoles', 'person:signUp'] }) })
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

it('lets a role granter give other global roles, and a super admin super_admin', async () => {
  const granter = await personWithRoles(app, ['project_admin'])
  const creator = uniqueEmail('creator')
  expect((await signUpWithRoles(granter.token, creator, ['project_creator'])).data.signUp.ok).toBe(true)
  expect(await identityRolesOf(creator)).toEqual(['person', 'project_creator'])
  const admin = uniqueEmail('admin')
  expect((await signUpWithRoles(app.rootToken, admin, ['super_admin'])).data.signUp.ok).toBe(true)
  expect(await identityRolesOf(admin)).toEqual(['person', 'super_admin'])
})
