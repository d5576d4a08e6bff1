import { createHash } from 'node:crypto'

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

/** A JSON number kept as written, so no digit is lost to a double. */
export class JsonNumber {
  constructor(readonly text: string) {}
}

/** A JSON value whose numbers may be JsonNumber (from parseJsonText) or plain JS numbers. */
export type CanonicalJsonValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | JsonNumber
  | readonly CanonicalJsonValue[]
  | { readonly [key: string]: CanonicalJsonValue }

const NUMBER = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/

/**
 * A JSON number as PostgreSQL's numeric prints it after reading it: exponent
 * applied, leading zeros dropped, as many decimals as the input implies
 * (1.50 stays 1.50, 1.5e-7 becomes 0.00000015, 1e21 becomes 1000…0), no minus on zero.
 */
export function numericText(text: string): string {
  const match = NUMBER.exec(text)
  if (!match) throw new Error(`not a JSON number: ${text}`)
  const [, sign, whole, fraction = '', exponentText = '0'] = match
  const exponent = Number(exponentText)
  const digits = whole! + fraction
  // The decimal point sits `point` digits into `digits`.
  const point = whole!.length + exponent
  const scale = Math.max(0, fraction.length - exponent)
  const padded = point < 0 ? '0'.repeat(-point) + digits : digits.padEnd(Math.max(point, 0) + scale, '0')
  const pointAt = Math.max(point, 0)
  const integerPart = padded.slice(0, pointAt).replace(/^0+(?=\d)/, '') || '0'
  const fractionPart = padded.slice(pointAt, pointAt + scale)
  const body = scale > 0 ? `${integerPart}.${fractionPart}` : integerPart
  return sign && /[1-9]/.test(body) ? `-${body}` : body
}

function compareCodePoints(a: string, b: string): number {
  // UTF-16 order differs from code point order only where surrogates meet U+E000–U+FFFF.
  const length = Math.min(a.length, b.length)
  for (let index = 0; index < length; index++) {
    const x = a.charCodeAt(index)
    const y = b.charCodeAt(index)
    if (x !== y) return codePointRank(x) - codePointRank(y)
  }
  return a.length - b.length
}

const codePointRank = (unit: number) => (unit >= 0xd800 ? (unit >= 0xe000 ? unit - 0x800 : unit + 0x2000) : unit)

/** The canonical JSON text of a value. */
export function canonicalJson(value: CanonicalJsonValue): string {
  if (value === null) return 'null'
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
  if (value instanceof JsonNumber) return numericText(value.text)
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(',')}]`
  const object = value as { readonly [key: string]: CanonicalJsonValue }
  const members = Object.keys(object)
    .sort(compareCodePoints)
    .map((key) => `${JSON.stringify(key)}:${canonicalJson(object[key]!)}`)
  return `{${members.join(',')}}`
}

/**
 * Parses JSON text keeping every number as a JsonNumber. A later duplicate key
 * wins, as in jsonb and JSON.parse.
 */
export function parseJsonText(text: string): CanonicalJsonValue {
  // Fast path: without digits there are no numbers, and JSON.parse loses nothing.
  if (!/\d/.test(text)) return JSON.parse(text) as CanonicalJsonValue
  let position = 0
  const fail = (): never => {
    throw new SyntaxError(`invalid JSON at position ${position}`)
  }
  const skipSpace = () => {
    while (position < text.length && ' \t\n\r'.includes(text[position]!)) position++
  }
  const readString = (): string => {
    const start = position
    position++
    let escaped = false
    while (position < text.length) {
      const char = text[position]!
      if (char === '\\') {
        escaped = true
        position += 2
        continue
      }
      position++
      if (char === '"') {
        const literal = text.slice(start, position)
        return escaped ? (JSON.parse(literal) as string) : literal.slice(1, -1)
      }
    }
    return fail()
  }
  const readValue = (): CanonicalJsonValue => {
    skipSpace()
    const char = text[position]
    if (char === '"') return readString()
    if (char === '{') {
      position++
      const object: Record<string, CanonicalJsonValue> = {}
      skipSpace()
      if (text[position] === '}') {
        position++
        return object
      }
      for (;;) {
        skipSpace()
        if (text[position] !== '"') fail()
        const key = readString()
        skipSpace()
        if (text[position++] !== ':') fail()
        object[key] = readValue()
        skipSpace()
        const separator = text[position++]
        if (separator === '}') return object
        if (separator !== ',') fail()
      }
    }
    if (char === '[') {
      position++
      const array: CanonicalJsonValue[] = []
      skipSpace()
      if (text[position] === ']') {
        position++
        return array
      }
      for (;;) {
        array.push(readValue())
        skipSpace()
        const separator = text[position++]
        if (separator === ']') return array
        if (separator !== ',') fail()
      }
    }
    for (const [literal, value] of [['true', true], ['false', false], ['null', null]] as const) {
      if (text.startsWith(literal, position)) {
        position += literal.length
        return value
      }
    }
    const number = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y
    number.lastIndex = position
    const match = number.exec(text) ?? fail()
    position = number.lastIndex
    return new JsonNumber(match[0])
  }
  const value = readValue()
  skipSpace()
  if (position !== text.length) fail()
  return value
}

/** One entry's columns as the chain sees them. */
export interface ChainEntry {
  readonly sequence: bigint
  readonly id: string
  /** ISO 8601 UTC with milliseconds, e.g. 2026-11-22T03:00:00.000Z (or a Date). */
  readonly createdAt: string | Date
  readonly type: string
  readonly success: boolean
  readonly personId: string | null
  readonly identityId: string | null
  readonly targetPersonId: string | null
  /** As PostgreSQL prints an inet: 192.0.2.1, 2001:db8::1 (a /n suffix only for a network). */
  readonly clientIp: string | null
  readonly userAgent: string | null
  readonly personInputIdentifier: string | null
  readonly errorCode: string | null
  readonly metadata: CanonicalJsonValue
  readonly eventData: CanonicalJsonValue
}

const text = (value: string | null) => (value === null ? 'null' : JSON.stringify(value))
const uuid = (value: string | null) => (value === null ? 'null' : `"${value.toLowerCase()}"`)

/** The canonical encoding of an entry: the canonical JSON of its columns (snake_case names) without "hash". */
export function canonicalEntry(entry: ChainEntry): string {
  const createdAt = typeof entry.createdAt === 'string' ? entry.createdAt : entry.createdAt.toISOString()
  // Keys already in code point order.
  return (
    `{"client_ip":${text(entry.clientIp)},"created_at":"${createdAt}","error_code":${text(entry.errorCode)}` +
    `,"event_data":${canonicalJson(entry.eventData)},"id":${uuid(entry.id)},"identity_id":${uuid(entry.identityId)}` +
    `,"metadata":${canonicalJson(entry.metadata)},"person_id":${uuid(entry.personId)}` +
    `,"person_input_identifier":${text(entry.personInputIdentifier)},"sequence":${entry.sequence}` +
    `,"success":${entry.success},"target_person_id":${uuid(entry.targetPersonId)},"type":${text(entry.type)}` +
    `,"user_agent":${text(entry.userAgent)}}`
  )
}

export const GENESIS_HASH: Buffer = Buffer.alloc(32)

/** sha256(previous hash || UTF-8 canonical encoding). */
export function chainHash(previousHash: Uint8Array, entry: ChainEntry): Buffer {
  return createHash('sha256').update(previousHash).update(canonicalEntry(entry), 'utf8').digest()
}
