import { hash } from 'node:crypto'
import type { Readable } from 'node:stream'
import { CopyBinaryRows } from '../db/copyBinary.js'
import { canonicalJsonText } from './canonical.js'

/**
 * The fast path's reading of a slice of person_auth_log (see checkSlice in
 * ./integrity.ts): one binary COPY of the slice, each entry's canonical
 * encoding (./canonical.ts, canonicalEntry) written straight from the column
 * bytes into one buffer after its predecessor's stored hash, and hashed there.
 * No row objects, no strings for plain ASCII text: on two cores the server and
 * the verifier share, less work per entry on either side is what counts.
 */

type Kind = 'text' | 'time' | 'json' | 'uuid' | 'int8' | 'bool'

/** The encoding's keys in their canonical (code point) order, with the column expression read for each. */
const FIELDS: ReadonlyArray<readonly [key: string, kind: Kind, expression?: string]> = [
  ['client_ip', 'text', 'abbrev(client_ip)'],
  ['created_at', 'time'],
  ['error_code', 'text'],
  ['event_data', 'json'],
  ['id', 'uuid'],
  ['identity_id', 'uuid'],
  ['metadata', 'json'],
  ['person_id', 'uuid'],
  ['person_input_identifier', 'text'],
  ['sequence', 'int8'],
  ['success', 'bool'],
  ['target_person_id', 'uuid'],
  ['type', 'text'],
  ['user_agent', 'text'],
]
const KINDS = FIELDS.map(([, kind]) => kind)
const KEYS = FIELDS.map(([key], index) => Buffer.from(`${index === 0 ? '{' : ','}"${key}":`, 'latin1'))
const HASH_FIELD = FIELDS.length
const SELECT_LIST = [...FIELDS.map(([key, , expression]) => expression ?? key), 'hash'].join(', ')

