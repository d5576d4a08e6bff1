import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { type Writable } from 'node:stream'
import { databaseTarget, loadAuditSigner } from '../installation.js'
import { type CheckpointJson, checkpointJson, createCheckpoint, listCheckpoints } from '../audit/checkpoints.js'
import { CursorCodec } from '../audit/cursor.js'
import { type AuthLogEntryJson, type ExportFormat, exportAuthLog, exportFields, recordExport } from '../audit/export.js'
import { filterToParams } from '../audit/filterParams.js'
import { type BreakReason, type VerificationResult } from '../audit/integrity.js'
import { type AuditActor } from '../audit/recorder.js'
import { type AuthLogFilter, type AuthLogRow, countAuthLog, parseAuthLogFilter, readAuthLogPage } from '../audit/query.js'
import { type AppConfig, ConfigError, loadConfig } from '../config.js'
import { type Database, openDatabase } from '../db/database.js'
import { UsageError } from './options.js'

/**
 * Where the command line reads the log: the database itself (DATABASE_URL, or the embedded one in
 * CUSTOS_DATA_DIR), or a running server (--url and --token) through authLog, the export endpoint and
 * verifyAuthLog.
 */

export interface LogPage {
  entries: AuthLogEntryJson[]
  nextCursor: string | null
}

export interface ExportProgress {
  /** Entries the export will hold, when known up front. */
  start(total: number | undefined): void
  advance(entries: number): void
}

export interface LogSource {
  page(filter: AuthLogFilter, limit: number, cursor: string | null): Promise<LogPage>
  /** Writes the export to `out`; resolves with the number of entries written. */
  export(format: ExportFormat, filter: AuthLogFilter, out: Writable, progress: ExportProgress): Promise<number>
  /** Signed checkpoints as authLogCheckpoints returns them, newest first. */
  checkpoints(limit: number, offset: number): Promise<CheckpointJson[]>
  /** createAuthLogCheckpoint(sequence): verifies the chain up to `sequence` and signs it there (recorded as auth_log_checkpoint). */
  signCheckpoint(sequence: bigint): Promise<CheckpointJson>
  close(): Promise<void>
}

/** A problem to report in one line (exit status 1), not a crash. */
export class SourceError extends Error {}

/** Directly on the database, no signing key is configured (CUSTOS_SIGNING_KEY with DATABASE_URL): nothing can be signed. */
export class NoSigningKeyError extends SourceError {}

/** The server refused an argument (BAD_USER_INPUT): wrong input, exit status 2. */
export class SourceInputError extends SourceError {
  constructor(
    message: string,
    readonly argument: string | undefined,
  ) {
    super(message)
  }
}

// An export line's fields are the GraphQL entry's, in the same order.
const ENTRY_FIELDS = exportFields.map((field) => field.name).join(' ')
const CHECKPOINT_FIELDS = 'id sequence hash createdAt payload signature reason'
const VERIFICATION_FIELDS =
  'ok entriesChecked checkpointsChecked lastSequence lastHash anchor { sequence hash checkpointId } firstBroken { sequence entryId reason message }'

/** verifyAuthLog's answer: BigInt as a JSON number (or a string past 2^53), hashes as hex. */
interface VerificationJson {
  ok: boolean
  entriesChecked: number
  checkpointsChecked: number
  lastSequence: number | string
  lastHash: string
  anchor: { sequence: number | string; hash: string; checkpointId: string | null }
  firstBroken: { sequence: number | string; entryId: string | null; reason: BreakReason; message: string } | null
}

const verificationResult = (json: VerificationJson): VerificationResult => ({
  ...json,
  anchor: { ...json.anchor, sequence: BigInt(json.anchor.sequence), hash: Buffer.from(json.anchor.hash, 'hex') },
  lastSequence: BigInt(json.lastSequence),
  lastHash: Buffer.from(json.lastHash, 'hex'),
  firstBroken: json.firstBroken && { ...json.firstBroken, sequence: BigInt(json.firstBroken.sequence) },
})

