import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GENESIS_HASH, canonicalEntry, chainHash } from '../../src/audit/canonical.js'
import type { Database } from '../../src/db/database.js'
import { type MigratedTestDatabase, migratedTestDatabase } from '../testkit/database.js'
import { restoreLogRows, snapshotLogRows, tamper } from '../testkit/fixtures.js'

/**
 * README "Integrity" tells auditors how to recompute the chain without Custos:
 * its test vector, export query and Python verifier must keep working.
 */

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')

/** The fenced blocks following `marker`, in order. */
function blocksAfter(marker: string, count: number): string[] {
  const start = readme.indexOf(marker)
  expect(start).toBeGreaterThan(0)
  const blocks = [...readme.slice(start).matchAll(/```\w*\n([\s\S]*?)```/g)].map((match) => match[1]!)
  return blocks.slice(0, count)
}

const [vector] = blocksAfter('<!-- test/audit/readme-verifier.test.ts recomputes this vector. -->', 1)
const [exportSql, verifierScript] = blocksAfter('<!-- The two blocks below are run by test/audit/readme-verifier.test.ts. -->', 2)
const [encoding, expectedHash] = vector!.trim().split('\n') as [string, string]

let database: MigratedTestDatabase
let db: Database

beforeAll(async () => {
  database = await migratedTestDatabase()
  db = database.db
})

afterAll(async () => {
  await database?.close()
})

describe('the test vector', () => {
  const columns = JSON.parse(encoding) as Record<string, any>

  it('is what the TypeScript verifier computes', () => {
    const entry = {
      sequence: BigInt(columns.sequence),
      id: columns.id,
      createdAt: columns.created_at,
      type: columns.type,
      success: columns.success,
      personId: columns.person_id,
      identityId: columns.identity_id,
      targetPersonId: columns.target_person_id,
      clientIp: columns.client_ip,
      userAgent: columns.user_agent,
      personInputIdentifier: columns.person_input_identifier,
      errorCode: columns.error_code,
      metadata: columns.metadata,
      eventData: columns.event_data,
    }
    expect(canonicalEntry(entry)).toBe(encoding)
    expect(chainHash(GENESIS_HASH, entry).toString('hex')).toBe(expectedHash)
  })

  it('is what the database stores for that entry', async () => {
    const [row] = await db.session((session) =>
      session.query<{ hash: string }>(
        `INSERT INTO person_auth_log (id, type, success, created_at, identity_id, client_ip, user_agent, person_input_identifier, error_code, metadata)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING encode(hash, 'hex') AS hash`,
        [columns.id, columns.type, columns.success, columns.created_at, columns.identity_id, columns.client_ip, columns.user_agent,
          columns.person_input_identifier, columns.error_code, JSON.stringify(columns.metadata)],
      ),
    )
    expect(row!.hash).toBe(expectedHash)
  })
})

const python = spawnSync('python3', ['--version']).status === 0

describe.runIf(python)('the export query and the Python verifier', () => {
  beforeAll(async () => {
    // Content that tests the encoding: numbers as stored, Unicode, controls, nesting, IPv4.
    await db.session((session) =>
      session.query(
        `INSERT INTO person_auth_log (id, type, success, client_ip, user_agent, metadata, event_data)
         SELECT gen_random_uuid(), 'global_role_grant', true, '10.1.2.3', E'tab\\there 😀', '{"retryAfter": 1.50}',
                jsonb_build_object('before', jsonb_build_object('roles', '[]'::jsonb), 'after', jsonb_build_object('roles', jsonb_build_array('b', 'a')), 'n', n)
           FROM generate_series(1, 4) AS n`,
      ),
    )
  })

  const exportLines = async () => {
    const rows = await db.session((session) => session.query<{ line: string }>(`SELECT line::text AS line FROM (${exportSql}) AS export(line)`))
    return rows.map((row) => row.line).join('\n')
  }
  const verify = (lines: string, args: string[] = []) => spawnSync('python3', ['-c', verifierScript!, ...args], { input: lines, encoding: 'utf8' })

  it('agree with the chain: ok, with the head\'s hash', async () => {
    const [head] = await db.session((session) => session.query<{ hash: string }>("SELECT encode(hash, 'hex') AS hash FROM person_auth_log_head"))
    const result = verify(await exportLines())
    expect(result.stderr).toBe('')
    expect(result.stdout.trim()).toBe(`ok through sequence 5, last hash ${head!.hash}`)
  })

  it('start after a checkpoint when given its sequence and hash', async () => {
    const lines = (await exportLines()).split('\n').slice(2).join('\n')
    const result = verify(lines, ['3', JSON.parse((await exportLines()).split('\n')[1]!).hash])
    expect(result.stdout).toMatch(/^ok through sequence 5, /)
  })

  it('name the first changed entry', async () => {
    const kept = await snapshotLogRows(db, 'sequence = 4')
    await tamper(db, "UPDATE person_auth_log SET user_agent = 'forged' WHERE sequence = 4")
    try {
      const result = verify(await exportLines())
      expect(result.status).toBe(1)
      expect(result.stderr).toContain('broken at 4: entry')
    } finally {
      await restoreLogRows(db, kept)
    }
  })
})
