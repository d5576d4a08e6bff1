import { createHash } from 'node:crypto'
import { isIP } from 'node:net'
import pg from 'pg'
import { Prisma, type PrismaClient } from '../generated/prisma/client.js'
import type { Database, SqlSession } from '../db/database.js'
import { normalizeIp } from '../http/clientInfo.js'
import { isUuid } from '../tenant/ids.js'
import { auditEventTypes, isAuditEventType } from './catalog.js'
import type { AuthLogColumns } from './columns.js'
import type { AuthLogPosition, CursorCodec } from './cursor.js'
import { type AuditActor, INPUT_IDENTIFIER_LIMIT, recordAuditEntry } from './recorder.js'

/**
 * Reading person_auth_log: filters, keyset and offset paging, and the analytics queries.
 * Every filter is served by an index (test/audit/authLogPlans.test.ts proves it with EXPLAIN).
 * The SQL is built here and nowhere else; values always travel as parameters.
 */

/** AuthLogFilter: every field AND-combined, lists OR-combined within themselves, omitted = unconstrained. */
export interface AuthLogFilter {
  readonly types?: readonly string[] | null
  /** Types starting with this, e.g. `project_` or `2fa_`; must be the prefix of a known type. */
  readonly typePrefix?: string | null
  readonly success?: boolean | null
  readonly invokedByIdentityId?: string | null
  readonly identityIds?: readonly string[] | null
  readonly personId?: string | null
  readonly personIds?: readonly string[] | null
  readonly targetPersonId?: string | null
  readonly personInputIdentifier?: string | null
  /** Case-insensitive substring of the input identifier, error code, user agent, metadata or event data. */
  readonly q?: string | null
  /** An address (exact) or a CIDR block (every address inside). */
  readonly clientIp?: string | null
  /** Inclusive. */
  readonly createdAfter?: Date | null
  /** Exclusive. */
  readonly createdBefore?: Date | null
}

/** A filter that passed validation, normalized (ids lower-cased, lists sorted and unique). */
export interface AuthLogCriteria {
  readonly types?: readonly string[]
  readonly typePrefix?: string
  readonly success?: boolean
  readonly invokedByIdentityId?: string
  readonly identityIds?: readonly string[]
  readonly personId?: string
  readonly personIds?: readonly string[]
  readonly targetPersonId?: string
  readonly personInputIdentifier?: string
  readonly q?: string
  readonly clientIp?: string
  readonly createdAfter?: Date
  readonly createdBefore?: Date
  /**
   * Not a filter clients send: only entries up to this chain sequence. countAuthLog sets it, so
   * that what is read after a count is what was counted.
   */
  readonly throughSequence?: string
}

export interface AuthLogPageRequest {
  readonly filter?: AuthLogFilter | null
  readonly limit?: number | null
  readonly offset?: number | null
  readonly cursor?: string | null
}

export const DEFAULT_PAGE_SIZE = 100
export const MAX_PAGE_SIZE = 500
export const MAX_ID_LIST = 100
export const MIN_SEARCH_LENGTH = 3
export const MAX_SEARCH_LENGTH = 200

/** A request the log cannot answer as asked; `argument` names the culprit. */
export class AuthLogQueryError extends Error {
  constructor(
    message: string,
    readonly argument: string,
  ) {
    super(message)
  }
}

const LOG = Prisma.raw('person_auth_log')

/**
 * The text `q` searches. Must stay identical to the expression of person_auth_log_search_trgm_idx
 * (migration 20261122040000_scale), or the search stops using that index. Newlines separate the
 * parts, and `q` may not contain one, so a match never spans two of them.
 */
export const SEARCH_TEXT = Prisma.raw(
  `(coalesce(person_input_identifier, '') || E'\\n' || coalesce(error_code, '') || E'\\n' || ` +
    `coalesce(user_agent, '') || E'\\n' || metadata::text || E'\\n' || event_data::text)`,
)

/** created_at as an ISO instant with microseconds: exact whatever the column's precision. */
const POSITION_AT = Prisma.raw(`to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`)

const ORDER = Prisma.raw('ORDER BY created_at DESC, id DESC')