const entryJson = (row: AuthLogRow): AuthLogEntryJson => ({
  id: row.id,
  createdAt: row.createdAt.toISOString(),
  type: row.type,
  success: row.success,
  invokedByIdentityId: row.identityId,
  personId: row.personId,
  targetPersonId: row.targetPersonId,
  personInputIdentifier: row.personInputIdentifier,
  errorCode: row.errorCode,
  clientIp: row.clientIp,
  userAgent: row.userAgent,
  metadata: row.metadata,
  eventData: row.eventData,
  sequence: Number(row.sequence),
  hash: row.hash,
})

/** Writes `chunk`, waiting while `out` is full. */
async function write(out: Writable, chunk: string | Uint8Array): Promise<void> {
  if (out.write(chunk)) return
  await new Promise<void>((resolve, reject) => {
    const done = (error?: Error) => {
      out.off('drain', done)
      out.off('error', done)
      if (error) reject(error)
      else resolve()
    }
    out.on('drain', done)
    out.on('error', done)
  })
}

/** The command line acting on the database: no identity, named by its user agent. */
const CLI_ACTOR: AuditActor = { identityId: null, personId: null, client: { ip: null, userAgent: 'custos-cli (direct database access)' } }

class DirectSource implements LogSource {
  // Cursors never leave this process, so a key of its own serves.
  private readonly cursors = new CursorCodec(randomBytes(32))

  constructor(
    private readonly db: Database,
    private readonly config: AppConfig,
  ) {}

  async page(filter: AuthLogFilter, limit: number, cursor: string | null): Promise<LogPage> {
    const page = await readAuthLogPage(this.db, { filter, limit, cursor }, { cursors: this.cursors, recordReadAs: this.config.auditReads ? CLI_ACTOR : null })
    return { entries: page.entries.map(entryJson), nextCursor: page.nextCursor }
  }

  async export(format: ExportFormat, filter: AuthLogFilter, out: Writable, progress: ExportProgress): Promise<number> {
    const criteria = parseAuthLogFilter(filter)
    return this.db.session(async (session) => {
      // Recorded first, so the export holds its own entry when the filter matches it.
      await recordExport(this.db.prisma, CLI_ACTOR, criteria, format)
      const counted = await countAuthLog(session, criteria)
      progress.start(counted.count)
      let written = 0
      for await (const { data, entries } of exportAuthLog(session, counted.criteria, format)) {
        await write(out, data)
        written += entries
        progress.advance(entries)
      }
      return written
    })
  }

  async checkpoints(limit: number, offset: number): Promise<CheckpointJson[]> {
    return (await listCheckpoints(this.db.prisma, { limit, offset })).map(checkpointJson)
  }

  async signCheckpoint(sequence: bigint): Promise<CheckpointJson> {
    const signer = await loadAuditSigner(this.config).catch((error: unknown) => {
      throw error instanceof ConfigError ? new NoSigningKeyError(`no checkpoint signed at ${sequence}: CUSTOS_SIGNING_KEY is not set`) : error
    })
    const signed = await createCheckpoint(this.db, signer, { reason: 'on_demand', actor: CLI_ACTOR, at: sequence })
    if (!signed.ok) throw new SourceError(`No checkpoint signed at ${sequence}: ${signed.error.developerMessage}`)
    return checkpointJson(signed.result)
  }

  close() {
    return this.db.close()
  }
}

/** Counts the records in a stream of CSV text: line breaks outside quoted fields. */
class CsvRecordCounter {
  private quoted = false

  count(text: string): number {
    let records = 0
    for (let index = 0; index < text.length; index++) {
      const char = text.charCodeAt(index)
      if (char === 34) this.quoted = !this.quoted
      else if (char === 10 && !this.quoted) records++
    }
    return records
  }
}

/** Why fetch failed, in its own words: undici puts the socket's reason in `cause`. */
const fetchFailure = (error: unknown) => (error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error))

/**
 * A kept-alive connection that the server closes just as the next request goes out on it (both
 * sides' idle timeouts are seconds long, so `log --follow` polling about that often can meet it)
 * fails that request with "other side closed" before an answer: a read is then sent once more,
 * on a new connection.
 */
const closedWhileIdle = (error: unknown) => error instanceof Error && (error.cause as { code?: unknown } | undefined)?.code === 'UND_ERR_SOCKET'

