import { randomBytes, randomUUID } from 'node:crypto'
import type { AuthLogEntryJson } from '../../src/audit/export.js'
import type { Database } from '../../src/db/database.js'
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

/** An authLog entry as the API returns it. */
export type LogEntry = AuthLogEntryJson

const entryFields =
  'id createdAt type success invokedByIdentityId personId targetPersonId personInputIdentifier errorCode clientIp userAgent metadata eventData'

/** Reads the log with the root token (newest first). */
export async function readLog(
  app: TestApp,
  args: { filter?: Record<string, unknown>; limit?: number; offset?: number; cursor?: string | null } = {},
): Promise<{ entries: LogEntry[]; hasMore: boolean; nextCursor: string | null }> {
  const response = await app.gql(
    `query ($filter: AuthLogFilter, $limit: Int, $offset: Int, $cursor: String) {
      authLog(filter: $filter, limit: $limit, offset: $offset, cursor: $cursor) { hasMore nextCursor entries { ${entryFields} } }
    }`,
    { variables: args, token: app.rootToken },
  )
  if (!response.data?.authLog) throw new Error(`authLog failed: ${JSON.stringify(response)}`)
  return response.data.authLog
}

/** A log row to seed; unset fields get harmless defaults. */
export interface SeedLogEntry {
  id?: string
  type?: string
  success?: boolean
  createdAt?: Date
  personId?: string | null
  identityId?: string | null
  targetPersonId?: string | null
  clientIp?: string | null
  userAgent?: string | null
  personInputIdentifier?: string | null
  errorCode?: string | null
  metadata?: Record<string, unknown>
  eventData?: Record<string, unknown>
}

/**
 * Inserts log rows as they are (one INSERT), for tests that need particular values or times,
 * through a test app's database or any other. Returns their ids in the order given.
 */
export async function seedLogEntries(into: TestApp | Database, entries: SeedLogEntry[]): Promise<string[]> {
  const db = 'app' in into ? into.app.services.db : into
  const rows = entries.map((entry) => ({
    id: entry.id ?? randomUUID(),
    type: entry.type ?? 'login',
    success: entry.success ?? true,
    created_at: (entry.createdAt ?? new Date()).toISOString(),
    person_id: entry.personId ?? null,
    identity_id: entry.identityId ?? null,
    target_person_id: entry.targetPersonId ?? null,
    client_ip: entry.clientIp ?? null,
    user_agent: entry.userAgent ?? null,
    person_input_identifier: entry.personInputIdentifier ?? null,
    error_code: entry.errorCode ?? null,
    metadata: entry.metadata ?? {},
    event_data: entry.eventData ?? {},
  }))
  await db.session((session) =>
    session.query(
      `INSERT INTO person_auth_log (id, type, success, created_at, person_id, identity_id, target_person_id, client_ip,
                                    user_agent, person_input_identifier, error_code, metadata, event_data)
       SELECT id, type, success, created_at, person_id, identity_id, target_person_id, client_ip,
              user_agent, person_input_identifier, error_code, metadata, event_data
         FROM jsonb_to_recordset($1::jsonb) AS r(id uuid, type text, success boolean, created_at timestamptz, person_id uuid,
              identity_id uuid, target_person_id uuid, client_ip inet, user_agent text, person_input_identifier text,
              error_code text, metadata jsonb, event_data jsonb)`,
      [JSON.stringify(rows)],
    ),
  )
  return rows.map((row) => row.id)
}
