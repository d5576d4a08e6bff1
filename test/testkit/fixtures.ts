import { randomBytes } from 'node:crypto'
import { generate as generateTotp } from 'otplib'
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

/** Changes the tenant configuration with the root token (records tenant_config_change). */
export async function configureTenant(app: TestApp, config: Record<string, unknown>): Promise<void> {
  const response = await app.gql(
    `mutation ($config: ConfigInput!) { configure(config: $config) { ok error { code developerMessage } } }`,
    { variables: { config }, token: app.rootToken },
  )
  if (!response.data?.configure?.ok) throw new Error(`configure failed: ${JSON.stringify(response)}`)
}

/**
 * Inserts an identity_provider row directly (the admin operations that add
 * providers belong to another part of the API). Returns its slug.
 */
export async function insertIdentityProvider(
  app: TestApp,
  row: { slug?: string; configuration: Record<string, unknown>; autoSignUp?: boolean; initReturnsConfig?: boolean; disabled?: boolean },
): Promise<string> {
  const slug = row.slug ?? `idp-${randomBytes(4).toString('hex')}`
  await app.app.services.db.prisma.identityProvider.create({
    data: {
      slug,
      type: 'oidc',
      configuration: row.configuration as never,
      autoSignUp: row.autoSignUp ?? false,
      initReturnsConfig: row.initReturnsConfig ?? false,
      disabledAt: row.disabled ? new Date() : null,
    },
  })
  return slug
}

/** The TOTP code of `secret` for now plus `stepOffset` 30-second steps. */
export const totpCode = (secret: string, stepOffset = 0) => generateTotp({ secret, epoch: Math.floor(Date.now() / 1000) + stepOffset * 30 })

/** Prepares and confirms TOTP for a signed-in person; returns the secret. The confirming code's step is used up. */
export async function enableOtp(app: TestApp, person: SignedInPerson): Promise<string> {
  const prepared = await app.gql(`mutation { prepareOtp { ok result { otpSecret } } }`, { token: person.token })
  const secret = prepared.data?.prepareOtp?.result?.otpSecret
  if (!secret) throw new Error(`prepareOtp failed: ${JSON.stringify(prepared)}`)
  const confirmed = await app.gql(`mutation ($code: String!) { confirmOtp(otpToken: $code) { ok error { code } } }`, {
    variables: { code: await totpCode(secret) },
    token: person.token,
  })
  if (!confirmed.data?.confirmOtp?.ok) throw new Error(`confirmOtp failed: ${JSON.stringify(confirmed)}`)
  return secret
}

/** Every person_auth_log row with all its columns rendered as text, read straight from the database. */
export async function auditRowsAsText(app: TestApp): Promise<string[]> {
  const rows = await app.app.services.db.session((session) =>
    session.query<{ row: string }>('SELECT row_to_json(log)::text AS row FROM person_auth_log AS log ORDER BY created_at'),
  )
  return rows.map((row) => row.row)
}
