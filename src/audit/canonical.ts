import { createHash, hash } from 'node:crypto'
import type { AuthLogColumns } from './columns.js'

/**
 * The canonical encoding of a person_auth_log entry and its chain hash, exactly
 * as the database's chain trigger computes them (migration 20261122030000_integrity,
 * person_auth_log_canonical) and as README "Integrity" specifies for auditors:
 *
 *   hash(n) = sha256(hash(n-1) || UTF-8(canonical JSON of entry n without "hash"))
 *   hash(0) = 32 zero bytes
 *
 * Canonical JSON: object keys in Unicode code point order, no whitespace,
 * strings escaped as JSON.stringify does, numbers in PostgreSQL numeric form
 * (plain decimal, no exponent, digits after the point as stored).
 */

/** A JSON value, as JavaScript holds it. */
export type CanonicalJsonValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | readonly CanonicalJsonValue[]
  | { readonly [key: string]: CanonicalJsonValue }

/** JSON kept as text (a jsonb column as PostgreSQL prints it, a line of an export): no digit is lost to a double. */
export class JsonText {
  constructor(readonly text: string) {}
}

const NUMBER = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/
const PLAIN_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?$/
const NEGATIVE_ZERO = /^-0(?:\.0*)?$/

/**
 * A JSON number as PostgreSQL's numeric prints it after reading it: exponent
 * applied, leading zeros dropped, as many decimals as the input implies
 * (1.50 stays 1.50, 1.5e-7 becomes 0.00000015, 1e21 becomes 1000…0), no minus on zero.
 */
export function numericText(text: string): string {
  // As PostgreSQL prints numbers already: nothing to do.
  if (PLAIN_NUMBER.test(text) && !NEGATIVE_ZERO.test(text)) return text
  const match = NUMBER.exec(text)
  if (!match) throw new Error(`not a JSON number: ${text}`)
  const [, sign, whole, fraction = '', exponentText = '0'] = match
  const exponent = Number(exponentText)
  const digits = whole! + fraction
  // The decimal point sits `point` digits into `digits`.
  const point = whole!.length + exponent
  const scale = Math.max(0, fraction.length - exponent)
  const padded = point < 0 ? '0'.repeat(-point) + digits : digits.padEnd(point + scale, '0')
  const pointAt = Math.max(point, 0)
  const integerPart = padded.slice(0, pointAt).replace(/^0+(?=\d)/, '') || '0'
  const body = scale > 0 ? `${integerPart}.${padded.slice(pointAt, pointAt + scale)}` : integerPart
  return sign && /[1-9]/.test(body) ? `-${body}` : body
}

// UTF-16 order differs from code point order only where surrogates meet U+E000–U+FFFF.
const codePointRank = (unit: number) => (unit >= 0xd800 ? (unit >= 0xe000 ? unit - 0x800 : unit + 0x2000) : unit)

function compareCodePoints(a: string, b: string): number {
  const length = Math.min(a.length, b.length)
  for (let index = 0; index < length; index++) {
    const x = a.charCodeAt(index)
    const y = b.charCodeAt(index)
    if (x !== y) return codePointRank(x) - codePointRank(y)
  }
  return a.length - b.length
}

const HIGH_UNITS = /[\ud800-\uffff]/
const compareUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

/** Code point order; the built-in comparison is that already unless a key holds surrogates or U+E000 and above. */
const keyOrder = (keys: readonly string[]) => (keys.some((key) => HIGH_UNITS.test(key)) ? compareCodePoints : compareUnits)

function sortedKeys(object: object): string[] {
  const keys = Object.keys(object)
  return keys.length < 2 ? keys : keys.sort(keyOrder(keys))
}

/** The canonical JSON text of a value. */
export function canonicalJson(value: CanonicalJsonValue): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value)
    case 'boolean':
      return value ? 'true' : 'false'
    case 'number':
      if (!Number.isFinite(value)) throw new Error(`not a JSON number: ${value}`)
      return numericText(String(value))
    case 'bigint':
      return value.toString()
  }
  if (value === null) return 'null'
  if (Array.isArray(value)) {
    let text = '['
    for (let index = 0; index < value.length; index++) text += (index ? ',' : '') + canonicalJson(value[index])
    return `${text}]`
  }
  const object = value as { readonly [key: string]: CanonicalJsonValue }
  let text = '{'
  for (const key of sortedKeys(object)) text += (text.length > 1 ? ',' : '') + JSON.stringify(key) + ':' + canonicalJson(object[key]!)
  return `${text}}`
}

const isSpace = (code: number) => code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09
const LITERALS = ['true', 'false', 'null'] as const
const NUMBER_TOKEN = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y

/** One pass over JSON text, writing canonical JSON (a class: no closures made per call on the verifier's hot path). */
class CanonicalJsonReader {
  private position = 0

  constructor(private readonly json: string) {}

  read(): string {
    const result = this.value()
    this.skipSpace()
    if (this.position !== this.json.length) this.fail()
    return result
  }

  private fail(): never {
    throw new SyntaxError(`invalid JSON at position ${this.position}`)
  }

  private skipSpace() {
    while (this.position < this.json.length && isSpace(this.json.charCodeAt(this.position))) this.position++
  }

  private expect(code: number) {
    this.skipSpace()
    if (this.json.charCodeAt(this.position++) !== code) this.fail()
  }

