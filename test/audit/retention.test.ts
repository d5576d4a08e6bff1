import { generateKeyPairSync } from 'node:crypto'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { retentionPayload } from '../../src/audit/checkpointFormat.js'
import { createCheckpoint } from '../../src/audit/checkpoints.js'
import { verifyAuthLog } from '../../src/audit/integrity.js'
import { maintainPartitions } from '../../src/audit/partitions.js'
import { recordAuditEntry, systemActor } from '../../src/audit/recorder.js'
import { auditSigner } from '../../src/crypto/signingKey.js'
import type { Database } from '../../src/db/database.js'
import { createLogger } from '../../src/logger.js'
import { type MigratedTestDatabase, migratedTestDatabase, onPostgres, withMigratedTestDatabase } from '../testkit/database.js'
import { restoreLogRows, snapshotLogRows, tamper } from '../testkit/fixtures.js'

/**
 * Month partitions: inserts always find one, and retention drops whole months
 * after a signed checkpoint of their last entry, leaving a log that verifies.
 */

const signer = auditSigner(generateKeyPairSync('ed25519').privateKey)
const publicKey = signer.publicKeyPem
const logger = createLogger('silent')
const now = new Date()
/** The first instant of the month `offset` months from now (UTC). */
const month = (offset: number) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1))
const partitionOf = (date: Date) => `person_auth_log_${date.toISOString().slice(0, 7).replace('-', '_')}`

const query = <Row extends Record<string, unknown>>(db: Database, sql: string, params?: unknown[]) =>
  db.session((session) => session.query<Row>(sql, params))

/** An entry at a chosen time, as only the owner may write one. */
const entryAt = (db: Database, createdAt: Date) =>
  query(db, "INSERT INTO person_auth_log (id, type, success, created_at) VALUES (gen_random_uuid(), 'login', true, $1)", [createdAt.toISOString()])

const entryNow = (db: Database) =>
  db.prisma.$transaction((tx) => recordAuditEntry(tx, systemActor, { type: 'login', success: false, errorCode: 'UNKNOWN_EMAIL' }))

const partitionNames = async (db: Database) =>
  (
    await query<{ name: string }>(
      db,
      "SELECT child.relname AS name FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid WHERE inhparent = 'person_auth_log'::regclass",
    )
  ).map((row) => row.name)