/** A response's bytes; a connection the server resets before the end (an export failing halfway) is a SourceError. */
async function* responseBytes(response: Response): AsyncGenerator<Uint8Array> {
  try {
    for await (const bytes of response.body as unknown as AsyncIterable<Uint8Array>) yield bytes
  } catch (error) {
    throw new SourceError(`The server cut off the export before its end: ${fetchFailure(error)}`)
  }
}

export class ServerSource implements LogSource {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
  ) {}

  /** Sends a request; `reads` says it changes nothing, so it may be sent twice (closedWhileIdle). */
  private async request(path: string, init: RequestInit = {}, reads = true): Promise<Response> {
    const send = () => fetch(`${this.baseUrl}${path}`, { ...init, headers: { ...init.headers, authorization: `Bearer ${this.token}`, 'user-agent': 'custos-cli' } })
    const response = await send()
      .catch((error: unknown) => (reads && closedWhileIdle(error) ? send() : Promise.reject(error)))
      .catch((error: unknown) => {
        throw new SourceError(`Cannot reach ${this.baseUrl}: ${fetchFailure(error)}`)
      })
    if (!response.ok) {
      // The export endpoint answers { error }, GraphQL { errors }.
      const body = (await response.json().catch(() => null)) as { error?: { code?: string; message?: string; parameter?: string }; errors?: { message?: string }[] } | null
      // The export endpoint refused a parameter: wrong input, as BAD_USER_INPUT from GraphQL is.
      if (body?.error?.code === 'BAD_USER_INPUT' && body.error.message) throw new SourceInputError(body.error.message, body.error.parameter)
      throw new SourceError(`${response.status} ${body?.error?.message ?? body?.errors?.[0]?.message ?? response.statusText}`)
    }
    return response
  }

  /** One GraphQL operation's field, or its errors as a SourceError. */
  private async query<T>(field: string, query: string, variables: Record<string, unknown>, reads = true): Promise<T> {
    const response = await this.request('/tenant', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) }, reads)
    const result = (await response.json()) as { data?: Record<string, T | null>; errors?: { message: string; extensions?: { code?: string; argument?: string } }[] }
    const value = result.data?.[field]
    if (value) return value
    const refused = result.errors?.find((error) => error.extensions?.code === 'BAD_USER_INPUT')
    if (refused) throw new SourceInputError(refused.message, refused.extensions?.argument)
    throw new SourceError(result.errors?.map((error) => error.message).join('; ') ?? `${field} failed`)
  }

  /** verifyAuthLog: the server recomputes the chain and checks its checkpoints with its own keys. */
  async verify(range: { from: bigint | undefined; to: bigint | undefined }): Promise<VerificationResult> {
    const json = await this.query<VerificationJson>(
      'verifyAuthLog',
      `query ($from: BigInt, $to: BigInt) { verifyAuthLog(from: $from, to: $to) { ${VERIFICATION_FIELDS} } }`,
      // As text: a JSON number past 2^53 would lose digits.
      { from: range.from?.toString(), to: range.to?.toString() },
    )
    return verificationResult(json)
  }

  page(filter: AuthLogFilter, limit: number, cursor: string | null): Promise<LogPage> {
    return this.query<LogPage>(
      'authLog',
      `query ($filter: AuthLogFilter, $limit: Int, $cursor: String) {
          authLog(filter: $filter, limit: $limit, cursor: $cursor) { nextCursor entries { ${ENTRY_FIELDS} } }
        }`,
      { filter, limit, cursor },
    )
  }

  checkpoints(limit: number, offset: number): Promise<CheckpointJson[]> {
    return this.query<CheckpointJson[]>(
      'authLogCheckpoints',
      `query ($limit: Int, $offset: Int) { authLogCheckpoints(limit: $limit, offset: $offset) { ${CHECKPOINT_FIELDS} } }`,
      { limit, offset },
    )
  }

  async signCheckpoint(sequence: bigint): Promise<CheckpointJson> {
    const signed = await this.query<{ ok: boolean; error: { code: string; developerMessage: string } | null; result: CheckpointJson | null }>(
      'createAuthLogCheckpoint',
      `mutation ($sequence: BigInt) {
          createAuthLogCheckpoint(sequence: $sequence) { ok error { code developerMessage } result { ${CHECKPOINT_FIELDS} } }
        }`,
      { sequence: sequence.toString() },
      false,
    )
    if (!signed.ok || !signed.result) throw new SourceError(`No checkpoint signed at ${sequence}: ${signed.error?.developerMessage ?? signed.error?.code}`)
    return signed.result
  }

  async export(format: ExportFormat, filter: AuthLogFilter, out: Writable, progress: ExportProgress): Promise<number> {
    const params = filterToParams(filter)
    params.set('count', 'true')
    const response = await this.request(`/tenant/audit-log/export.${format}?${params}`)
    const total = response.headers.get('x-total-count')
    progress.start(total === null ? undefined : Number(total))
    const counter = new CsvRecordCounter()
    const decoder = new TextDecoder()
    let records = 0
    let written = 0
    let lastByte: number | undefined
    for await (const bytes of responseBytes(response)) {
      await write(out, bytes)
      lastByte = bytes.at(-1) ?? lastByte
      const text = decoder.decode(bytes, { stream: true })
      records += format === 'csv' ? counter.count(text) : text.split('\n').length - 1
      // The CSV header is a record, but not an entry.
      const entries = format === 'csv' ? Math.max(records - 1, 0) : records
      progress.advance(entries - written)
      written = entries
    }
    // The server resets an export it cannot finish; something between may end it as if complete.
    if ((total !== null && Number(total) !== written) || (lastByte !== undefined && lastByte !== 0x0a)) {
      const counted = total === null ? '' : ` of the ${total} counted`
      throw new SourceError(`The export ended early: ${written} entries${counted}, ${lastByte === 0x0a ? 'each whole' : 'the last one cut off'}`)
    }
    return written
  }

  async close() {}
}