  /** A string token as JSON.stringify writes it; `value` receives its value. */
  private string(): { token: string; value: string } {
    const start = this.position++
    let escaped = false
    for (;;) {
      const code = this.json.charCodeAt(this.position)
      if (Number.isNaN(code)) this.fail()
      if (code === 0x5c) {
        escaped = true
        this.position += 2
      } else {
        this.position++
        if (code === 0x22) break
      }
    }
    const token = this.json.slice(start, this.position)
    if (!escaped) return { token, value: token.slice(1, -1) }
    const value = JSON.parse(token) as string
    return { token: JSON.stringify(value), value }
  }

  private value(): string {
    this.skipSpace()
    const code = this.json.charCodeAt(this.position)
    if (code === 0x22) return this.string().token
    if (code === 0x7b) return this.object()
    if (code === 0x5b) return this.array()
    for (const literal of LITERALS) {
      if (this.json.startsWith(literal, this.position)) {
        this.position += literal.length
        return literal
      }
    }
    NUMBER_TOKEN.lastIndex = this.position
    const match = NUMBER_TOKEN.exec(this.json) ?? this.fail()
    this.position = NUMBER_TOKEN.lastIndex
    return numericText(match[0])
  }

  private object(): string {
    this.position++
    this.skipSpace()
    if (this.json.charCodeAt(this.position) === 0x7d) {
      this.position++
      return '{}'
    }
    // Objects in the log are small: parallel arrays beat a Map. A later duplicate wins, as in jsonb and JSON.parse.
    const keys: string[] = []
    const members: string[] = []
    for (;;) {
      this.skipSpace()
      if (this.json.charCodeAt(this.position) !== 0x22) this.fail()
      const key = this.string()
      this.expect(0x3a)
      const member = `${key.token}:${this.value()}`
      const earlier = keys.indexOf(key.value)
      if (earlier >= 0) members[earlier] = member
      else {
        keys.push(key.value)
        members.push(member)
      }
      this.skipSpace()
      const separator = this.json.charCodeAt(this.position++)
      if (separator === 0x7d) break
      if (separator !== 0x2c) this.fail()
    }
    if (keys.length === 1) return `{${members[0]}}`
    const compare = keyOrder(keys)
    const order = keys.map((_, index) => index).sort((a, b) => compare(keys[a]!, keys[b]!))
    let text = '{'
    for (const index of order) text += (text.length > 1 ? ',' : '') + members[index]
    return `${text}}`
  }

  private array(): string {
    this.position++
    this.skipSpace()
    if (this.json.charCodeAt(this.position) === 0x5d) {
      this.position++
      return '[]'
    }
    let text = '['
    for (;;) {
      text += (text.length > 1 ? ',' : '') + this.value()
      this.skipSpace()
      const separator = this.json.charCodeAt(this.position++)
      if (separator === 0x5d) return `${text}]`
      if (separator !== 0x2c) this.fail()
    }
  }
}

/**
 * The canonical JSON of JSON text, in one pass over it: values are copied or
 * re-escaped as text, numbers normalized from their digits, never read into doubles.
 */
export function canonicalJsonText(json: string): string {
  return json === '{}' ? json : new CanonicalJsonReader(json).read()
}

/**
 * One entry's columns as the chain sees them; createdAt as ISO 8601 UTC with
 * milliseconds, e.g. 2026-11-22T03:00:00.000Z, or a Date.
 */
export type ChainEntry = AuthLogColumns<string | Date, CanonicalJsonValue | JsonText>

const text = (value: string | null) => (value === null ? 'null' : JSON.stringify(value))
const json = (value: CanonicalJsonValue | JsonText) => (value instanceof JsonText ? canonicalJsonText(value.text) : canonicalJson(value))
const uuid = (value: string | null) => (value === null ? 'null' : `"${value}"`)

/** The canonical encoding of an entry: the canonical JSON of its columns (snake_case names) without "hash". */
export function canonicalEntry(entry: ChainEntry): string {
  const createdAt = typeof entry.createdAt === 'string' ? entry.createdAt : entry.createdAt.toISOString()
  // Keys already in code point order.
  return (
    `{"client_ip":${text(entry.clientIp)},"created_at":"${createdAt}","error_code":${text(entry.errorCode)}` +
    `,"event_data":${json(entry.eventData)},"id":${uuid(entry.id)},"identity_id":${uuid(entry.identityId)}` +
    `,"metadata":${json(entry.metadata)},"person_id":${uuid(entry.personId)}` +
    `,"person_input_identifier":${text(entry.personInputIdentifier)},"sequence":${entry.sequence}` +
    `,"success":${entry.success},"target_person_id":${uuid(entry.targetPersonId)},"type":${text(entry.type)}` +
    `,"user_agent":${text(entry.userAgent)}}`
  )
}

/** The largest sequence number an entry can have (the column is a bigint). */
export const MAX_SEQUENCE = 2n ** 63n - 1n

export const GENESIS_HASH: Buffer = Buffer.alloc(32)

// Room for the previous hash and an entry's encoding: one-shot hashing of it spares a Hash object per entry.
const scratch = Buffer.allocUnsafe(64 * 1024)

/** sha256(previous hash || UTF-8 canonical encoding). */
export function chainHash(previousHash: Uint8Array, entry: ChainEntry): Buffer {
  const encoding = canonicalEntry(entry)
  if (32 + encoding.length * 3 > scratch.length) return createHash('sha256').update(previousHash).update(encoding, 'utf8').digest()
  scratch.set(previousHash, 0)
  const length = 32 + scratch.write(encoding, 32, 'utf8')
  return hash('sha256', scratch.subarray(0, length), 'buffer')
}
