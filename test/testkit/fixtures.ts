import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { generate as generateTotp } from 'otplib'
import type { AuthLogEntryJson } from '../../src/audit/export.js'
import type { Database } from '../../src/db/database.js'
import { afterAll, beforeAll } from 'vitest'
import { type GraphQLResponse, type TestApp, startTestApp } from './app.js'
import { type MailCatcher, mailField, startMailCatcher } from './mail.js'
import type { OidcAccount, OidcTestProvider } from './oidc.js'

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
  'id createdAt type success invokedByIdentityId personId targetPersonId personInputIdentifier errorCode clientIp userAgent metadata eventData sequence hash'

/** authLog with every entry field; variables filter, limit, offset. */
export const AUTH_LOG_QUERY = `query ($filter: AuthLogFilter, $limit: Int, $offset: Int) {
  authLog(filter: $filter, limit: $limit, offset: $offset) { hasMore entries { ${entryFields} } }
}`

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

/** Raw SQL on the app's own database, for setting up what the API cannot (and for reading rows back). */
export function sql<Row extends Record<string, unknown> = Record<string, unknown>>(app: TestApp, text: string, params?: unknown[]) {
  return app.app.services.db.session((session) => session.query<Row>(text, params))
}

/** A person_auth_log row as stored, for comparing with what the API returns. */
export type StoredLogRow = {
  id: string
  type: string
  success: boolean
  created_at: Date
  identity_id: string | null
  person_id: string | null
  target_person_id: string | null
  person_input_identifier: string | null
  error_code: string | null
  client_ip: string | null
  user_agent: string | null
  metadata: Record<string, unknown>
  event_data: Record<string, unknown>
}

/** Every log row, newest first (client_ip as its host text: drivers differ on inet). */
export const storedLogRows = (app: TestApp) =>
  sql<StoredLogRow>(
    app,
    `SELECT id, type, success, created_at, identity_id, person_id, target_person_id, person_input_identifier,
            error_code, host(client_ip) AS client_ip, user_agent, metadata, event_data
       FROM person_auth_log ORDER BY created_at DESC, id DESC`,
  )

/** The api_key row id behind a bearer token (tokens are stored only as their sha256). */
export async function apiKeyIdOfToken(app: TestApp, token: string): Promise<string> {
  const hash = createHash('sha256').update(token, 'utf8').digest('hex')
  const [row] = await sql<{ id: string }>(app, 'SELECT id FROM api_key WHERE token_hash = $1', [hash])
  if (!row) throw new Error('no api key has this token')
  return row.id
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

/** A GraphQL answer as sent, without the HTTP status. */
export type GraphQLResponseBody = Omit<GraphQLResponse, 'status'>

/** A raw HTTP request to /tenant, for what gql() does not cover (GET, batches, odd bodies). */
export async function tenantRequest(
  app: TestApp,
  init: { method?: string; query?: Record<string, string>; body?: unknown; token?: string; headers?: Record<string, string> },
): Promise<{ status: number; body: any; text: string }> {
  const url = new URL(`${app.url}/tenant`)
  for (const [key, value] of Object.entries(init.query ?? {})) url.searchParams.set(key, value)
  const response = await fetch(url, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: {
      accept: 'application/graphql-response+json, application/json',
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
      ...init.headers,
    },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  })
  const text = await response.text()
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    body = undefined
  }
  return { status: response.status, body, text }
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
 * For a suite of mailing flows: a test app sending through a mail catcher on loopback, with
 * passwordless sign-in on for everyone, started before the suite's tests and stopped after them.
 * `started` hands both to the suite's own variables.
 */
export function withMailingTestApp(started: (app: TestApp, mail: MailCatcher) => void): void {
  let app: TestApp | undefined
  let mail: MailCatcher | undefined
  beforeAll(async () => {
    mail = await startMailCatcher()
    app = await startTestApp({ SMTP_URL: mail.url })
    await configureTenant(app, { passwordless: { enabled: 'always' } })
    started(app, mail)
  })
  afterAll(async () => {
    await app?.stop()
    await mail?.close()
  })
}