export interface SourceOptions {
  url?: string | undefined
  token?: string | undefined
}

/** The server --url (or CUSTOS_URL) names, with its token; undefined when none is named. */
export function serverSource(options: SourceOptions): ServerSource | undefined {
  const url = options.url ?? process.env.CUSTOS_URL
  // A token says a server was meant: reading the database instead would answer another question.
  if (!url && options.token !== undefined) throw new UsageError('--token goes with --url (or CUSTOS_URL): the server to ask')
  if (!url) return undefined
  const token = options.token ?? process.env.CUSTOS_TOKEN
  if (!token) throw new UsageError('--url needs --token (or CUSTOS_TOKEN): a token with system:viewAuthLog')
  return new ServerSource(url.replace(/\/+$/, '').replace(/\/tenant$/, ''), token)
}

/**
 * The configured database, once it has answered and (unless `migrated` is false, for migrate)
 * holds the audit log: one that does not (PostgreSQL down, a wrong DATABASE_URL, never migrated) is
 * a one-line SourceError, not a driver's stack trace.
 */
export async function openConfiguredDatabase(config: AppConfig, { migrated = true } = {}): Promise<Database> {
  // PGlite would create an empty cluster there (in a mistyped directory, too) only to find no log in it.
  if (migrated && !config.databaseUrl && !existsSync(join(config.dataDir, 'PG_VERSION'))) {
    throw new SourceError(`No embedded database in ${config.dataDir}: set DATABASE_URL, or CUSTOS_DATA_DIR to the server's data directory`)
  }
  const db = await openDatabase(databaseTarget(config))
  let problem: string | undefined
  try {
    const [row] = await db.session((session) => session.query<{ hasLog: boolean }>(`SELECT to_regclass('person_auth_log') IS NOT NULL AS "hasLog"`))
    if (migrated && !row?.hasLog) problem = 'The database holds no audit log: run custos migrate first'
  } catch (error) {
    // A host name with several addresses fails with an AggregateError, whose message is empty.
    problem = `Cannot reach the database: ${(error as Error).message || (error as NodeJS.ErrnoException).code || String(error)}`
  }
  if (problem === undefined) return db
  await db.close().catch(() => {})
  throw new SourceError(problem)
}

/** A server when --url (or CUSTOS_URL) is given, else the configured database. */
export async function openLogSource(options: SourceOptions): Promise<LogSource> {
  const server = serverSource(options)
  if (server) return server
  const config = loadConfig()
  return new DirectSource(await openConfiguredDatabase(config), config)
}