function idList(values: readonly string[] | null | undefined, argument: string): string[] | undefined {
  if (values == null) return undefined
  if (values.length > MAX_ID_LIST) throw new AuthLogQueryError(`${argument} may hold at most ${MAX_ID_LIST} ids`, argument)
  const invalid = values.filter((value) => !isUuid(value))
  if (invalid.length > 0) throw new AuthLogQueryError(`${argument} holds invalid ids: ${invalid.join(', ')}`, argument)
  return [...new Set(values.map((value) => value.toLowerCase()))].sort()
}

function singleId(value: string | null | undefined, argument: string): string | undefined {
  if (value == null) return undefined
  if (!isUuid(value)) throw new AuthLogQueryError(`${argument} is not a valid id: ${value}`, argument)
  return value.toLowerCase()
}

/**
 * The instants a filter may name. Dates travel to PostgreSQL as ISO strings, and it takes no year 0,
 * nor the six-digit signed years JavaScript writes outside 0000–9999.
 */
const EARLIEST_DATE = new Date('0001-01-01T00:00:00.000Z')
const LATEST_DATE = new Date('9999-12-31T23:59:59.999Z')

function validDate(value: Date | null | undefined, argument: string): Date | undefined {
  if (value == null) return undefined
  if (Number.isNaN(value.getTime())) throw new AuthLogQueryError(`${argument} is not a valid date`, argument)
  if (value < EARLIEST_DATE || value > LATEST_DATE) {
    throw new AuthLogQueryError(`${argument} must be between 0001-01-01 and 9999-12-31 (UTC)`, argument)
  }
  return value
}

/**
 * PostgreSQL text cannot hold U+0000, nor jsonb an unpaired UTF-16 surrogate (`\ud800` in JSON): no entry
 * holds one, and a filter holding one could not be recorded with the read or export.
 */
function rejectUnstorableText(filter: AuthLogFilter) {
  for (const [name, value] of Object.entries(filter)) {
    const texts = (Array.isArray(value) ? value : [value]).filter((text): text is string => typeof text === 'string')
    if (texts.some((text) => text.includes('\0'))) {
      throw new AuthLogQueryError(`filter.${name} must not contain the NUL character (U+0000)`, `filter.${name}`)
    }
    if (texts.some((text) => /\p{Surrogate}/u.test(text))) {
      throw new AuthLogQueryError(`filter.${name} must not contain an unpaired surrogate (not valid Unicode)`, `filter.${name}`)
    }
  }
}

/** Identifiers are stored cut to INPUT_IDENTIFIER_LIMIT characters: a longer one matches nothing. */
function inputIdentifier(value: string | null | undefined): string | undefined {
  if (value == null) return undefined
  if ([...value].length > INPUT_IDENTIFIER_LIMIT) {
    throw new AuthLogQueryError(`filter.personInputIdentifier may be at most ${INPUT_IDENTIFIER_LIMIT} characters`, 'filter.personInputIdentifier')
  }
  return value
}

function searchText(q: string | null | undefined): string | undefined {
  if (q == null) return undefined
  // Characters, not UTF-16 units: an emoji is one.
  if ([...q].length > MAX_SEARCH_LENGTH) throw new AuthLogQueryError(`filter.q may be at most ${MAX_SEARCH_LENGTH} characters`, 'filter.q')
  if (/[\u0000-\u001f\u007f]/.test(q)) throw new AuthLogQueryError('filter.q may not contain control characters', 'filter.q')
  // The trigram index can only narrow a search that holds a trigram: three letters or digits in a row.
  if (!/[\p{L}\p{N}]{3}/u.test(q)) {
    throw new AuthLogQueryError(`filter.q must contain at least ${MIN_SEARCH_LENGTH} letters or digits in a row`, 'filter.q')
  }
  return q
}

/**
 * An address, or a CIDR block; the address part normalized (no IPv4-mapped prefix: stored IPv4
 * addresses never have one, so `::ffff:10.0.0.0/104` is `10.0.0.0/8`). No zone id
 * (`fe80::1%eth0`): Node takes one, PostgreSQL's inet does not, and no stored address has one.
 */