describe('partitions and retention', () => {
  let testDatabase: MigratedTestDatabase
  let db: Database
  // Three past months: entries 1-2, 3-4 (the last at the month's final millisecond), 5-6 (the first at the next month's first).
  const pastEntries = [
    new Date(month(-3).getTime() + 5 * 86_400_000),
    new Date(month(-3).getTime() + 9 * 86_400_000),
    new Date(month(-2).getTime() + 3 * 86_400_000),
    new Date(month(-1).getTime() - 1),
    month(-1),
    new Date(month(-1).getTime() + 86_400_000),
  ]

  beforeAll(async () => {
    testDatabase = await migratedTestDatabase()
    db = testDatabase.db
    for (const offset of [-3, -2, -1]) {
      await query(db, 'SELECT person_auth_log_create_partition($1::date)', [month(offset).toISOString().slice(0, 10)])
    }
    for (const createdAt of pastEntries) await entryAt(db, createdAt)
    await entryNow(db)
    await entryNow(db)
  })

  afterAll(async () => {
    await testDatabase?.close()
  })

  it('routes every insert to its month, across month boundaries', async () => {
    const rows = await query<{ sequence: number; partition: string }>(
      db,
      'SELECT sequence::int AS sequence, tableoid::regclass::text AS partition FROM person_auth_log ORDER BY sequence',
    )
    expect(rows.map((row) => row.partition)).toEqual([...pastEntries.map(partitionOf), partitionOf(now), partitionOf(now)])
  })

  it('keeps this month and the forward months ready', async () => {
    await maintainPartitions(db, signer, logger, { forwardMonths: 5, retentionMonths: undefined })
    const names = await partitionNames(db)
    for (let offset = 0; offset <= 5; offset++) expect(names).toContain(partitionOf(month(offset)))
    expect(names).toContain('person_auth_log_default')
  })

  it('keeps a month whose chain does not verify, rather than sign and drop it', async () => {
    const kept = await snapshotLogRows(db, 'sequence = 2')
    await tamper(db, "UPDATE person_auth_log SET type = 'password_reset' WHERE sequence = 2")
    try {
      const report = await maintainPartitions(db, signer, logger, { forwardMonths: 3, retentionMonths: 1 })
      expect(report.dropped).toEqual([])
      expect(report.retentionStopped).toContain(`${partitionOf(month(-3))} is kept`)
      expect(await partitionNames(db)).toContain(partitionOf(month(-3)))
    } finally {
      await restoreLogRows(db, kept)
    }
  })

  it('drops whole months past retention after a signed checkpoint of each one\'s last entry, and records the drop', async () => {
    const report = await maintainPartitions(db, signer, logger, { forwardMonths: 3, retentionMonths: 1 })

    expect(report.dropped).toEqual([partitionOf(month(-3)), partitionOf(month(-2))])
    expect(await partitionNames(db)).not.toContain(partitionOf(month(-2)))
    const checkpoints = await db.prisma.authLogCheckpoint.findMany({ where: { reason: 'retention' }, orderBy: { sequence: 'asc' } })
    expect(checkpoints.map((checkpoint) => checkpoint.sequence)).toEqual([2n, 4n])
    const recorded = await query<{ event_data: Record<string, string> }>(
      db,
      "SELECT event_data FROM person_auth_log WHERE type = 'auth_log_retention' ORDER BY sequence",
    )
    expect(recorded.map((row) => row.event_data)).toEqual([
      expect.objectContaining({ partition: partitionOf(month(-3)), rangeStart: month(-3).toISOString(), rangeEnd: month(-2).toISOString(), checkpointSequence: '2', checkpointHash: Buffer.from(checkpoints[0]!.hash).toString('hex') }),
      expect.objectContaining({ partition: partitionOf(month(-2)), checkpointSequence: '4' }),
    ])
    const [{ count }] = (await query<{ count: number }>(db, 'SELECT count(*)::int AS count FROM person_auth_log')) as [{ count: number }]
    expect(count).toBe(6)
  })

  it('leaves a log that verifies from the last retention checkpoint', async () => {
    const result = await verifyAuthLog(db, { publicKey })
    expect(result).toMatchObject({ ok: true, entriesChecked: 6, firstBroken: null })
    expect(result.anchor).toMatchObject({ sequence: 4n })
    expect(result.anchor.checkpointId).not.toBeNull()
  })

  it('drops nothing more when run again', async () => {
    expect((await maintainPartitions(db, signer, logger, { forwardMonths: 3, retentionMonths: 1 })).dropped).toEqual([])
  })

  it('reports a month truncated outside retention as missing entries, even with a valid checkpoint at its end', async () => {
    const kept = await snapshotLogRows(db, 'sequence IN (5, 6)')
    // A signed checkpoint happens to sit at the month's last entry; no retention drop records it.
    expect((await createCheckpoint(db, signer, { reason: 'on_demand', actor: systemActor, at: 6n })).ok).toBe(true)
    await tamper(db, `TRUNCATE ${partitionOf(month(-1))}`)
    try {
      const result = await verifyAuthLog(db, { publicKey })
      expect(result).toMatchObject({ ok: false, entriesChecked: 0 })
      expect(result.firstBroken).toMatchObject({ reason: 'ENTRY_MISSING', sequence: 5n })
    } finally {
      await restoreLogRows(db, kept)
    }
    expect((await verifyAuthLog(db, { publicKey })).ok).toBe(true)
  })

  // Any role that may insert into the log (custos_app included) can append an auth_log_retention entry naming a
  // checkpoint; only the statement signed by the audit key makes a missing front a retention drop.
  it('reports a month truncated outside retention even when an auth_log_retention entry is appended to name its checkpoint', async () => {
    const kept = await snapshotLogRows(db, 'sequence IN (5, 6)')
    // The test before this one signed a checkpoint at 6, the month's last entry.
    const [checkpoint] = await query<{ hash: Uint8Array }>(db, 'SELECT hash FROM person_auth_log_checkpoint WHERE sequence = 6 LIMIT 1')
    const statement = { partition: partitionOf(month(-1)), checkpointSequence: 6n, checkpointHash: checkpoint!.hash }
    await tamper(db, `TRUNCATE ${partitionOf(month(-1))}`)
    const forge = (retentionSignature?: string) =>
      recordAuditEntry(db.prisma, systemActor, {
        type: 'auth_log_retention',
        success: true,
        eventData: {
          partition: statement.partition,
          rangeStart: month(-1).toISOString(),
          rangeEnd: month(0).toISOString(),
          checkpointSequence: '6',
          checkpointHash: Buffer.from(statement.checkpointHash).toString('hex'),
          ...(retentionSignature ? { retentionSignature } : {}),
        },
      })
    try {
      await forge()
      expect(await verifyAuthLog(db, { publicKey })).toMatchObject({ ok: false, firstBroken: { reason: 'ENTRY_MISSING', sequence: 5n } })
      // Signed over the right statement, but not by the audit key.
      await forge(auditSigner(generateKeyPairSync('ed25519').privateKey).sign(retentionPayload(statement)).toString('base64'))
      expect(await verifyAuthLog(db, { publicKey })).toMatchObject({ ok: false, firstBroken: { reason: 'ENTRY_MISSING', sequence: 5n } })
    } finally {
      await restoreLogRows(db, kept)
    }
  })
})

