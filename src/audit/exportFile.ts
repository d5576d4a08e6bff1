import { JsonText } from './canonical.js'
import { exportFields } from './export.js'
import type { RangeCheckpoint, RangeEntry } from './integrity.js'

/**
 * An export file (JSONL or CSV, as GET /tenant/audit-log/export.* and `custos export` write them)
 * and a checkpoints file (authLogCheckpoints) read back for verifyRange, with nothing else: what a
 * verifier without database access holds. Every value is kept exactly as written, metadata and
 * eventData as their JSON text (JSON.parse would round 1.0 to 1 and digits past 2^53, and the
 * chain hashes the digits).
 */

/** A file that cannot be read as an export or checkpoints: where (1-based line, or element) and why. */
export class ExportFileError extends Error {}

type FieldName = (typeof exportFields)[number]['name']
type FieldKind = (typeof exportFields)[number]['kind']

/** Fields every entry has; the others may be null. */
const REQUIRED = new Set<FieldName>(['id', 'createdAt', 'type', 'success', 'metadata', 'eventData', 'sequence', 'hash'])
const HASH = /^[0-9a-f]{64}$/i
const SEQUENCE = /^[1-9]\d*$/

/**
 * The raw text of each member of a JSON object, which JSON.parse has accepted already: strings are
 * stepped over whole, and a value ends at the first comma or closing bracket outside them at its depth.
 */
function rawMembers(json: string): Map<string, string> {
  const members = new Map<string, string>()
  let position = json.indexOf('{') + 1
  const skipString = () => {
    position++
    for (;;) {
      const code = json.charCodeAt(position++)
      if (code === 0x5c) position++
      else if (code === 0x22) return
    }
  }
  for (;;) {
    position = json.indexOf('"', position)
    if (position < 0) return members
    const keyStart = position
    skipString()
    const key = JSON.parse(json.slice(keyStart, position)) as string
    position = json.indexOf(':', position) + 1
    const valueStart = position
    for (let depth = 0; ; ) {
      const code = json.charCodeAt(position)
      if (code === 0x22) {
        skipString()
        continue
      }
      if (code === 0x7b || code === 0x5b) depth++
      else if (code === 0x7d || code === 0x5d) {
        if (depth === 0) break
        depth--
      } else if (code === 0x2c && depth === 0) break
      position++
    }
    members.set(key, json.slice(valueStart, position).trim())
    position++
  }
}

/** A field's value as one export line holds it: JSON (`null`, a string, a boolean, a number) in JSONL, CSV text or null in CSV. */
type FieldReader = (name: FieldName, kind: FieldKind) => unknown

/** One entry from its fields, each checked for its kind; `where` names it in errors. */
function rangeEntry(read: FieldReader, where: string): RangeEntry {
  const values = {} as Record<FieldName, unknown>
  for (const { name, kind } of exportFields) {
    const value = read(name, kind)
    const fault =
      value === null || value === undefined
        ? REQUIRED.has(name) && 'is missing'
        : kind === 'boolean'
          ? typeof value !== 'boolean' && 'is not true or false'
          : kind === 'number'
            ? !SEQUENCE.test(String(value)) && 'is not a sequence number'
            : name === 'hash'
              ? !HASH.test(String(value)) && 'is not 64 hexadecimal digits'
              : typeof value !== 'string' && 'is not a string'
    if (fault) throw new ExportFileError(`${where}: ${name} ${fault}`)
    values[name] = value ?? null
  }
  const { invokedByIdentityId, metadata, eventData, sequence, ...columns } = values
  return {
    ...(columns as Omit<RangeEntry, 'identityId' | 'metadata' | 'eventData' | 'sequence'>),
    identityId: invokedByIdentityId as string | null,
    metadata: new JsonText(metadata as string),
    eventData: new JsonText(eventData as string),
    sequence: BigInt(sequence as string),
  }
}