function ipOrCidr(value: string | null | undefined): string | undefined {
  if (value == null) return undefined
  const [, written = '', bits] = /^([^/%]+)(?:\/(\d{1,3}))?$/.exec(value.trim()) ?? []
  const address = normalizeIp(written)
  const version = address ? isIP(address) : 0
  // A mapped block's prefix counts the 96 bits of the mapping; under /96 it is not inside IPv4.
  const mappingBits = version === 4 && isIP(written) === 6 ? 96 : 0
  const prefix = bits === undefined ? undefined : Number(bits) - mappingBits
  if (prefix !== undefined && prefix < 0) {
    throw new AuthLogQueryError(`filter.clientIp: an IPv4-mapped block needs a prefix of at least /96, not ${value}`, 'filter.clientIp')
  }
  if (!address || version === 0 || (prefix !== undefined && prefix > (version === 4 ? 32 : 128))) {
    throw new AuthLogQueryError(`filter.clientIp is not an IP address or CIDR block: ${value}`, 'filter.clientIp')
  }
  return prefix === undefined ? address : `${address}/${prefix}`
}

/** Checks a filter and normalizes it; never lets a malformed value reach the database. */
export function parseAuthLogFilter(filter: AuthLogFilter | null | undefined = {}): AuthLogCriteria {
  filter ??= {}
  rejectUnstorableText(filter)
  const unknownTypes = (filter.types ?? []).filter((type) => !isAuditEventType(type))
  if (unknownTypes.length > 0) throw new AuthLogQueryError(`Unknown event types: ${unknownTypes.join(', ')}`, 'filter.types')
  const typePrefix = filter.typePrefix ?? undefined
  if (typePrefix === '') throw new AuthLogQueryError('filter.typePrefix is empty', 'filter.typePrefix')
  if (typePrefix !== undefined && !auditEventTypes.some((type) => type.startsWith(typePrefix))) {
    throw new AuthLogQueryError(`No event type starts with "${typePrefix}"`, 'filter.typePrefix')
  }
  const criteria: AuthLogCriteria = {
    types: filter.types ? [...new Set(filter.types)].sort() : undefined,
    typePrefix,
    success: filter.success ?? undefined,
    invokedByIdentityId: singleId(filter.invokedByIdentityId, 'filter.invokedByIdentityId'),
    identityIds: idList(filter.identityIds, 'filter.identityIds'),
    personId: singleId(filter.personId, 'filter.personId'),
    personIds: idList(filter.personIds, 'filter.personIds'),
    targetPersonId: singleId(filter.targetPersonId, 'filter.targetPersonId'),
    personInputIdentifier: inputIdentifier(filter.personInputIdentifier),
    q: searchText(filter.q),
    clientIp: ipOrCidr(filter.clientIp),
    createdAfter: validDate(filter.createdAfter, 'filter.createdAfter'),
    createdBefore: validDate(filter.createdBefore, 'filter.createdBefore'),
  }
  const { createdAfter, createdBefore } = criteria
  // A window that ends before it starts is a mistake, not a question with no answer.
  if (createdAfter && createdBefore && createdAfter > createdBefore) {
    throw new AuthLogQueryError('filter.createdAfter must not be after filter.createdBefore', 'filter.createdAfter')
  }
  return Object.fromEntries(Object.entries(criteria).filter(([, value]) => value !== undefined)) as AuthLogCriteria
}

/** The criteria as plain JSON: recorded with reads and exports, and what a cursor is bound to. */
export function describeCriteria(criteria: AuthLogCriteria): Record<string, string | boolean | string[]> {
  return Object.fromEntries(
    Object.entries(criteria).map(([key, value]) => [key, value instanceof Date ? value.toISOString() : (value as string | boolean | string[])]),
  )
}

const criteriaDigest = (criteria: AuthLogCriteria) =>
  createHash('sha256').update(JSON.stringify(describeCriteria(criteria))).digest('base64url').slice(0, 22)

/** The event types `types` and `typePrefix` allow together, or undefined when neither is set. */
function allowedTypes(criteria: AuthLogCriteria): string[] | undefined {
  const { types, typePrefix } = criteria
  if (types === undefined && typePrefix === undefined) return undefined
  return (types ?? auditEventTypes).filter((type) => typePrefix === undefined || type.startsWith(typePrefix))
}

