import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Database, openDatabase } from '../../src/db/database.js'
import { type TestDatabase, createTestDatabase, onPostgres } from '../testkit/database.js'

// Prisma's interactive transactions on PostgreSQL, committed by src/db/flushAfterCommit.ts.
describe.skipIf(!onPostgres)('transactions commit asynchronously, then wait for the flush', () => {
  let database: TestDatabase
  let db: Database
  const sql = (text: string) => db.session((session) => session.query<Record<string, unknown>>(text))

  beforeAll(async () => {
    database = await createTestDatabase()
    db = await openDatabase(database.target)
    await sql(`CREATE TABLE note (id int, CONSTRAINT note_id_unique UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)`)
  })
  afterAll(async () => {
    await db.close()
    await database.drop()
  })

  const openTransactions = async () =>
    Number((await sql(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`))[0]!.n)

  it('returns once everything the transaction wrote is flushed to disk', async () => {
    for (let attempt = 0; attempt < 20; attempt++) {
      const written = await db.prisma.$transaction(async (tx) => {
        await tx.$executeRawUnsafe(`INSERT INTO note VALUES (${attempt})`)
        const [row] = await tx.$queryRawUnsafe<{ lsn: string }[]>('SELECT pg_current_wal_insert_lsn()::text AS lsn')
        return row!.lsn
      })
      const [flushed] = await sql(`SELECT pg_current_wal_flush_lsn() >= '${written}'::pg_lsn AS durable`)
      expect(flushed!.durable).toBe(true)
    }
    expect((await sql('SELECT count(*)::int AS n FROM note'))[0]!.n).toBe(20)
  })

  it('a commit that fails is an error, keeps nothing and leaves no transaction open on the pooled connection', async () => {
    await expect(
      db.prisma.$transaction(async (tx) => {
        await tx.$executeRawUnsafe('INSERT INTO note VALUES (1000), (1000)')
      }),
    ).rejects.toThrow(/UniqueConstraintViolation/)
    expect((await sql('SELECT count(*)::int AS n FROM note WHERE id = 1000'))[0]!.n).toBe(0)
    expect(await openTransactions()).toBe(0)
  })

  it('a transaction whose statement failed is not reported as committed', async () => {
    await expect(
      db.prisma.$transaction(async (tx) => {
        await tx.$executeRawUnsafe('INSERT INTO note VALUES (2000)')
        await tx.$executeRawUnsafe('SELECT 1 / 0').catch(() => {})
      }),
    ).rejects.toThrow(/aborted/)
    expect((await sql('SELECT count(*)::int AS n FROM note WHERE id = 2000'))[0]!.n).toBe(0)
    expect(await openTransactions()).toBe(0)
    // The pool's connections are all still usable.
    await Promise.all(Array.from({ length: 12 }, (_, index) => db.prisma.$transaction((tx) => tx.$executeRawUnsafe(`INSERT INTO note VALUES (${3000 + index})`))))
    expect((await sql('SELECT count(*)::int AS n FROM note WHERE id >= 3000'))[0]!.n).toBe(12)
  })
})
