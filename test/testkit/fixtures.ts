import { randomBytes } from 'node:crypto'
import type { TestApp } from './app.js'

/** Fixture builders: each creates what one test needs through the public API. */

export const uniqueEmail = (prefix = 'person') => `${prefix}-${randomBytes(5).toString('hex')}@example.test`

export const strongPassword = () => `Pw-${randomBytes(9).toString('base64url')}9a`

export interface TestPerson {
  readonly id: string
  readonly identityId: string
  readonly email: string
  readonly password: string
}

export interface SignedInPerson extends TestPerson {
  readonly token: string
}

/** Signs a new person up with the login token. */
export async function signUpPerson(app: TestApp, options: { email?: string; password?: string; name?: string } = {}): Promise<TestPerson> {
  const email = options.email ?? uniqueEmail()
  const password = options.password ?? strongPassword()
  const response = await app.gql(
    `mutation ($email: String!, $password: String!, $name: String) {
      signUp(email: $email, password: $password, name: $name) {
        ok error { code developerMessage } result { person { id identity { id } } }
      }
    }`,
    { variables: { email, password, name: options.name }, token: app.loginToken },
  )
  const result = response.data?.signUp
  if (!result?.ok) throw new Error(`signUp failed: ${JSON.stringify(response)}`)
  return { id: result.result.person.id, identityId: result.result.person.identity.id, email, password }
}

/** Signs a person in with the login token and returns their session token. */
export async function signIn(app: TestApp, person: { email: string; password: string }): Promise<string> {
  const response = await app.gql(
    `mutation ($email: String!, $password: String!) {
      signIn(email: $email, password: $password) { ok error { code } result { token } }
    }`,
    { variables: { email: person.email, password: person.password }, token: app.loginToken },
  )
  const result = response.data?.signIn
  if (!result?.ok) throw new Error(`signIn failed: ${JSON.stringify(response)}`)
  return result.result.token
}

export async function signedInPerson(app: TestApp, options: Parameters<typeof signUpPerson>[1] = {}): Promise<SignedInPerson> {
  const person = await signUpPerson(app, options)
  return { ...person, token: await signIn(app, person) }
}

/** Grants global roles with the root token. */
export async function grantRoles(app: TestApp, identityId: string, roles: string[]): Promise<void> {
  const response = await app.gql(
    `mutation ($identityId: String!, $roles: [String!]!) {
      addGlobalIdentityRoles(identityId: $identityId, roles: $roles) { ok error { code developerMessage } }
    }`,
    { variables: { identityId, roles }, token: app.rootToken },
  )
  if (!response.data?.addGlobalIdentityRoles?.ok) throw new Error(`grant failed: ${JSON.stringify(response)}`)
}

/** A permanent API key with the given global roles; returns its token and identity. */
export async function createGlobalApiKey(
  app: TestApp,
  roles: string[],
  options: { trustForwardedClientInfo?: boolean } = {},
): Promise<{ id: string; token: string; identityId: string }> {
  const response = await app.gql(
    `mutation ($roles: [String!], $options: CreateApiKeyOptions) {
      createGlobalApiKey(description: "test key", roles: $roles, options: $options) {
        ok error { code developerMessage } result { apiKey { id token identity { id } } }
      }
    }`,
    { variables: { roles, options }, token: app.rootToken },
  )
  const result = response.data?.createGlobalApiKey
  if (!result?.ok) throw new Error(`createGlobalApiKey failed: ${JSON.stringify(response)}`)
  return { id: result.result.apiKey.id, token: result.result.apiKey.token, identityId: result.result.apiKey.identity.id }
}

export interface LogEntry {
  id: string
  createdAt: string
  type: string
  success: boolean
  invokedByIdentityId: string | null
  personId: string | null
  targetPersonId: string | null
  personInputIdentifier: string | null
  errorCode: string | null
  clientIp: string | null
  userAgent: string | null
  metadata: Record<string, unknown> | null
  eventData: Record<string, unknown> | null
}

const entryFields =
  'id createdAt type success invokedByIdentityId personId targetPersonId personInputIdentifier errorCode clientIp userAgent metadata eventData'

/** Reads the log with the root token (newest first). */
export async function readLog(
  app: TestApp,
  args: { filter?: Record<string, unknown>; limit?: number; offset?: number } = {},
): Promise<{ entries: LogEntry[]; hasMore: boolean }> {
  const response = await app.gql(
    `query ($filter: AuthLogFilter, $limit: Int, $offset: Int) {
      authLog(filter: $filter, limit: $limit, offset: $offset) { hasMore entries { ${entryFields} } }
    }`,
    { variables: args, token: app.rootToken },
  )
  if (!response.data?.authLog) throw new Error(`authLog failed: ${JSON.stringify(response)}`)
  return response.data.authLog
}