const escapeLike = (text: string) => text.replace(/[\\%_]/g, '\\$&')

/** The WHERE condition for validated criteria. */
export function criteriaCondition(criteria: AuthLogCriteria): Prisma.Sql {
  const conditions: Prisma.Sql[] = []
  const types = allowedTypes(criteria)
  if (types) conditions.push(Prisma.sql`type = ANY(${types}::text[])`)
  if (criteria.success !== undefined) conditions.push(Prisma.sql`success = ${criteria.success}`)
  if (criteria.invokedByIdentityId) conditions.push(Prisma.sql`identity_id = ${criteria.invokedByIdentityId}::uuid`)
  if (criteria.identityIds) conditions.push(Prisma.sql`identity_id = ANY(${criteria.identityIds}::uuid[])`)
  if (criteria.personId) conditions.push(Prisma.sql`person_id = ${criteria.personId}::uuid`)
  if (criteria.personIds) conditions.push(Prisma.sql`person_id = ANY(${criteria.personIds}::uuid[])`)
  if (criteria.targetPersonId) conditions.push(Prisma.sql`target_person_id = ${criteria.targetPersonId}::uuid`)
  if (criteria.personInputIdentifier !== undefined) conditions.push(Prisma.sql`person_input_identifier = ${criteria.personInputIdentifier}`)
  if (criteria.q) conditions.push(Prisma.sql`${SEARCH_TEXT} ILIKE ${`%${escapeLike(criteria.q)}%`}`)
  if (criteria.clientIp) {
    // `=` keeps an exact address on the index in created_at order; `<<=` becomes an index range.
    conditions.push(
      criteria.clientIp.includes('/')
        ? Prisma.sql`client_ip <<= ${criteria.clientIp}::inet`
        : Prisma.sql`client_ip = ${criteria.clientIp}::inet`,
    )
  }
  if (criteria.createdAfter) conditions.push(Prisma.sql`created_at >= ${criteria.createdAfter.toISOString()}::timestamptz`)
  if (criteria.createdBefore) conditions.push(Prisma.sql`created_at < ${criteria.createdBefore.toISOString()}::timestamptz`)
  if (criteria.throughSequence !== undefined) conditions.push(Prisma.sql`sequence <= ${criteria.throughSequence}::bigint`)
  return conditions.length > 0 ? Prisma.join(conditions, ' AND ') : Prisma.sql`TRUE`
}

export interface KeysetPage {
  readonly criteria: AuthLogCriteria
  /** Only entries older than this, in (created_at, id) order. */
  readonly after?: AuthLogPosition
  readonly limit: number
  readonly offset?: number
}

/**
 * One page of `columns`, newest first. Rows carry "positionAt" (for the next position) besides
 * `columns`. The plain `created_at <=` lets indexes led by another column narrow by time too.
 * Entries written after a walk began have a created_at at or past every position of the walk
 * (the chain trigger keeps created_at in chain order); of them, only one in the position's own
 * millisecond could sort after it, and `throughSequence` keeps it out.
 */
export function keysetPageSql(columns: Prisma.Sql, page: KeysetPage): Prisma.Sql {
  const position = page.after
  const sameInstantBound =
    position?.throughSequence === undefined
      ? Prisma.empty
      : Prisma.sql` AND (created_at < ${position.createdAt}::timestamptz OR sequence <= ${position.throughSequence}::bigint)`
  const after = position
    ? Prisma.sql` AND created_at <= ${position.createdAt}::timestamptz
        AND (created_at, id) < (${position.createdAt}::timestamptz, ${position.id}::uuid)${sameInstantBound}`
    : Prisma.empty
  const offset = page.offset ? Prisma.sql` OFFSET ${page.offset}` : Prisma.empty
  return Prisma.sql`SELECT ${columns}, ${POSITION_AT} AS "positionAt" FROM ${LOG}
    WHERE ${criteriaCondition(page.criteria)}${after} ${ORDER} LIMIT ${page.limit}${offset}`
}

