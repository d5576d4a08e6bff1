import { Prisma } from '../generated/prisma/client.js'
import type { SqlSession } from '../db/database.js'
import type { AuthLogColumns } from './columns.js'
import { type AuthLogCriteria, describeCriteria, readAuthLogBatches } from './query.js'
import { type AuditActor, recordAuditEntry } from './recorder.js'

/**
 * The log as a file: JSON Lines (one AuthLogEntry per line, the GraphQL shape) or CSV (RFC 4180).
 * Batches are read by keyset, so memory stays flat whatever the size of the export.
 */

export const exportFormats = ['jsonl', 'csv'] as const
export type ExportFormat = (typeof exportFormats)[number]

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
  { name: 'clientIp', sql: 'host(client_ip)', kind: 'token' },
  { name: 'userAgent', sql: 'user_agent', kind: 'text' },
  { name: 'metadata', sql: 'metadata::text', kind: 'json' },
  { name: 'eventData', sql: 'event_data::text', kind: 'json' },
  { name: 'sequence', sql: 'sequence::text', kind: 'number' },
  { name: 'hash', sql: `encode(hash, 'hex')`, kind: 'token' },
] as const satisfies readonly { name: string; sql: string; kind: FieldKind }[]

type ExportField = (typeof exportFields)[number]

/** A field's value as JSON text (`null` for NULL). */
function jsonValueSql({ sql, kind }: ExportField): string {
  if (kind === 'json' || kind === 'number') return sql
  if (kind === 'boolean') return `CASE WHEN ${sql} THEN 'true' ELSE 'false' END`
  return `coalesce(to_json(${sql})::text, 'null')`
}

const quotedSql = (text: string) => `'"' || replace(${text}, '"', '""') || '"'`

/**
 * RFC 4180: a field holding a comma, quote, CR or LF is quoted, quotes doubled; NULL is an empty
 * field. JSON is always quoted (it nearly always holds a quote or comma); tokens never need it.
 */
function csvValueSql({ sql, kind }: ExportField): string {
  if (kind === 'json') return quotedSql(sql)
  if (kind === 'boolean') return `CASE WHEN ${sql} THEN 'true' ELSE 'false' END`
  if (kind === 'token' || kind === 'number') return `coalesce(${sql}, '')`
  return `CASE WHEN ${sql} IS NULL THEN '' WHEN ${sql} ~ '[",\r\n]' THEN ${quotedSql(sql)} ELSE ${sql} END`
}

/**
 * Each line is rendered by PostgreSQL, next to the data: one text column per row reaches Node,
 * which only joins them. JSON keys are in exportFields order.
 */
const LINE_SQL: Record<ExportFormat, Prisma.Sql> = {
  jsonl: Prisma.raw(
    `'{' || ${exportFields.map((field, index) => `'${index ? ',' : ''}"${field.name}":' || ${jsonValueSql(field)}`).join(' || ')} || E'}\n' AS line, id`,
  ),
  csv: Prisma.raw(`${exportFields.map(csvValueSql).join(` || ',' || `)} || E'\r\n' AS line, id`),
}

export const CSV_HEADER = `${exportFields.map(({ name }) => name).join(',')}\r\n`

/** The export as text chunks, one per batch, newest entry first; `entries` counts the entries in `text`. */
export async function* exportAuthLog(
  session: SqlSession,
  criteria: AuthLogCriteria,
  format: ExportFormat,
): AsyncGenerator<{ text: string; entries: number }> {
  if (format === 'csv') yield { text: CSV_HEADER, entries: 0 }
  for await (const rows of readAuthLogBatches<{ line: string }>(session, criteria, LINE_SQL[format], EXPORT_BATCH_SIZE)) {
    let text = ''
    for (const row of rows) text += row.line
    yield { text, entries: rows.length }
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