/**
 * Login settings under which no backoff is ever felt: for tests that repeat sign-ins or
 * mailed requests for one email. The backoffs themselves are tested in test/auth/throttle.test.ts.
 */
export const negligibleBackoff = { baseBackoff: 'PT0.001S', maxBackoff: 'PT0.001S' } as const

/** Adds an identity provider with the root token (addIDP, then disableIDP when `disabled`). Returns its slug. */
export async function addIdentityProvider(
  app: TestApp,
  provider: { slug?: string; configuration: Record<string, unknown>; autoSignUp?: boolean; initReturnsConfig?: boolean; disabled?: boolean },
): Promise<string> {
  const slug = provider.slug ?? `idp-${randomBytes(4).toString('hex')}`
  const options = { autoSignUp: provider.autoSignUp ?? false, initReturnsConfig: provider.initReturnsConfig ?? false }
  const added = await app.gql(
    `mutation ($slug: String!, $configuration: Json!, $options: IDPOptions) {
      addIDP(identityProvider: $slug, type: "oidc", configuration: $configuration, options: $options) { ok error { code developerMessage } }
    }`,
    { variables: { slug, configuration: provider.configuration, options }, token: app.rootToken },
  )
  if (!added.data?.addIDP?.ok) throw new Error(`addIDP failed: ${JSON.stringify(added)}`)
  if (provider.disabled) {
    const disabled = await app.gql('mutation ($slug: String!) { disableIDP(identityProvider: $slug) { ok } }', { variables: { slug }, token: app.rootToken })
    if (!disabled.data?.disableIDP?.ok) throw new Error(`disableIDP failed: ${JSON.stringify(disabled)}`)
  }
  return slug
}

/**
 * initSignInIDP with the login token, then the browser's round trip through the
 * test provider as `account`: the data signInIDP takes (the redirect URL and the session data).
 */
export async function idpRedirect(app: TestApp, provider: OidcTestProvider, slug: string, account: OidcAccount) {
  const init = await app.gql(
    `mutation ($slug: String!, $data: Json) { initSignInIDP(identityProvider: $slug, data: $data) { ok error { code developerMessage } result { authUrl sessionData } } }`,
    { variables: { slug, data: { redirectUrl: provider.redirectUri } }, token: app.loginToken },
  )
  if (!init.data?.initSignInIDP?.ok) throw new Error(`initSignInIDP failed: ${JSON.stringify(init)}`)
  const { authUrl, sessionData } = init.data.initSignInIDP.result
  return { url: await provider.authorize(authUrl, account), sessionData: sessionData as Record<string, string> }
}

/** The TOTP code of `secret` for now plus `stepOffset` 30-second steps. */
export const totpCode = (secret: string, stepOffset = 0) => generateTotp({ secret, epoch: Math.floor(Date.now() / 1000) + stepOffset * 30 })

/** prepareOtp for the person signed in with `token`: the new (pending) TOTP secret. */
export async function prepareOtp(app: TestApp, token: string): Promise<string> {
  const prepared = await app.gql(`mutation { prepareOtp { ok result { otpSecret } } }`, { token })
  const secret = prepared.data?.prepareOtp?.result?.otpSecret
  if (!secret) throw new Error(`prepareOtp failed: ${JSON.stringify(prepared)}`)
  return secret
}

/** Prepares and confirms TOTP for a signed-in person: the secret and the backup codes confirmOtp answers. The confirming code's step is used up. */
export async function enableOtpWithBackupCodes(app: TestApp, person: SignedInPerson): Promise<{ secret: string; backupCodes: string[] }> {
  const secret = await prepareOtp(app, person.token)
  const confirmed = await app.gql(`mutation ($code: String!) { confirmOtp(otpToken: $code) { ok error { code } result { backupCodes } } }`, {
    variables: { code: await totpCode(secret) },
    token: person.token,
  })
  if (!confirmed.data?.confirmOtp?.ok) throw new Error(`confirmOtp failed: ${JSON.stringify(confirmed)}`)
  return { secret, backupCodes: confirmed.data.confirmOtp.result.backupCodes }
}