/**
 * One person_auth_log row as authLog reads it: as the driver returns it (the bigint sequence as
 * text), so a page of rows is served without copying each one.
 */
export type AuthLogRow = AuthLogColumns<Date, Record<string, unknown>, string> & {
  /** Lowercase hex. */
  readonly hash: string
  /** created_at to the microsecond (ISO 8601, UTC): where a cursor after this row continues. */
  readonly positionAt: string
}

/** The columns of an AuthLogRow, as authLog reads them. */
export const ENTRY_COLUMNS = Prisma.raw(
  `id::text AS id, type, success, created_at AS "createdAt", person_id::text AS "personId", identity_id::text AS "identityId",
   target_person_id::text AS "targetPersonId", abbrev(client_ip) AS "clientIp", user_agent AS "userAgent",
   person_input_identifier AS "personInputIdentifier", error_code AS "errorCode", metadata, event_data AS "eventData",
   sequence::text AS sequence, encode(hash, 'hex') AS hash`,
)

/** The chain head's sequence, read in the page's own snapshot: the walk a first page begins goes no further. */
const HEAD_SEQUENCE = Prisma.raw(`(SELECT sequence::text FROM person_auth_log_head) AS "headSequence"`)

/** authLog's page of entries; a page not after a cursor begins a walk and also reads the chain head. */
export const authLogPageSql = (page: KeysetPage) => keysetPageSql(page.after ? ENTRY_COLUMNS : Prisma.sql`${ENTRY_COLUMNS}, ${HEAD_SEQUENCE}`, page)

export interface AuthLogPage {
  readonly entries: AuthLogRow[]
  readonly hasMore: boolean
  /** Continues after the last entry shown; null when nothing older matches. */
  readonly nextCursor: string | null
}

/** The page size actually served: default 100, at most 500. */
export function pageSize(limit: number | null | undefined): number {
  if (limit == null) return DEFAULT_PAGE_SIZE
  if (!Number.isInteger(limit) || limit < 1) throw new AuthLogQueryError('limit must be at least 1', 'limit')
  return Math.min(limit, MAX_PAGE_SIZE)
}

export interface ReadOptions {
  readonly cursors: CursorCodec
  /** Set when CUSTOS_AUDIT_READS=true: the read is recorded as auth_log_read by this actor. */
  readonly recordReadAs?: AuditActor | null
}

/**
 * One page, newest first; `hasMore` comes from reading one row more, never from a COUNT.
 * `cursor` continues where a previous page with the same filter ended; it cannot be combined
 * with `offset` (a cursor already says where to start).
 */
export async function readAuthLogPage(db: Database, request: AuthLogPageRequest, options: ReadOptions): Promise<AuthLogPage> {
  const criteria = parseAuthLogFilter(request.filter)
  const limit = pageSize(request.limit)
  const offset = request.offset ?? 0
  if (!Number.isInteger(offset) || offset < 0) throw new AuthLogQueryError('offset must not be negative', 'offset')
  const digest = criteriaDigest(criteria)
  let after: AuthLogPosition | undefined
  if (request.cursor != null) {
    // Any offset, 0 too: a client sending both has confused the two ways of paging.
    if (request.offset != null) throw new AuthLogQueryError('cursor and offset cannot be combined', 'cursor')
    const decoded = options.cursors.decode(request.cursor, digest)
    if (!decoded.ok) throw new AuthLogQueryError(decoded.problem, 'cursor')
    after = decoded.position
  }
  // Straight through the driver: on the hottest read, Prisma's raw-query conversions cost more than the query.
  const page = authLogPageSql({ criteria, after, limit: limit + 1, offset })
  const rows = await db.session((session) => session.query<AuthLogRow & { headSequence?: string }>(page.text, page.values))
  const shown = rows.slice(0, limit)
  const last = shown.at(-1)
  const hasMore = rows.length > limit
  if (options.recordReadAs) {
    await recordAuditEntry(db.prisma, options.recordReadAs, {
      type: 'auth_log_read',
      success: true,
      eventData: {
        filter: describeCriteria(criteria),
        limit,
        ...(offset > 0 ? { offset } : {}),
        ...(request.cursor != null ? { cursor: request.cursor } : {}),
      },
    })
  }
  return {
    entries: shown,
    hasMore,
    nextCursor:
      hasMore && last
        ? options.cursors.encode({ createdAt: last.positionAt, id: last.id, throughSequence: after?.throughSequence ?? last.headSequence }, digest)
        : null,
  }
}