describe('a month without a partition', () => {
  let db: Database
  withMigratedTestDatabase((opened) => (db = opened))

  it('has nothing to checkpoint while the log is empty', async () => {
    expect(await createCheckpoint(db, signer, { reason: 'on_demand', actor: systemActor })).toMatchObject({ ok: false, error: { code: 'EMPTY_LOG' } })
  })

  it('lands in the default partition, and the clock never runs backwards for the entries after it', async () => {
    const farAhead = month(24)
    await entryAt(db, farAhead)
    await entryNow(db)

    const rows = await query<{ partition: string; created_at: Date }>(
      db,
      'SELECT tableoid::regclass::text AS partition, created_at FROM person_auth_log ORDER BY sequence',
    )
    expect(rows.map((row) => row.partition)).toEqual(['person_auth_log_default', 'person_auth_log_default'])
    expect(new Date(rows[1]!.created_at).getTime()).toBe(farAhead.getTime())
    expect((await verifyAuthLog(db, { publicKey })).ok).toBe(true)
  })

  it('refuses an entry dated before the previous one', async () => {
    await expect(entryAt(db, now)).rejects.toThrow('precedes the previous entry')
  })

  it('is not created over entries the default partition already holds', async () => {
    const [row] = await query<{ name: string | null }>(db, 'SELECT person_auth_log_create_partition($1::date) AS name', [month(24).toISOString().slice(0, 10)])
    expect(row!.name).toBeNull()
  })
})

describe('retention while the default partition still takes inserts', () => {
  let db: Database
  withMigratedTestDatabase((opened) => (db = opened))

  // An entry committed after retention read the default partition's extent, before it dropped the
  // partition: what happens when a month without a partition begins while retention verifies.
  // Explicit times stand in for that month; only the owner may write them.
  it.runIf(onPostgres)('drops no entry it did not checkpoint', async () => {
    await entryAt(db, new Date(month(-6).getTime() + 86_400_000))
    const writer = new pg.Client({ connectionString: db.url })
    await writer.connect()
    try {
      await writer.query('BEGIN')
      await writer.query("INSERT INTO person_auth_log (id, type, success, created_at) VALUES (gen_random_uuid(), 'login', true, $1)", [
        new Date(month(-5).getTime() + 86_400_000).toISOString(),
      ])
      const retention = maintainPartitions(db, signer, logger, { forwardMonths: 0, retentionMonths: 1 })
      // Retention has signed its checkpoint and waits to detach the partition the writer inserts into.
      await expect.poll(() => query(db, "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'ALTER TABLE person_auth_log DETACH%'"), { timeout: 10_000 }).toHaveLength(1)
      await writer.query('COMMIT')
      expect((await retention).retentionStopped).toMatch(/person_auth_log_default is kept: it took entries up to 2 after its checkpoint at 1/)
    } finally {
      await writer.end()
    }
    const [{ entries }] = (await query<{ entries: number }>(db, "SELECT count(*)::int AS entries FROM person_auth_log WHERE type = 'login'")) as [{ entries: number }]
    const verification = await verifyAuthLog(db, { publicKey })
    expect({ entries, ok: verification.ok, firstBroken: verification.firstBroken }).toEqual({ entries: 2, ok: true, firstBroken: null })
  })
})