const QUOTE = 0x22
const BACKSLASH = 0x5c
const NULL = Buffer.from('null', 'latin1')
const TRUE = Buffer.from('true', 'latin1')
const FALSE = Buffer.from('false', 'latin1')
/** Two lowercase hex digits for every byte value, as character codes. */
const HEX_CODES = Buffer.from(Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0')).join(''), 'latin1')
/** PostgreSQL's timestamp epoch, 2000-01-01 UTC, in JavaScript time. */
const POSTGRES_EPOCH_MS = Date.UTC(2000, 0, 1)
/** Beyond about 140 years from 2000 (and for ±infinity) a time is left to the sequential walk, which formats it in SQL. */
const TIME_RANGE_HIGH_WORD = 2 ** 20

/** Any entry this reader cannot encode exactly as canonicalEntry does: the slice is not proven, the sequential walk decides. */
class Unencodable extends Error {}

export interface SliceCheck {
  readonly ok: boolean
  /** The stored hash of the last entry read. */
  readonly lastHash: Buffer | null
  /** The stored hashes at the sequences asked for. */
  readonly hashesAt: Array<[bigint, Buffer]>
}

/**
 * Reads entries after < sequence <= last in (sequence, id) order and checks
 * that they are exactly the sequences after+1 … last, each hashing from its
 * predecessor's stored hash (the first from `previous`) to its own.
 */
export async function checkSliceByCopy(
  copyOut: (statement: string) => Readable,
  after: bigint,
  last: bigint,
  previous: Uint8Array,
  wanted: readonly bigint[],
): Promise<SliceCheck> {
  // Numbers, not bigints, per entry: sequences past 2^53 are left to the sequential walk.
  if (last > BigInt(Number.MAX_SAFE_INTEGER)) return { ok: false, lastHash: null, hashesAt: [] }
  const wantedNumbers = new Set(wanted.map(Number))
  const encoder = new EntryEncoder(previous)
  const rows = new CopyBinaryRows(FIELDS.length + 1)
  const hashesAt: Array<[bigint, Buffer]> = []
  let expected = Number(after) + 1
  let ok = true
  const onRow = (data: Buffer) => {
    if (!ok) return
    try {
      const sequence = encoder.entry(data, rows.starts, rows.lengths)
      ok = sequence === expected && encoder.matchesStored(data, rows.starts[HASH_FIELD]!, rows.lengths[HASH_FIELD]!)
    } catch (error) {
      if (!(error instanceof Unencodable)) throw error
      ok = false
    }
    if (ok && wantedNumbers.has(expected)) hashesAt.push([BigInt(expected), Buffer.from(encoder.previousHash)])
    expected++
  }
  const copy = copyOut(
    `COPY (SELECT ${SELECT_LIST} FROM person_auth_log log WHERE log.sequence > ${after} AND log.sequence <= ${last}
      ORDER BY log.sequence, log.id) TO STDOUT (FORMAT binary)`,
  )
  // Read to the end even once a row fails, so the connection is left ready for its next statement.
  for await (const chunk of copy as AsyncIterable<Buffer>) rows.take(chunk, onRow)
  ok = ok && rows.complete && expected === Number(last) + 1
  return ok ? { ok, lastHash: Buffer.from(encoder.previousHash), hashesAt } : { ok, lastHash: null, hashesAt: [] }
}

/** Writes entries' canonical encodings after the previous hash, in one buffer reused from entry to entry. */
class EntryEncoder {
  private buffer = Buffer.allocUnsafe(64 * 1024)
  private at = 0
  private readonly plainJson = new PlainJsonWriter()
  private second = Number.NaN
  private secondText: Buffer = Buffer.alloc(0)

  constructor(previous: Uint8Array) {
    this.buffer.set(previous, 0)
  }

  get previousHash(): Buffer {
    return this.buffer.subarray(0, 32)
  }

  /** Encodes the row's entry after the previous hash; returns its sequence. */
  entry(data: Buffer, starts: Int32Array, lengths: Int32Array): number {
    this.reserve(32 + 6 * (starts[HASH_FIELD]! - starts[0]!) + 1024)
    this.at = 32
    let sequence = 0
    for (let field = 0; field < KINDS.length; field++) {
      this.bytes(KEYS[field]!)
      const start = starts[field]!
      const length = lengths[field]!
      if (length < 0) {
        // As canonicalEntry writes a null; a null time, JSON or sequence makes it throw.
        if (KINDS[field] === 'time' || KINDS[field] === 'json' || KINDS[field] === 'int8') throw new Unencodable()
        this.bytes(NULL)
        continue
      }
      switch (KINDS[field]) {
        case 'text':
          this.text(data, start, length)
          break
        case 'time':
          this.time(data, start, length)
          break
        case 'json':
          this.json(data, start, length)
          break
        case 'uuid':
          this.uuid(data, start, length)
          break
        case 'int8':
          sequence = int8(data, start, length)
          this.at += this.buffer.write(String(sequence), this.at, 'latin1')
          break
        case 'bool':
          if (length !== 1) throw new Unencodable()
          this.bytes(data[start] ? TRUE : FALSE)
          break
      }
    }
    this.buffer[this.at++] = 0x7d
    return sequence
  }

  /** Whether the entry just encoded hashes to the stored hash at `start`, which then becomes the previous hash. */
  matchesStored(data: Buffer, start: number, length: number): boolean {
    if (length !== 32) return false
    const computed = hash('sha256', this.buffer.subarray(0, this.at), 'buffer')
    if (computed.compare(data, start, start + 32) !== 0) return false
    computed.copy(this.buffer, 0)
    return true
  }

  private reserve(length: number) {
    if (length > this.buffer.length) {
      const larger = Buffer.allocUnsafe(length)
      this.buffer.copy(larger, 0, 0, 32)
      this.buffer = larger
    }
  }

  private bytes(bytes: Buffer) {
    this.copy(bytes, 0, bytes.length)
  }

  /** Short runs byte by byte: cheaper than Buffer#copy's native call. */
  private copy(source: Buffer, start: number, end: number) {
    if (end - start > 64) {
      this.at += source.copy(this.buffer, this.at, start, end)
      return
    }
    const buffer = this.buffer
    let at = this.at
    for (let index = start; index < end; index++) buffer[at++] = source[index]!
    this.at = at
  }

  /** As JSON.stringify writes the string: ASCII without quotes, backslashes or controls is copied as it is. */
  private text(data: Buffer, start: number, length: number) {
    const buffer = this.buffer
    const opening = this.at
    let at = opening
    buffer[at++] = QUOTE
    for (let index = start; index < start + length; index++) {
      const byte = data[index]!
      if (byte < 0x20 || byte >= 0x80 || byte === QUOTE || byte === BACKSLASH) {
        this.at = opening + buffer.write(JSON.stringify(data.toString('utf8', start, start + length)), opening, 'utf8')
        return
      }
      buffer[at++] = byte
    }
    buffer[at++] = QUOTE
    this.at = at
  }

  /** timestamptz: microseconds since 2000 UTC, as "YYYY-MM-DDTHH:MM:SS.mmmZ" (milliseconds truncated, as to_char's MS). */
  private time(data: Buffer, start: number, length: number) {
    if (length !== 8) throw new Unencodable()
    const high = data.readInt32BE(start)
    if (high >= TIME_RANGE_HIGH_WORD || high < -TIME_RANGE_HIGH_WORD) throw new Unencodable()
    const micros = high * 2 ** 32 + data.readUInt32BE(start + 4)
    const millis = POSTGRES_EPOCH_MS + (micros - (((micros % 1000) + 1000) % 1000)) / 1000
    const second = Math.floor(millis / 1000)
    // Neighbouring entries mostly share their second: its text is made once.
    if (second !== this.second) {
      this.second = second
      this.secondText = Buffer.from(`"${new Date(second * 1000).toISOString().slice(0, 20)}`, 'latin1')
    }
    this.bytes(this.secondText)
    const fraction = millis - second * 1000
    const buffer = this.buffer
    buffer[this.at++] = 0x30 + Math.floor(fraction / 100)
    buffer[this.at++] = 0x30 + (Math.floor(fraction / 10) % 10)
    buffer[this.at++] = 0x30 + (fraction % 10)
    buffer[this.at++] = 0x5a
    buffer[this.at++] = QUOTE
  }

  /** jsonb: a version byte, then the text; anything but plain ASCII JSON is left to canonicalJsonText. */
  private json(data: Buffer, start: number, length: number) {
    if (length < 1 || data[start] !== 1) throw new Unencodable()
    const at = this.at
    if (this.plainJson.write(data, start + 1, start + length, this.buffer, at)) {
      this.at = this.plainJson.written
      return
    }
    this.at = at + this.buffer.write(canonicalJsonText(data.toString('utf8', start + 1, start + length)), at, 'utf8')
  }

  private uuid(data: Buffer, start: number, length: number) {
    if (length !== 16) throw new Unencodable()
    const buffer = this.buffer
    let at = this.at
    buffer[at++] = QUOTE
    for (let index = 0; index < 16; index++) {
      if (index === 4 || index === 6 || index === 8 || index === 10) buffer[at++] = 0x2d
      const byte = data[start + index]! * 2
      buffer[at++] = HEX_CODES[byte]!
      buffer[at++] = HEX_CODES[byte + 1]!
    }
    buffer[at++] = QUOTE
    this.at = at
  }
}

function int8(data: Buffer, start: number, length: number): number {
  if (length !== 8) throw new Unencodable()
  const high = data.readInt32BE(start)
  // Within Number's exact integers.
  if (high < 0 || high >= 2 ** 21) throw new Unencodable()
  return high * 2 ** 32 + data.readUInt32BE(start + 4)
}

/** Thrown inside PlainJsonWriter at the first thing it does not write itself. */
const NOT_PLAIN = { notPlain: true }

const SPACE = 0x20
const isSpace = (byte: number) => byte === SPACE || byte === 0x0a || byte === 0x0d || byte === 0x09
const isDigit = (byte: number) => byte >= 0x30 && byte <= 0x39
const LITERALS = [Buffer.from('true'), Buffer.from('false'), Buffer.from('null')]

/**
 * canonicalJsonText on bytes, for the JSON PostgreSQL prints for jsonb when it
 * is plain: ASCII, no escapes, numbers already in numeric form. Spaces are
 * dropped and object members put in key order (for ASCII, byte order is code
 * point order); anything else (non-ASCII, an escape, an exponent, a duplicate
 * key, invalid JSON) makes write() return false, and canonicalJsonText decides.
 */
class PlainJsonWriter {
  private input: Buffer = Buffer.alloc(0)
  private position = 0
  private end = 0
  private output: Buffer = Buffer.alloc(0)
  /** Where the output ended after a successful write. */
  written = 0
  /** Where an object's members are copied while they are put in order. */
  private spare: Buffer = Buffer.alloc(1024)
  private readonly members: number[] = []

  write(input: Buffer, start: number, end: number, output: Buffer, at: number): boolean {
    this.input = input
    this.position = start
    this.end = end
    this.output = output
    this.written = at
    this.members.length = 0
    try {
      this.value()
      this.skipSpace()
      return this.position === this.end
    } catch (error) {
      if (error === NOT_PLAIN) return false
      throw error
    }
  }

  private skipSpace() {
    while (this.position < this.end && isSpace(this.input[this.position]!)) this.position++
  }

  private next(): number {
    this.skipSpace()
    if (this.position >= this.end) throw NOT_PLAIN
    return this.input[this.position]!
  }

  private copy(start: number, end: number) {
    for (let index = start; index < end; index++) this.output[this.written++] = this.input[index]!
  }

  private value() {
    const byte = this.next()
    if (byte === QUOTE) return this.string()
    if (byte === 0x7b) return this.object()
    if (byte === 0x5b) return this.array()
    if (byte === 0x2d || isDigit(byte)) return this.number()
    for (const literal of LITERALS) {
      if (literal[0] === byte && this.input.compare(literal, 0, literal.length, this.position, this.position + literal.length) === 0) {
        this.copy(this.position, this.position + literal.length)
        this.position += literal.length
        return
      }
    }
    throw NOT_PLAIN
  }

  private string() {
    const start = this.position++
    for (;;) {
      if (this.position >= this.end) throw NOT_PLAIN
      const byte = this.input[this.position++]!
      if (byte === QUOTE) break
      if (byte < 0x20 || byte >= 0x80 || byte === BACKSLASH) throw NOT_PLAIN
    }
    this.copy(start, this.position)
  }

  /** -?(0|[1-9][0-9]*)(.[0-9]+)?, not a negative zero: as numericText leaves it. */
  private number() {
    const start = this.position
    const input = this.input
    if (input[this.position] === 0x2d) this.position++
    const integerStart = this.position
    while (this.position < this.end && isDigit(input[this.position]!)) this.position++
    const integerDigits = this.position - integerStart
    if (integerDigits === 0 || (integerDigits > 1 && input[integerStart] === 0x30)) throw NOT_PLAIN
    let nonZero = integerDigits > 1 || input[integerStart] !== 0x30
    if (this.position < this.end && input[this.position] === 0x2e) {
      const fractionStart = ++this.position
      while (this.position < this.end && isDigit(input[this.position]!)) {
        if (input[this.position] !== 0x30) nonZero = true
        this.position++
      }
      if (this.position === fractionStart) throw NOT_PLAIN
    }
    const following = input[this.position]
    if (following === 0x65 || following === 0x45 || (input[start] === 0x2d && !nonZero)) throw NOT_PLAIN
    this.copy(start, this.position)
  }

  private array() {
    this.position++
    this.output[this.written++] = 0x5b
    if (this.next() === 0x5d) {
      this.position++
      this.output[this.written++] = 0x5d
      return
    }
    for (;;) {
      this.value()
      const separator = this.next()
      this.position++
      this.output[this.written++] = separator
      if (separator === 0x5d) return
      if (separator !== 0x2c) throw NOT_PLAIN
    }
  }

  private object() {
    this.position++
    const objectStart = this.written
    this.output[this.written++] = 0x7b
    if (this.next() === 0x7d) {
      this.position++
      this.output[this.written++] = 0x7d
      return
    }
    // Per member, on a stack shared with nested objects: where its key's characters start and end and where the member ends, in the output.
    const members = this.members
    const first = members.length
    let ordered = true
    for (;;) {
      if (this.next() !== QUOTE) throw NOT_PLAIN
      const keyStart = this.written + 1
      this.string()
      const keyEnd = this.written - 1
      if (this.next() !== 0x3a) throw NOT_PLAIN
      this.position++
      this.output[this.written++] = 0x3a
      this.value()
      if (members.length > first) {
        const order = this.compareKeys(members[members.length - 3]!, members[members.length - 2]!, keyStart, keyEnd)
        if (order === 0) throw NOT_PLAIN
        if (order > 0) ordered = false
      }
      members.push(keyStart, keyEnd, this.written)
      const separator = this.next()
      this.position++
      if (separator === 0x7d) break
      if (separator !== 0x2c) throw NOT_PLAIN
      this.output[this.written++] = 0x2c
    }
    if (!ordered) this.reorder(objectStart, first)
    members.length = first
    this.output[this.written++] = 0x7d
  }

  /** Byte order of two keys in the output. */
  private compareKeys(aStart: number, aEnd: number, bStart: number, bEnd: number): number {
    const output = this.output
    const length = Math.min(aEnd - aStart, bEnd - bStart)
    for (let index = 0; index < length; index++) {
      const difference = output[aStart + index]! - output[bStart + index]!
      if (difference !== 0) return difference
    }
    return aEnd - aStart - (bEnd - bStart)
  }

  /** Rewrites the object's members (from `first` on the stack) in key order; objects are small, so an insertion sort. */
  private reorder(objectStart: number, first: number) {
    const members = this.members
    for (let next = first + 3; next < members.length; next += 3) {
      const keyStart = members[next]!
      const keyEnd = members[next + 1]!
      const end = members[next + 2]!
      let at = next
      while (at > first && this.compareKeys(members[at - 3]!, members[at - 2]!, keyStart, keyEnd) > 0) {
        members[at] = members[at - 3]!
        members[at + 1] = members[at - 2]!
        members[at + 2] = members[at - 1]!
        at -= 3
      }
      members[at] = keyStart
      members[at + 1] = keyEnd
      members[at + 2] = end
    }
    const length = this.written - objectStart
    if (this.spare.length < length) this.spare = Buffer.allocUnsafe(length * 2)
    const spare = this.spare
    const output = this.output
    for (let index = 0; index < length; index++) spare[index] = output[objectStart + index]!
    // A member runs from its key's opening quote to its end (the comma after it excluded).
    let at = objectStart + 1
    for (let member = first; member < members.length; member += 3) {
      if (member > first) output[at++] = 0x2c
      const end = members[member + 2]! - objectStart
      for (let index = members[member]! - 1 - objectStart; index < end; index++) output[at++] = spare[index]!
    }
    if (at !== this.written) throw new Error('reordered JSON object changed length')
  }
}