/**
 * Every matching row, newest first, in keyset batches of `batchSize`: memory stays flat however
 * many rows match (at most two batches are held). `columns` must include `id` and must not name
 * "positionAt"; each row has it besides them.
 */
export async function* readAuthLogBatches<Row extends Record<string, unknown>>(
  session: SqlSession,
  criteria: AuthLogCriteria,
  columns: Prisma.Sql,
  batchSize: number,
): AsyncGenerator<(Row & { id: string; positionAt: string })[]> {
  const read = (after: AuthLogPosition | undefined) => {
    const sql = keysetPageSql(columns, { criteria, after, limit: batchSize })
    return session.query<Row & { id: string; positionAt: string }>(sql.text, sql.values)
  }
  let next: ReturnType<typeof read> | undefined = read(undefined)
  try {
    while (next) {
      const rows: Awaited<typeof next> = await next
      const last = rows.at(-1)
      // The database reads the next batch while the caller handles this one.
      next = last && rows.length === batchSize ? read({ createdAt: last.positionAt, id: last.id }) : undefined
      if (rows.length > 0) yield rows
    }
  } finally {
    // A caller that stops early leaves no query running on the session it gives back.
    await next?.catch(() => {})
  }
}

/** A value criteriaCondition binds, written as a literal: text, a boolean, or a list of text. */
function sqlLiteral(value: unknown): string {
  if (typeof value === 'boolean') return String(value)
  if (Array.isArray(value)) return `ARRAY[${value.map(sqlLiteral).join(', ')}]`
  // The statement travels as a C string: a NUL would cut it short.
  if (typeof value === 'string' && !value.includes('\0')) return pg.escapeLiteral(value)
  throw new TypeError(`Cannot write ${JSON.stringify(value)} as an SQL literal`)
}

/**
 * Every matching row of `columns`, newest first, as one statement with its values written as
 * literals: for COPY, which takes no parameters. The literals are typed by the same casts.
 */
export function allRowsStatement(columns: Prisma.Sql, criteria: AuthLogCriteria): string {
  const sql = Prisma.sql`SELECT ${columns} FROM ${LOG} WHERE ${criteriaCondition(criteria)} ${ORDER}`
  return sql.strings.reduce((text, part, index) => `${text}${sqlLiteral(sql.values[index - 1])}${part}`)
}

/**
 * How many entries match (for progress reporting, not for paging), and the criteria cut at the
 * chain head the count saw. Entries become visible in chain order (the head stays locked until
 * the entry commits), so reading with the cut criteria later yields exactly the entries counted,
 * however many are recorded in between.
 */
export async function countAuthLog(session: SqlSession, criteria: AuthLogCriteria): Promise<{ count: number; criteria: AuthLogCriteria }> {
  const sql = Prisma.sql`SELECT (SELECT count(*)::int FROM ${LOG} WHERE ${criteriaCondition(criteria)}) AS count,
                                (SELECT sequence::text FROM person_auth_log_head) AS head`
  const [row] = await session.query<{ count: number; head: string }>(sql.text, sql.values)
  return { count: row!.count, criteria: { ...criteria, throughSequence: row!.head } }
}

export interface TypeCount {
  readonly type: string
  readonly count: number
}

const DAY_MS = 86_400_000
export const DEFAULT_WINDOW_DAYS = 30

/**
 * The event types that occurred since `since` (default: 30 days ago), most frequent first.
 * One index-only range scan of (type, created_at) per catalog type, however large the log.
 */
export async function authLogTypes(prisma: PrismaClient, since: Date | null | undefined, now = new Date()): Promise<TypeCount[]> {
  const from = validDate(since, 'since') ?? new Date(now.getTime() - DEFAULT_WINDOW_DAYS * DAY_MS)
  return prisma.$queryRaw<TypeCount[]>(authLogTypesSql(from))
}

