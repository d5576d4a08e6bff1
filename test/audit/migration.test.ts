import { generateKeyPairSync } from 'node:crypto'
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { verifyAuthLog } from '../../src/audit/integrity.js'
import { type Database, openDatabase } from '../../src/db/database.js'
import { migrate } from '../../src/db/migrator.js'
import { type TestDatabase, createTestDatabase } from '../testkit/database.js'

/** A log written before the chain existed is chained, in time order, by the integrity migration. */

const migrationsDir = fileURLToPath(new URL('../../prisma/migrations', import.meta.url))
const publicKey = generateKeyPairSync('ed25519').publicKey
let testDatabase: TestDatabase
let db: Database
let initOnly: string
const old = ['2025-03-10T08:00:00.000Z', '2025-03-10T08:00:00.000Z', '2025-07-31T23:59:59.999Z', '2026-01-02T00:00:00.000Z']

beforeAll(async () => {
  testDatabase = await createTestDatabase()
  db = await openDatabase(testDatabase.target)
  initOnly = await mkdtemp(join(tmpdir(), 'custos-init-'))
  const [init] = (await readdir(migrationsDir)).sort()
  await cp(join(migrationsDir, init!), join(initOnly, init!), { recursive: true })
  await migrate(db, { migrationsDir: initOnly })
  for (const [index, createdAt] of old.entries()) {
    await db.session((session) =>
      session.query(
        `INSERT INTO person_auth_log (id, type, success, created_at, client_ip, event_data)
         VALUES (gen_random_uuid(), 'login', $1, $2, '192.0.2.9', jsonb_build_object('n', $3::int))`,
        [index % 2 === 0, createdAt, index],
      ),
    )
  }
  await migrate(db)
})

afterAll(async () => {
  await db?.close()
  await testDatabase?.drop()
  await rm(initOnly, { recursive: true, force: true })
})

it('chains the existing entries in time order into their month partitions', async () => {
  const rows = await db.session((session) =>
    session.query<{ sequence: number; created_at: Date; partition: string }>(
      'SELECT sequence::int AS sequence, created_at, tableoid::regclass::text AS partition FROM person_auth_log ORDER BY sequence',
    ),
  )
  expect(rows.map((row) => row.sequence)).toEqual([1, 2, 3, 4])
  expect(rows.map((row) => new Date(row.created_at).toISOString())).toEqual(old)
  expect(rows.map((row) => row.partition)).toEqual(['person_auth_log_2025_03', 'person_auth_log_2025_03', 'person_auth_log_2025_07', 'person_auth_log_2026_01'])
  expect(await verifyAuthLog(db, { publicKey })).toMatchObject({ ok: true, entriesChecked: 4 })
})

it('continues the chain from the copied entries', async () => {
  await db.session((session) => session.query("INSERT INTO person_auth_log (id, type, success) VALUES (gen_random_uuid(), 'login', true)"))
  const result = await verifyAuthLog(db, { publicKey })
  expect(result).toMatchObject({ ok: true, entriesChecked: 5, lastSequence: 5n })
})
