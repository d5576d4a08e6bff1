import { Prisma } from '../generated/prisma/client.js'
import type { SqlSession } from '../db/database.js'
import { CopyBinaryValues } from '../db/copyBinary.js'
import type { AuthLogColumns } from './columns.js'
import { type AuthLogCriteria, allRowsStatement, describeCriteria, readAuthLogBatches } from './query.js'
import { type AuditActor, recordAuditEntry } from './recorder.js'

/**
 * The log as a file: JSON Lines (one AuthLogEntry per line, the GraphQL shape) or CSV (RFC 4180).
 */

export const exportFormats = ['jsonl', 'csv'] as const
export type ExportFormat = (typeof exportFormats)[number]

/** Entries per keyset batch where there is no COPY (PGlite). */
export const EXPORT_BATCH_SIZE = 2_000

/** An entry as authLog returns it over GraphQL, and as a JSONL export line holds it. */
export interface AuthLogEntryJson extends Omit<AuthLogColumns<string, Record<string, unknown> | null, number>, 'identityId'> {
  readonly invokedByIdentityId: string | null
  readonly hash: string
}

/**
 * `token`: ids, times, types and addresses, which never hold a comma, quote or line break;
 * `text`: anything a client typed; `json`: JSON text; `number`: a non-null number.
 */
type FieldKind = 'token' | 'text' | 'boolean' | 'json' | 'number'

/** The exported fields, in order: the CSV header and the JSON keys. */
export const exportFields = [
  { name: 'id', sql: 'id::text', kind: 'token' },
  { name: 'createdAt', sql: `to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`, kind: 'token' },
  { name: 'type', sql: 'type', kind: 'token' },
  { name: 'success', sql: 'success', kind: 'boolean' },
  { name: 'invokedByIdentityId', sql: 'identity_id::text', kind: 'token' },
  { name: 'personId', sql: 'person_id::text', kind: 'token' },
  { name: 'targetPersonId', sql: 'target_person_id::text', kind: 'token' },
  { name: 'personInputIdentifier', sql: 'person_input_identifier', kind: 'text' },
  { name: 'errorCode', sql: 'error_code', kind: 'text' },
  { name: 'clientIp', sql: 'abbrev(client_ip)', kind: 'token' },
  { name: 'userAgent', sql: 'user_agent', kind: 'text' },
  { name: 'metadata', sql: 'metadata::text', kind: 'json' },
  { name: 'eventData', sql: 'event_data::text', kind: 'json' },
  { name: 'sequence', sql: 'sequence::text', kind: 'number' },
  { name: 'hash', sql: `encode(hash, 'hex')`, kind: 'token' },
] as const satisfies readonly { name: string; sql: string; kind: FieldKind }[]

type ExportField = (typeof exportFields)[number]

/**
 * A field's value as JSON text (`null` for NULL). Tokens are quoted as they are: they hold nothing
 * JSON would escape, and skipping to_json is most of what makes a line cheap to render.
 */
function jsonValueSql({ sql, kind }: ExportField): string {
  if (kind === 'json' || kind === 'number') return sql
  if (kind === 'boolean') return `CASE WHEN ${sql} THEN 'true' ELSE 'false' END`
  if (kind === 'token') return `coalesce('"' || ${sql} || '"', 'null')`
  return `coalesce(to_json(${sql})::text, 'null')`
}

const quotedSql = (text: string) => `'"' || replace(${text}, '"', '""') || '"'`

/**
 * RFC 4180: a field holding a comma, quote, CR or LF is quoted, quotes doubled; NULL is an empty
 * field (concat writes NULL as nothing), an empty text `""`, so the two stay apart (the chain hashes
 * them differently). JSON is always quoted (it nearly always holds a quote or
 * comma); tokens never need it.
 */
function csvValueSql({ sql, kind }: ExportField): string {
  if (kind === 'json') return quotedSql(sql)
  if (kind === 'boolean') return `CASE WHEN ${sql} THEN 'true' ELSE 'false' END`
  if (kind === 'token' || kind === 'number') return sql
  return `CASE WHEN ${sql} ~ '[",\r\n]' OR ${sql} = '' THEN ${quotedSql(sql)} ELSE ${sql} END`
}

const literalSql = (text: string) => `'${text.replaceAll("'", "''")}'`

/**
 * One entry as a line of the export, rendered by PostgreSQL next to the data (one concat call per
 * row), so Node only passes bytes on. JSON keys are in exportFields order.
 */
const LINE_SQL: Record<ExportFormat, string> = {
  jsonl: `concat(${exportFields
    .map((field, index) => `${literalSql(`${index ? ',' : '{'}"${field.name}":`)}, ${jsonValueSql(field)}`)
    .join(', ')}, E'}\n')`,
  csv: `concat(${exportFields.map(csvValueSql).join(`, ',', `)}, E'\r\n')`,
}

export const CSV_HEADER = `${exportFields.map(({ name }) => name).join(',')}\r\n`

/** Part of an export: bytes or text to write as they are, holding `entries` whole entries. */
export interface ExportChunk {
  data: Buffer | string
  entries: number
}

/**
 * The export in chunks, newest entry first. On PostgreSQL one `COPY ... TO STDOUT` streams the
 * rendered lines (binary format, so the bytes arrive unescaped) and is read only as fast as the
 * chunks are consumed; on PGlite, which has no COPY to the client, keyset batches are read.
 * Either way memory stays flat whatever the size of the export.
 */
export async function* exportAuthLog(session: SqlSession, criteria: AuthLogCriteria, format: ExportFormat): AsyncGenerator<ExportChunk> {
  if (format === 'csv') yield { data: CSV_HEADER, entries: 0 }
  if (session.copyOut) {
    const values = new CopyBinaryValues()
    const copy = session.copyOut(`COPY (${allRowsStatement(Prisma.raw(LINE_SQL[format]), criteria)}) TO STDOUT (FORMAT binary)`)
    for await (const chunk of copy as AsyncIterable<Buffer>) {
      const { data, rows } = values.take(chunk)
      if (data.length > 0) yield { data, entries: rows }
    }
    if (!values.complete) throw new Error('The export ended before the end of the data')
    return
  }
  for await (const rows of readAuthLogBatches<{ line: string }>(session, criteria, Prisma.raw(`${LINE_SQL[format]} AS line, id`), EXPORT_BATCH_SIZE)) {
    let text = ''
    for (const row of rows) text += row.line
    yield { data: text, entries: rows.length }
  }
}

/** `custos-audit-log-2026-11-22.csv`: the day of the export, UTC. */
export const exportFileName = (format: ExportFormat, now = new Date()) => `custos-audit-log-${now.toISOString().slice(0, 10)}.${format}`

/** Every export is itself an audit entry, with the filter it used. */
export function recordExport(
  writer: Parameters<typeof recordAuditEntry>[0],
  actor: AuditActor,
  criteria: AuthLogCriteria,
  format: ExportFormat,
): Promise<void> {
  return recordAuditEntry(writer, actor, { type: 'auth_log_export', success: true, eventData: { format, filter: describeCriteria(criteria) } })
}