export const authLogTypesSql = (from: Date) => Prisma.sql`
  SELECT type, count FROM (
    SELECT t.type, (SELECT count(*)::int FROM ${LOG} l WHERE l.type = t.type AND l.created_at >= ${from.toISOString()}::timestamptz) AS count
      FROM unnest(${[...auditEventTypes]}::text[]) AS t(type)
  ) counted
  WHERE count > 0 ORDER BY count DESC, type`

export const authLogBuckets = { HOUR: 3_600_000, DAY: DAY_MS } as const
export type AuthLogBucket = keyof typeof authLogBuckets
export const MAX_STATS_BUCKETS = 2_000

export interface BucketCount {
  readonly start: Date
  readonly count: number
  readonly types: TypeCount[]
}

export interface AuthLogStats {
  readonly bucket: AuthLogBucket
  /** The window counted: createdAfter (default 30 days before `to`) to createdBefore (default now). */
  readonly from: Date
  readonly to: Date
  readonly total: number
  readonly types: TypeCount[]
  /** Every bucket of the window in time order (UTC), empty ones included, for charts. */
  readonly buckets: BucketCount[]
}

/** Counts per (bucket start, type); `criteria` must bound created_at on both sides. */
export const authLogStatsSql = (criteria: AuthLogCriteria, bucket: AuthLogBucket) => Prisma.sql`
  SELECT date_trunc(${bucket.toLowerCase()}, created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS start, type, count(*)::int AS count
    FROM ${LOG} WHERE ${criteriaCondition(criteria)}
   GROUP BY 1, 2`

const byCountThenType = (a: TypeCount, b: TypeCount) => b.count - a.count || a.type.localeCompare(b.type)

/** Counts per bucket (hour or UTC day) and per type, for the entries matching `filter`. */
export async function authLogStats(
  prisma: PrismaClient,
  filter: AuthLogFilter | null | undefined,
  bucket: AuthLogBucket,
  now = new Date(),
): Promise<AuthLogStats> {
  const criteria = parseAuthLogFilter(filter)
  const to = criteria.createdBefore ?? now
  // By default the 30 days before the window's end, whether createdBefore or now.
  const from = criteria.createdAfter ?? new Date(Math.max(to.getTime() - DEFAULT_WINDOW_DAYS * DAY_MS, EARLIEST_DATE.getTime()))
  if (from >= to) {
    // Without createdAfter only a createdBefore at the earliest date leaves no window.
    const argument = criteria.createdAfter ? 'filter.createdAfter' : 'filter.createdBefore'
    throw new AuthLogQueryError('filter.createdAfter must be before filter.createdBefore', argument)
  }
  const size = authLogBuckets[bucket]
  const firstStart = Math.floor(from.getTime() / size) * size
  const bucketCount = Math.ceil((to.getTime() - firstStart) / size)
  if (bucketCount > MAX_STATS_BUCKETS) {
    throw new AuthLogQueryError(`The window spans ${bucketCount} ${bucket} buckets; at most ${MAX_STATS_BUCKETS} are counted`, 'bucket')
  }
  const rows = await prisma.$queryRaw<{ start: Date; type: string; count: number }[]>(
    authLogStatsSql({ ...criteria, createdAfter: from, createdBefore: to }, bucket),
  )
  const buckets = Array.from({ length: bucketCount }, (_, index) => ({ start: new Date(firstStart + index * size), count: 0, types: [] as TypeCount[] }))
  const totals = new Map<string, number>()
  for (const row of rows) {
    const target = buckets[Math.round((new Date(row.start).getTime() - firstStart) / size)]
    if (!target) continue
    target.count += row.count
    target.types.push({ type: row.type, count: row.count })
    totals.set(row.type, (totals.get(row.type) ?? 0) + row.count)
  }
  for (const target of buckets) target.types.sort(byCountThenType)
  const types = [...totals].map(([type, count]) => ({ type, count })).sort(byCountThenType)
  return { bucket, from, to, total: types.reduce((sum, { count }) => sum + count, 0), types, buckets }
}