/** Prepares and confirms TOTP for a signed-in person; returns the secret. */
export const enableOtp = async (app: TestApp, person: SignedInPerson): Promise<string> => (await enableOtpWithBackupCodes(app, person)).secret

/** Every person_auth_log row with all its columns rendered as text, read straight from the database. */
export async function auditRowsAsText(app: TestApp): Promise<string[]> {
  const rows = await app.app.services.db.session((session) =>
    session.query<{ row: string }>('SELECT row_to_json(log)::text AS row FROM person_auth_log AS log ORDER BY created_at'),
  )
  return rows.map((row) => row.row)
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
 * through a test app's database or any other. Returns their ids in the order given. The rows are
 * outside the hash chain: verifyAuthLog reports them, so integrity tests do not use this.
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
  // The chain trigger accepts entries only in time order (README "Integrity"); a test that needs
  // entries in the past writes them as unchained rows (sequence 0, zero hash) with triggers off.
  await tamper(
    db,
    `INSERT INTO person_auth_log (id, type, success, created_at, person_id, identity_id, target_person_id, client_ip,
                                  user_agent, person_input_identifier, error_code, metadata, event_data, sequence, hash)
     SELECT id, type, success, created_at, person_id, identity_id, target_person_id, client_ip,
            user_agent, person_input_identifier, error_code, metadata, event_data, 0, decode(repeat('00', 32), 'hex')
       FROM jsonb_to_recordset($1::jsonb) AS r(id uuid, type text, success boolean, created_at timestamptz, person_id uuid,
            identity_id uuid, target_person_id uuid, client_ip inet, user_agent text, person_input_identifier text,
            error_code text, metadata jsonb, event_data jsonb)`,
    [JSON.stringify(rows)],
  )
  return rows.map((row) => row.id)
}

/** Runs a mutation with the login token that mails `email`, and returns its answer and the mail the SMTP catcher received. */
async function mailingMutation(app: TestApp, mail: MailCatcher, operation: string, email: string, captchaToken: string | undefined, result = '') {
  const since = mail.received.length
  const response = await app.gql(
    `mutation ($email: String!, $captchaToken: String) { ${operation}(email: $email, captchaToken: $captchaToken) { ok error { code } ${result} } }`,
    { variables: { email, captchaToken }, token: app.loginToken },
  )
  if (!response.data?.[operation]?.ok) throw new Error(`${operation} failed: ${JSON.stringify(response)}`)
  return { answer: response.data[operation], message: await mail.waitFor(email, { since }) }
}

/** Requests a password reset; the request id and token come from the mail. */
export async function mailedPasswordReset(app: TestApp, mail: MailCatcher, email: string, captchaToken?: string) {
  const { message } = await mailingMutation(app, mail, 'createResetPasswordRequest', email, captchaToken)
  return { message, requestId: mailField(message, 'Request'), token: mailField(message, 'Reset token') }
}

/** Starts a passwordless sign-in; request id, link token and code come from the mail. */
export async function mailedPasswordlessRequest(app: TestApp, mail: MailCatcher, email: string, captchaToken?: string) {
  const { answer, message } = await mailingMutation(app, mail, 'initSignInPasswordless', email, captchaToken, 'result { requestId }')
  return {
    message,
    answeredRequestId: answer.result.requestId as string,
    requestId: mailField(message, 'Request'),
    token: mailField(message, 'Token'),
    code: mailField(message, 'Code'),
  }
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
      `query ($offset: Int) { authLog(limit: 500, offset: $offset) { hasMore entries { ${entryFields} } } }`,
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
