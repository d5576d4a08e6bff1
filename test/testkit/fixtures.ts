import { randomBytes } from 'node:crypto'
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

export interface LogVerification {
  ok: boolean
  entriesChecked: number
  checkpointsChecked: number
  lastSequence: number
  lastHash: string
  anchor: { sequence: number; hash: string; checkpointId: string | null }
  firstBroken: { sequence: number; entryId: string | null; reason: string; message: string } | null
}

const verificationFields =
  'ok entriesChecked checkpointsChecked lastSequence lastHash anchor { sequence hash checkpointId } firstBroken { sequence entryId reason message }'

/** verifyAuthLog with the root token. */
export async function verifyLog(app: TestApp, args: { from?: number; to?: number } = {}): Promise<LogVerification> {
  const response = await app.gql(`query ($from: BigInt, $to: BigInt) { verifyAuthLog(from: $from, to: $to) { ${verificationFields} } }`, {
    variables: args,
    token: app.rootToken,
  })
  if (!response.data?.verifyAuthLog) throw new Error(`verifyAuthLog failed: ${JSON.stringify(response)}`)
  return response.data.verifyAuthLog
}

export interface LogCheckpoint {
  id: string
  sequence: number
  hash: string
  createdAt: string
  payload: string
  signature: string
  reason: string
}

export const checkpointFields = 'id sequence hash createdAt payload signature reason'

/** createAuthLogCheckpoint with the root token. */
export async function createLogCheckpoint(app: TestApp): Promise<LogCheckpoint> {
  const response = await app.gql(`mutation { createAuthLogCheckpoint { ok error { code developerMessage } result { ${checkpointFields} } } }`, {
    token: app.rootToken,
  })
  if (!response.data?.createAuthLogCheckpoint?.ok) throw new Error(`createAuthLogCheckpoint failed: ${JSON.stringify(response)}`)
  return response.data.createAuthLogCheckpoint.result
}

/** Adds `count` entries to the log cheaply (api_key_create, no password hashing). */
export async function addLogEntries(app: TestApp, count: number): Promise<void> {
  for (let index = 0; index < count; index++) await createGlobalApiKey(app, [])
}

/**
 * SQL as the database superuser with every trigger off (session_replication_role
 * = replica): how an intruder with superuser rights would rewrite the log.
 */
export async function tamper(db: Database, sql: string, params?: unknown[]): Promise<Record<string, unknown>[]> {
  return db.session(async (session) => {
    await session.exec('BEGIN')
    try {
      await session.exec('SET LOCAL session_replication_role = replica')
      const rows = await session.query(sql, params)
      await session.exec('COMMIT')
      return rows
    } catch (error) {
      await session.exec('ROLLBACK')
      throw error
    }
  })
}

/** Entries as jsonb (every column, hash included), for putting them back exactly with restoreLogRows. */
export async function snapshotLogRows(db: Database, where: string, params?: unknown[]): Promise<Record<string, unknown>[]> {
  const rows = await db.session((session) =>
    session.query<{ row: Record<string, unknown> }>(`SELECT to_jsonb(l) AS row FROM person_auth_log l WHERE ${where} ORDER BY sequence, id`, params),
  )
  return rows.map((row) => row.row)
}

/** Replaces the entries with those ids by their snapshots. */
export async function restoreLogRows(db: Database, rows: Record<string, unknown>[]): Promise<void> {
  await tamper(db, 'DELETE FROM person_auth_log WHERE id = ANY($1::uuid[])', [rows.map((row) => row.id)])
  for (const row of rows) {
    await tamper(db, 'INSERT INTO person_auth_log SELECT * FROM jsonb_populate_record(NULL::person_auth_log, $1::jsonb)', [JSON.stringify(row)])
  }
}

export interface ExportedEntry {
  sequence: number
  hash: string
  id: string
  createdAt: string
  type: string
  success: boolean
  personId: string | null
  identityId: string | null
  targetPersonId: string | null
  clientIp: string | null
  userAgent: string | null
  personInputIdentifier: string | null
  errorCode: string | null
  metadata: Record<string, never>
  eventData: Record<string, never>
}

/** The whole log through authLog, oldest first, in the shape verifyRange takes. */
export async function exportLog(app: TestApp): Promise<ExportedEntry[]> {
  const entries: (LogEntry & { sequence: number; hash: string })[] = []
  for (let offset = 0; ; offset += 500) {
    const response = await app.gql(
      `query ($offset: Int) { authLog(limit: 500, offset: $offset) { hasMore entries { ${entryFields} sequence hash } } }`,
      { variables: { offset }, token: app.rootToken },
    )
    if (!response.data?.authLog) throw new Error(`authLog failed: ${JSON.stringify(response)}`)
    entries.push(...response.data.authLog.entries)
    if (!response.data.authLog.hasMore) break
  }
  return entries
    .map(({ invokedByIdentityId, metadata, eventData, ...entry }) => ({
      ...entry,
      identityId: invokedByIdentityId,
      metadata: (metadata ?? {}) as Record<string, never>,
      eventData: (eventData ?? {}) as Record<string, never>,
    }))
    .sort((a, b) => a.sequence - b.sequence)
}

/** authLogCheckpoints with the root token, newest first. */
export async function listLogCheckpoints(app: TestApp): Promise<LogCheckpoint[]> {
  const response = await app.gql(`{ authLogCheckpoints { ${checkpointFields} } }`, { token: app.rootToken })
  if (!response.data?.authLogCheckpoints) throw new Error(`authLogCheckpoints failed: ${JSON.stringify(response)}`)
  return response.data.authLogCheckpoints
}
