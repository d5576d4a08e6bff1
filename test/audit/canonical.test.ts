import { generateKeyPairSync } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ChainEntry, GENESIS_HASH, JsonText, canonicalEntry, canonicalJson, canonicalJsonText, numericText } from '../../src/audit/canonical.js'
import { type CopySession, checkSlice, verifyAuthLog } from '../../src/audit/integrity.js'
import type { Database } from '../../src/db/database.js'
import { type MigratedTestDatabase, migratedTestDatabase, onPostgres } from '../testkit/database.js'

/**
 * The chain trigger (SQL) and src/audit/canonical.ts (TypeScript) must encode
 * every entry to the same bytes; README "Integrity" tells auditors the same rules.
 */

let database: MigratedTestDatabase
let db: Database
const publicKey = generateKeyPairSync('ed25519').publicKey

beforeAll(async () => {
  database = await migratedTestDatabase()
  db = database.db
})

afterAll(async () => {
  await database?.close()
})

const sql = <Row extends Record<string, unknown>>(text: string, params?: unknown[]) => db.session((session) => session.query<Row>(text, params))

describe('numbers', () => {
  it.each(['0', '-0', '-0.0', '7', '-42', '1.50', '3.14159', '1e21', '1E+2', '1.5e-7', '123.4e-2', '0.0012e3', '2.5E3', '12345678901234567890123.25', '5e-30'])(
    '%s is written as PostgreSQL prints it in jsonb',
    async (text) => {
      const [row] = await sql<{ printed: string }>('SELECT ($1::jsonb)::text AS printed', [text])
      expect(numericText(text)).toBe(row!.printed)
    },
  )

  it('writes JavaScript numbers, exponents included, the way the database stores them', async () => {
    for (const value of [0.1, 1e-7, 1e21, 2 ** 60, -0, 123.456]) {
      const [row] = await sql<{ printed: string }>('SELECT ($1::jsonb)::text AS printed', [JSON.stringify(value)])
      expect(canonicalJson(value)).toBe(row!.printed)
    }
  })
})

describe('canonical JSON', () => {
  const samples = [
    '{}',
    '[]',
    '{"b":1,"a":[3,{"z":null,"y":true}],"":false}',
    // Code point order: U+FF5E sorts before U+1F600, though its UTF-16 code unit is larger.
    '{"\\uff5e":1,"\\ud83d\\ude00":2,"é":3,"e":4,"E":5,"ab":6,"a":7}',
    '{"quote":"\\"","backslash":"\\\\","controls":"\\u0001\\b\\f\\n\\r\\t\\u001f","del":"\\u007f","slash":"/","line":"\\u2028"}',
    '{"dup":1,"dup":2}',
    '{"n":[1.50,-0,1e2,0.000001]}',
    '[[],{},[{}],"x"]',
  ]

  it.each(samples)('%s: TypeScript and the database agree', async (text) => {
    const [row] = await sql<{ canonical: string; printed: string }>(
      'SELECT person_auth_log_canonical_json($1::jsonb) AS canonical, ($1::jsonb)::text AS printed',
      [text],
    )
    expect(canonicalJsonText(text)).toBe(row!.canonical)
    // As the verifier reads it: the column printed by PostgreSQL.
    expect(canonicalJsonText(row!.printed)).toBe(row!.canonical)
  })

  it('sorts keys by code point and writes no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, 'x'], c: null } })).toBe('{"a":{"c":null,"d":[1,"x"]},"b":1}')
    expect(canonicalJson({ '\u{1F600}': 1, '\uFF5E': 2 })).toBe('{"\uFF5E":2,"\u{1F600}":1}')
  })

  it('reads JSON text the same as parsed values, whatever its spacing and escapes', () => {
    expect(canonicalJsonText(' { "b" : [ 1 , 2.50 ] ,\n "a" : "\\u00e9\\/" } ')).toBe('{"a":"é/","b":[1,2.50]}')
    const value = { z: [true, null, { y: 'x\n' }], a: -3.25, m: 'é😀' }
    expect(canonicalJsonText(JSON.stringify(value, null, 2))).toBe(canonicalJson(value))
    expect(() => canonicalJsonText('{"a":}')).toThrow(SyntaxError)
  })
})