/** Raw SQL on the app's own database, for setting up what the API cannot (and for reading rows back). */
export function sql<Row extends Record<string, unknown> = Record<string, unknown>>(app: TestApp, text: string, params?: unknown[]) {
  return app.app.services.db.session((session) => session.query<Row>(text, params))
}

/** Creates a project with the root token (no deployer key unless asked for). */
export async function createProject(
  app: TestApp,
  options: { slug?: string; name?: string; config?: unknown; secrets?: { key: string; value: string }[]; token?: string } = {},
): Promise<{ id: string; slug: string }> {
  const slug = options.slug ?? `project-${randomBytes(4).toString('hex')}`
  const response = await app.gql(
    `mutation ($slug: String!, $name: String, $config: Json, $secrets: [ProjectSecret!]) {
      createProject(projectSlug: $slug, name: $name, config: $config, secrets: $secrets, options: { noDeployToken: true }) {
        ok error { code developerMessage }
      }
    }`,
    { variables: { slug, name: options.name, config: options.config, secrets: options.secrets }, token: options.token ?? app.rootToken },
  )
  if (!response.data?.createProject?.ok) throw new Error(`createProject failed: ${JSON.stringify(response)}`)
  const [row] = await sql<{ id: string }>(app, 'SELECT id FROM project WHERE slug = $1', [slug])
  return { id: row!.id, slug }
}

export type MembershipInput = { role: string; variables: { name: string; values: string[] }[] }

/** Adds an identity to a project with the root token. */
export async function addProjectMember(app: TestApp, projectSlug: string, identityId: string, memberships: MembershipInput[]): Promise<void> {
  const response = await app.gql(
    `mutation ($projectSlug: String!, $identityId: String!, $memberships: [MembershipInput!]!) {
      addProjectMember(projectSlug: $projectSlug, identityId: $identityId, memberships: $memberships) { ok error { code developerMessage } }
    }`,
    { variables: { projectSlug, identityId, memberships }, token: app.rootToken },
  )
  if (!response.data?.addProjectMember?.ok) throw new Error(`addProjectMember failed: ${JSON.stringify(response)}`)
}

/** A signed-in person with the global role project_admin and a plain membership in the project. */
export async function projectAdmin(app: TestApp, projectSlug: string): Promise<SignedInPerson> {
  const person = await signUpPerson(app)
  await grantRoles(app, person.identityId, ['project_admin'])
  await addProjectMember(app, projectSlug, person.identityId, [{ role: 'editor', variables: [] }])
  return { ...person, token: await signIn(app, person) }
}

/** A signed-in person who also holds `roles` (granted by root). */
export async function personWithRoles(app: TestApp, roles: string[]): Promise<SignedInPerson> {
  const person = await signedInPerson(app)
  if (roles.length > 0) await grantRoles(app, person.identityId, roles)
  return person
}

/** The mails in the outbox (no SMTP_URL in tests), newest first. */
export const outbox = (app: TestApp) =>
  sql<{ recipient: string; subject: string; body: string }>(app, 'SELECT recipient, subject, body FROM mail_outbox ORDER BY created_at DESC')

/** A project API key (createApiKey) made with the root token. */
export async function createApiKeyForProject(
  app: TestApp,
  projectSlug: string,
  memberships: MembershipInput[],
  options: { description?: string; tokenHash?: string } = {},
): Promise<{ id: string; token: string; identityId: string }> {
  const response = await app.gql(
    `mutation ($slug: String!, $memberships: [MembershipInput!]!, $description: String!, $tokenHash: String) {
      createApiKey(projectSlug: $slug, memberships: $memberships, description: $description, tokenHash: $tokenHash) {
        ok error { code developerMessage } result { apiKey { id token identity { id } } }
      }
    }`,
    { variables: { slug: projectSlug, memberships, description: options.description ?? 'test key', tokenHash: options.tokenHash }, token: app.rootToken },
  )
  const result = response.data?.createApiKey
  if (!result?.ok) throw new Error(`createApiKey failed: ${JSON.stringify(response)}`)
  return { id: result.result.apiKey.id, token: result.result.apiKey.token, identityId: result.result.apiKey.identity.id }
}
