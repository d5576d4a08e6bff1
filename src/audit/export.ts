import { Prisma } from '../generated/prisma/client.js'
import type { SqlSession } from '../db/database.js'
import { type AuthLogCriteria, describeCriteria, readAuthLogBatches } from './query.js'
import { type AuditActor, recordAuditEntry } from './recorder.js'

/**
 * The log as a file: JSON Lines (one AuthLogEntry per line, the GraphQL shape) or CSV (RFC 4180).
 * PostgreSQL renders every value as text, so a row is formatted without parsing and re-encoding
 * it; batches are read by keyset, so memory stays flat whatever the size of the export.
 */

export const exportFormats = ['jsonl', 'csv'] as const
export type ExportFormat = (typeof exportFormats)[number]

export const EXPORT_BATCH_SIZE = 2_000

type FieldKind = 'string' | 'boolean' | 'json'

/** The exported fields, in order: the CSV header and the JSON keys. */
export const exportFields = [
  { name: 'id', sql: 'id::text', kind: 'string' },
  { name: 'createdAt', sql: `to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`, kind: 'string' },
  { name: 'type', sql: 'type', kind: 'string' },
  { name: 'success', sql: 'success', kind: 'boolean' },
  { name: 'invokedByIdentityId', sql: 'identity_id::text', kind: 'string' },
  { name: 'personId', sql: 'person_id::text', kind: 'string' },
  { name: 'targetPersonId', sql: 'target_person_id::text', kind: 'string' },
  { name: 'personInputIdentifier', sql: 'person_input_identifier', kind: 'string' },
  { name: 'errorCode', sql: 'error_code', kind: 'string' },
  { name: 'clientIp', sql: 'host(client_ip)', kind: 'string' },
  { name: 'userAgent', sql: 'user_agent', kind: 'string' },
  { name: 'metadata', sql: 'metadata::text', kind: 'json' },
  { name: 'eventData', sql: 'event_data::text', kind: 'json' },
] as const satisfies readonly { name: string; sql: string; kind: FieldKind }[]

type ExportRow = Record<(typeof exportFields)[number]['name'], string | boolean | null>

const EXPORT_COLUMNS = Prisma.raw(exportFields.map((field) => `${field.sql} AS "${field.name}"`).join(', '))

/** One JSON line. JSON columns arrive as JSON text and are embedded as they are. */
function jsonLine(row: ExportRow): string {
  let line = ''
  for (const { name, kind } of exportFields) {
    const value = row[name]
    const json = value === null ? 'null' : kind === 'string' ? JSON.stringify(value) : String(value)
    line += `${line ? ',' : '{'}${JSON.stringify(name)}:${json}`
  }
  return `${line}}\n`
}

/** RFC 4180: a field holding a comma, quote, CR or LF is quoted, quotes doubled. NULL is an empty field. */
export function csvField(value: string | boolean | null): string {
  if (value === null) return ''
  const text = String(value)
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

const csvLine = (row: ExportRow) => `${exportFields.map(({ name }) => csvField(row[name])).join(',')}\r\n`

export const CSV_HEADER = `${exportFields.map(({ name }) => name).join(',')}\r\n`

/** The export as text chunks, one per batch, newest entry first; `entries` counts the entries in `text`. */
export async function* exportAuthLog(
  session: SqlSession,
  criteria: AuthLogCriteria,
  format: ExportFormat,
): AsyncGenerator<{ text: string; entries: number }> {
  const line = format === 'csv' ? csvLine : jsonLine
  if (format === 'csv') yield { text: CSV_HEADER, entries: 0 }
  for await (const rows of readAuthLogBatches<ExportRow>(session, criteria, EXPORT_COLUMNS, EXPORT_BATCH_SIZE)) {
    let text = ''
    for (const row of rows) text += line(row)
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