describe('entries', () => {
  // Every column type, nulls, IPv6 and networks, Unicode and control characters, nested JSON with numbers.
  const rows = [
    `(gen_random_uuid(), 'login', false, NULL, NULL, NULL, '2001:DB8::1', 'Mozilla/5.0 "quoted" \\ ünïcödé 😀', 'someone@example.test', 'INVALID_PASSWORD', '{"reason":"x"}', '{}')`,
    `(gen_random_uuid(), 'global_role_grant', true, gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), '::ffff:192.0.2.7', E'tab\\tnewline\\n', NULL, NULL, '{}', '{"before":{"roles":[]},"after":{"roles":["b","a"]},"n":1.50}')`,
    `(gen_random_uuid(), 'project_update', true, NULL, gen_random_uuid(), NULL, '10.0.0.0/8', NULL, NULL, NULL, '{"retryAfter":30}', '{"after":{"config":{"z":1e-7,"a":[{"k":true}]}}}')`,
    `(gen_random_uuid(), 'auth_log_read', true, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '{}', '{}')`,
    // Keys that jsonb orders by length first, prefixes of each other, nested; then escapes and non-ASCII in JSON.
    `(gen_random_uuid(), 'login', true, NULL, NULL, NULL, '192.0.2.1', '', 'x', 'E', '{"ab":1,"a":2,"a!":3,"b":{"yy":[-0.5,0,-12,{"q":null,"p":false}],"x":"s"}}', '{"k":"a\\"b\\n","é":[1e2]}')`,
  ]

  beforeAll(async () => {
    for (const values of rows) {
      await sql(
        `INSERT INTO person_auth_log (id, type, success, person_id, identity_id, target_person_id, client_ip, user_agent,
                                      person_input_identifier, error_code, metadata, event_data) VALUES ${values}`,
      )
    }
  })

  it('encode to the same text in TypeScript and in the database', async () => {
    // As an export carries them: JSON columns as JSON text, parsed keeping every number's digits.
    const stored = await sql<{ canonical: string; entry: Record<string, unknown>; metadata: string; event_data: string }>(
      `SELECT person_auth_log_canonical(sequence, id, created_at, type, success, person_id, identity_id, target_person_id, client_ip,
                user_agent, person_input_identifier, error_code, metadata, event_data) AS canonical,
              to_jsonb(l) AS entry, metadata::text AS metadata, event_data::text AS event_data
         FROM person_auth_log l ORDER BY sequence`,
    )
    expect(stored).toHaveLength(rows.length)
    for (const { canonical, entry, metadata, event_data } of stored) {
      const exported: ChainEntry = {
        sequence: BigInt(entry.sequence as number),
        id: entry.id as string,
        createdAt: new Date(entry.created_at as string),
        type: entry.type as string,
        success: entry.success as boolean,
        personId: entry.person_id as string | null,
        identityId: entry.identity_id as string | null,
        targetPersonId: entry.target_person_id as string | null,
        clientIp: entry.client_ip as string | null,
        userAgent: entry.user_agent as string | null,
        personInputIdentifier: entry.person_input_identifier as string | null,
        errorCode: entry.error_code as string | null,
        metadata: new JsonText(metadata),
        eventData: new JsonText(event_data),
      }
      expect(canonicalEntry(exported)).toBe(canonical)
    }
  })

  it('hash as the database hashed them: the verifier reproduces every stored hash', async () => {
    const result = await verifyAuthLog(db, { publicKey })
    expect(result).toMatchObject({ ok: true, entriesChecked: rows.length, firstBroken: null })
    const [head] = await sql<{ hash: string }>("SELECT encode(hash, 'hex') AS hash FROM person_auth_log_head")
    expect(result.lastHash.toString('hex')).toBe(head!.hash)
  })

  // The fast path reads slices with binary COPY, which PGlite has not: it walks the chain instead.
  it.runIf(onPostgres)("hash as the database hashed them in the fast path's slice check too (from binary COPY)", async () => {
    const report = await db.session((session) => checkSlice(session as CopySession, { after: 0n, last: BigInt(rows.length), anchorHash: GENESIS_HASH, checkpointSequences: [2n] }))
    const [second] = await sql<{ hash: string }>("SELECT encode(hash, 'hex') AS hash FROM person_auth_log WHERE sequence = 2")
    expect(report.ok).toBe(true)
    expect(report.hashesAt.map(([sequence, hash]) => [sequence, Buffer.from(hash).toString('hex')])).toEqual([[2n, second!.hash]])
  })
})

describe("the chain trigger's encoding", () => {
  // Not inlined, each part runs through the SQL-function executor, which parses and plans its body
  // again in every transaction (the time under the chain lock): migration 20261204000000.
  it('inlines into the statements that call it: no encoding function is left in their plans', async () => {
    const plan = await sql<{ 'QUERY PLAN': string }>(
      `EXPLAIN (VERBOSE, COSTS OFF)
       SELECT person_auth_log_canonical_opening(l.client_ip), person_auth_log_canonical_time(l.created_at),
              person_auth_log_canonical_middle(l.id, l.person_id, l.identity_id, l.person_input_identifier, l.error_code, l.metadata, l.event_data),
              person_auth_log_canonical_closing(l.type, l.success, l.target_person_id, l.user_agent)
         FROM person_auth_log AS l`,
    )
    const output = plan.map((row) => row['QUERY PLAN']).join('\n')
    expect(output).toContain('to_char')
    expect(output).not.toMatch(/person_auth_log_canonical_(opening|time|middle|closing)/)
    // Only a non-empty JSON object needs the plpgsql canonical JSON.
    expect(output).toContain('person_auth_log_canonical_json')
  })
})
