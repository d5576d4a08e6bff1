import { readSync } from 'node:fs'
import { type FileHandle, open } from 'node:fs/promises'
import { JsonText, MAX_SEQUENCE } from './canonical.js'
import { exportFields } from './export.js'
import type { OrderedRangeEntries, RangeCheckpoint, RangeEntry } from './integrity.js'

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
const EXPORT_FIELD_NAMES = exportFields.map(({ name }) => name)
/** The fields as a CSV header names them: every record holds exactly these, in this order. */
const EXPORT_FIELD_LIST = EXPORT_FIELD_NAMES.join(',')
const FIELD_INDEX = new Map(EXPORT_FIELD_NAMES.map((name, index) => [name, index]))
const HASH = /^[0-9a-f]{64}$/i
const SEQUENCE = /^[1-9]\d*$/

/**
 * The raw text of each member of a JSON object, which JSON.parse has accepted already: strings are
 * stepped over whole, and a value ends at the first comma or closing bracket outside them at its depth.
 */
function rawMembers(json: string, where: string): Map<string, string> {
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
    // JSON.parse keeps a repeated key's last value: the text would show two, the chain proves one.
    if (members.has(key)) throw new ExportFileError(`${where}: the key ${key} appears twice`)
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
  const raw = rawMembers(line, where)
  // Nothing the chain does not prove: a member more (a note added to a verified file) would pass as part of the log.
  if ([...raw.keys()].join(',') !== EXPORT_FIELD_LIST) {
    throw new ExportFileError(`${where}: the keys are not those of an export entry, in their order: ${EXPORT_FIELD_NAMES.join(', ')}`)
  }
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

/** CSV records in, entries out: the first record is the header, an export's exactly. */
class CsvEntries {
  private headerRead = false

  take(record: string, number: number): RangeEntry | undefined {
    const where = `line ${number}`
    const fields = csvFields(record, where)
    if (!this.headerRead) {
      if (fields.join(',') !== EXPORT_FIELD_LIST) throw new ExportFileError(`${where}: the CSV header is not an export's: ${EXPORT_FIELD_LIST}`)
      this.headerRead = true
      return undefined
    }
    if (fields.length !== FIELD_INDEX.size) throw new ExportFileError(`${where}: ${fields.length} fields, the header has ${FIELD_INDEX.size}`)
    return rangeEntry((name, kind) => {
      const value = fields[FIELD_INDEX.get(name)!]!
      if (kind === 'boolean') return value === 'true' ? true : value === 'false' ? false : value
      if (kind === 'json' && value !== null && !isJson(value)) throw new ExportFileError(`${where}: ${name} is not JSON`)
      return value
    }, where)
  }
}

/** Lines with their line ends, numbered from 1, each with the byte offset it starts at, from bytes arriving in chunks. */
async function* numberedLines(chunks: AsyncIterable<Buffer>): AsyncGenerator<{ line: Buffer; number: number; offset: number }> {
  let pending: Buffer = Buffer.alloc(0)
  let pendingOffset = 0
  let number = 0
  for await (const chunk of chunks) {
    pending = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk
    let start = 0
    for (let end = pending.indexOf(0x0a); end >= 0; end = pending.indexOf(0x0a, start)) {
      yield { line: pending.subarray(start, end + 1), number: ++number, offset: pendingOffset + start }
      start = end + 1
    }
    pending = pending.subarray(start)
    pendingOffset += start
  }
  if (pending.length > 0) yield { line: pending, number: ++number, offset: pendingOffset }
}

/** A record's text without its line end, and the first without a byte order mark. */
const recordText = (record: string) => record.replace(/\r?\n$/, '').replace(/^\uFEFF/, '')
const quotes = (text: string) => text.split('"').length - 1

/** Tells JSONL from CSV by the first record (a JSON object or not) and reads records; CSV keeps its header for the records after it. */
class RecordParser {
  private csv: CsvEntries | null | undefined

  get isCsv(): boolean {
    return Boolean(this.csv)
  }

  /** The entry of one record's text (recordText); undefined for the CSV header. */
  parse(text: string, number: number): RangeEntry | undefined {
    this.csv ??= text.trimStart().startsWith('{') ? null : new CsvEntries()
    return this.csv ? this.csv.take(text, number) : jsonlEntry(text, number)
  }
}

/** One entry of an export file, and where its record lies in the file. */
interface ExportRecord {
  readonly entry: RangeEntry
  readonly number: number
  readonly offset: number
  readonly length: number
}

async function* exportFileRecords(chunks: AsyncIterable<Buffer>, parser: RecordParser): AsyncGenerator<ExportRecord> {
  // A CSV record runs over several lines while a quoted field holds a line break: until its quotes pair up.
  let record = ''
  let recordLine = 0
  let recordOffset = 0
  for await (const { line, number, offset } of numberedLines(chunks)) {
    if (!record) {
      recordLine = number
      recordOffset = offset
    }
    record += line.toString('utf8')
    if (parser.isCsv && quotes(record) % 2 === 1) continue
    const text = recordText(record)
    record = ''
    if (text.trim() === '') continue
    const entry = parser.parse(text, recordLine)
    if (entry) yield { entry, number: recordLine, offset: recordOffset, length: offset + line.length - recordOffset }
  }
  if (record) throw new ExportFileError(`line ${recordLine}: a quoted field is not closed at the end of the file`)
}

/** The entries of an export file as it holds them (an export: newest first), read as the chunks arrive. JSONL or CSV, told apart by the first line: a JSON object or not. */
export async function* exportFileEntries(chunks: AsyncIterable<Buffer>): AsyncGenerator<RangeEntry> {
  for await (const { entry } of exportFileRecords(chunks, new RecordParser())) yield entry
}

/** Bytes read from an export file at a time once it is indexed. */
const BLOCK_BYTES = 1 << 20

/**
 * An export file's entries in chain order (sequence, then id), whatever order the file has, read
 * from the file as they are asked for. In memory it keeps an index of about 32 bytes an entry
 * (sequence, place in the file, line, rank), not the entries: ten million take about 320 MB.
 * An export is newest first, so the chain runs backwards through the file: each read takes the
 * block that ends with the record asked for, and the entries before it come from the same block.
 */
export class ExportFile implements OrderedRangeEntries {
  private block = Buffer.alloc(0)
  private blockStart = 0
  private blockLength = 0

  private constructor(
    private readonly handle: FileHandle,
    private readonly parser: RecordParser,
    private readonly sequences: BigInt64Array,
    private readonly offsets: Float64Array,
    private readonly lengths: Uint32Array,
    private readonly lines: Uint32Array,
    /** Records in chain order. */
    private readonly order: readonly number[],
  ) {}

  /** Reads the file once through, checking every record; ExportFileError names the first that is not an entry. */
  static async open(path: string): Promise<ExportFile> {
    const handle = await open(path, 'r')
    try {
      const parser = new RecordParser()
      let sequences = new BigInt64Array(1024)
      let offsets = new Float64Array(1024)
      let lengths = new Uint32Array(1024)
      let lines = new Uint32Array(1024)
      let count = 0
      for await (const { entry, number, offset, length } of exportFileRecords(handle.createReadStream({ autoClose: false }), parser)) {
        const sequence = BigInt(entry.sequence)
        if (sequence > MAX_SEQUENCE) throw new ExportFileError(`line ${number}: sequence is larger than any entry can have`)
        if (count === sequences.length) {
          sequences = grown(sequences, new BigInt64Array(count * 2))
          offsets = grown(offsets, new Float64Array(count * 2))
          lengths = grown(lengths, new Uint32Array(count * 2))
          lines = grown(lines, new Uint32Array(count * 2))
        }
        sequences[count] = sequence
        offsets[count] = offset
        lengths[count] = length
        lines[count] = number
        count++
      }
      // Newest first, the file reversed is nearly in chain order already, which the sort finds in one pass.
      const order = Array.from({ length: count }, (_, index) => count - 1 - index)
      const file = new ExportFile(handle, parser, sequences, offsets, lengths, lines, order)
      order.sort((a, b) => {
        const [sequenceA, sequenceB] = [sequences[a]!, sequences[b]!]
        if (sequenceA !== sequenceB) return sequenceA < sequenceB ? -1 : 1
        // Two entries claiming one sequence (a forgery): by id, read for these two only.
        const [idA, idB] = [file.record(a).id, file.record(b).id]
        return idA < idB ? -1 : idA > idB ? 1 : 0
      })
      return file
    } catch (error) {
      await handle.close()
      throw error
    }
  }

  get length(): number {
    return this.order.length
  }

  sequenceAt(index: number): bigint {
    return this.sequences[this.order[index]!]!
  }

  entryAt(index: number): RangeEntry {
    return this.record(this.order[index]!)
  }

  select(after: bigint, to: bigint | undefined): OrderedRangeEntries {
    return sortedRange(this, 0, this.length).select(after, to)
  }

  close(): Promise<void> {
    return this.handle.close()
  }

  /** The entry of the file's `record`-th record, read and parsed again (it parsed when the file was opened). */
  private record(record: number): RangeEntry {
    const offset = this.offsets[record]!
    const length = this.lengths[record]!
    if (offset < this.blockStart || offset + length > this.blockStart + this.blockLength) this.load(offset, length)
    const text = this.block.toString('utf8', offset - this.blockStart, offset - this.blockStart + length)
    return this.parser.parse(recordText(text), this.lines[record]!)!
  }

  /** Reads the block around a record: ending with it when reading backwards (the usual way), starting with it when forwards. */
  private load(offset: number, length: number): void {
    const size = Math.max(BLOCK_BYTES, length)
    const start = offset >= this.blockStart + this.blockLength ? offset : Math.max(0, offset + length - size)
    if (this.block.length < size) this.block = Buffer.alloc(size)
    this.blockStart = start
    this.blockLength = 0
    while (this.blockLength < size) {
      const read = readSync(this.handle.fd, this.block, this.blockLength, size - this.blockLength, start + this.blockLength)
      if (read === 0) break
      this.blockLength += read
    }
  }
}

/** Entries `start` to `end` (exclusive) of `entries`, which are in sequence order: `select` bisects. */
function sortedRange(entries: Pick<OrderedRangeEntries, 'sequenceAt' | 'entryAt'>, start: number, end: number): OrderedRangeEntries {
  const firstAbove = (sequence: bigint) => {
    let [low, high] = [start, end]
    while (low < high) {
      const middle = (low + high) >>> 1
      if (entries.sequenceAt(middle) > sequence) high = middle
      else low = middle + 1
    }
    return low
  }
  return {
    length: end - start,
    sequenceAt: (index) => entries.sequenceAt(start + index),
    entryAt: (index) => entries.entryAt(start + index),
    select: (after, to) => {
      const from = firstAbove(after)
      return sortedRange(entries, from, to === undefined ? end : Math.max(from, firstAbove(to)))
    },
  }
}

function grown<T extends BigInt64Array | Float64Array | Uint32Array>(from: T, to: T): T {
  to.set(from as never)
  return to
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