/** A JSONL line: the JSON values as written, metadata, eventData and sequence as their raw text. */
function jsonlEntry(line: string, number: number): RangeEntry {
  const where = `line ${number}`
  let parsed: unknown
  try {
    parsed = JSON.parse(line)
  } catch (error) {
    throw new ExportFileError(`${where}: not JSON (${(error as Error).message})`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ExportFileError(`${where}: not a JSON object`)
  const raw = rawMembers(line)
  const object = parsed as Record<string, unknown>
  return rangeEntry((name, kind) => (kind === 'json' || kind === 'number' ? raw.get(name) : object[name]), where)
}

/** The fields of one CSV record (RFC 4180, without its line end): a quoted field is text, even empty; an unquoted empty one is NULL. */
function csvFields(record: string, where: string): (string | null)[] {
  const fields: (string | null)[] = []
  let position = 0
  for (;;) {
    if (record.charCodeAt(position) === 0x22) {
      let value = ''
      for (position++; ; ) {
        const close = record.indexOf('"', position)
        if (close < 0) throw new ExportFileError(`${where}: a quoted field is not closed`)
        value += record.slice(position, close)
        position = close + 1
        if (record.charCodeAt(position) !== 0x22) break
        value += '"'
        position++
      }
      fields.push(value)
    } else {
      const comma = record.indexOf(',', position)
      const end = comma < 0 ? record.length : comma
      const value = record.slice(position, end)
      if (/["\r\n]/.test(value)) throw new ExportFileError(`${where}: a field holding a quote or line break must be quoted`)
      fields.push(value === '' ? null : value)
      position = end
    }
    if (position === record.length) return fields
    if (record.charCodeAt(position) !== 0x2c) throw new ExportFileError(`${where}: text after a quoted field`)
    position++
  }
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}

/** CSV records in, entries out: the first record is the header and names the columns. */
class CsvEntries {
  private columns: Map<string, number> | undefined

  take(record: string, number: number): RangeEntry | undefined {
    const where = `line ${number}`
    const fields = csvFields(record, where)
    if (!this.columns) {
      this.columns = new Map(fields.map((name, index) => [name ?? '', index]))
      const absent = exportFields.filter(({ name }) => !this.columns!.has(name)).map(({ name }) => name)
      if (absent.length > 0) throw new ExportFileError(`${where}: the CSV header lacks ${absent.join(', ')}`)
      return undefined
    }
    if (fields.length !== this.columns.size) throw new ExportFileError(`${where}: ${fields.length} fields, the header has ${this.columns.size}`)
    return rangeEntry((name, kind) => {
      const value = fields[this.columns!.get(name)!]!
      if (kind === 'boolean') return value === 'true' ? true : value === 'false' ? false : value
      if (kind === 'json' && value !== null && !isJson(value)) throw new ExportFileError(`${where}: ${name} is not JSON`)
      return value
    }, where)
  }
}

/** Lines with their line ends, numbered from 1, from text arriving in chunks. */
async function* numberedLines(chunks: AsyncIterable<string>): AsyncGenerator<[line: string, number: number]> {
  let pending = ''
  let number = 0
  for await (const chunk of chunks) {
    pending += chunk
    let start = 0
    for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n', start)) {
      yield [pending.slice(start, end + 1), ++number]
      start = end + 1
    }
    pending = pending.slice(start)
  }
  if (pending) yield [pending, ++number]
}

const withoutLineEnd = (line: string) => line.replace(/\r?\n$/, '')
const quotes = (text: string) => text.split('"').length - 1

/** The entries of an export file as it holds them (an export: newest first), read as the chunks arrive. JSONL or CSV, told apart by the first line: a JSON object or not. */
export async function* exportFileEntries(chunks: AsyncIterable<string>): AsyncGenerator<RangeEntry> {
  let csv: CsvEntries | null | undefined
  // A CSV record runs over several lines while a quoted field holds a line break: until its quotes pair up.
  let record = ''
  let recordLine = 0
  for await (const [line, number] of numberedLines(chunks)) {
    if (!record) recordLine = number
    record += line
    if (csv && quotes(record) % 2 === 1) continue
    const text = withoutLineEnd(record).replace(/^\uFEFF/, '')
    record = ''
    if (text.trim() === '') continue
    csv ??= text.trimStart().startsWith('{') ? null : new CsvEntries()
    const entry = csv ? csv.take(text, recordLine) : jsonlEntry(text, recordLine)
    if (entry) yield entry
  }
  if (record) throw new ExportFileError(`line ${recordLine}: a quoted field is not closed at the end of the file`)
}

/** The entries of an export file in chain order (sequence, then id), whatever order the file has. */
export async function readExportFile(chunks: AsyncIterable<string>): Promise<RangeEntry[]> {
  const entries: RangeEntry[] = []
  for await (const entry of exportFileEntries(chunks)) entries.push(entry)
  return entries.sort((a, b) => {
    const bySequence = BigInt(a.sequence) - BigInt(b.sequence)
    return bySequence === 0n ? (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) : bySequence < 0n ? -1 : 1
  })
}

/**
 * Checkpoints as authLogCheckpoints returns them: the array, or the whole GraphQL response
 * (`{ "data": { "authLogCheckpoints": [...] } }`). `payload` is not read: the signature is checked
 * against the payload rebuilt from sequence, hash and createdAt.
 */
export function readCheckpointsFile(text: string): RangeCheckpoint[] {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw new ExportFileError(`not JSON (${(error as Error).message})`)
  }
  const list = (value: unknown) => (value as { authLogCheckpoints?: unknown } | null)?.authLogCheckpoints
  const checkpoints = Array.isArray(parsed) ? parsed : (list(parsed) ?? list((parsed as { data?: unknown } | null)?.data))
  if (!Array.isArray(checkpoints)) throw new ExportFileError('neither an array of checkpoints nor a GraphQL response with data.authLogCheckpoints')
  return checkpoints.map((checkpoint: Record<string, unknown> | null, index) => {
    const { sequence, hash, createdAt, signature } = checkpoint ?? {}
    const fault =
      (!(typeof sequence === 'string' ? SEQUENCE.test(sequence) : Number.isSafeInteger(sequence) && (sequence as number) > 0) && 'sequence') ||
      (!(typeof hash === 'string' && HASH.test(hash)) && 'hash') ||
      (!(typeof createdAt === 'string' && !Number.isNaN(Date.parse(createdAt))) && 'createdAt') ||
      (typeof signature !== 'string' && 'signature')
    if (fault) throw new ExportFileError(`checkpoint ${index + 1}: ${fault} is missing or malformed`)
    return { sequence: BigInt(sequence as string | number), hash: hash as string, createdAt: createdAt as string, signature: signature as string }
  })
}
