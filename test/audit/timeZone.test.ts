import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { type TestDatabase, createTestDatabase, onPostgres } from '../testkit/database.js'
import { createLogCheckpoint, seedLogEntries, sql, verifyLog } from '../testkit/fixtures.js'

/**
 * A database whose TimeZone is not UTC (Debian's initdb takes the host's): Prisma's PostgreSQL
 * adapter reads and writes timestamps without their offset, so the server sets UTC on every
 * connection. +13:45 moves even a day.
 */
describe.runIf(onPostgres)('on a database whose time zone is not UTC', () => {
  let database: TestDatabase
  let app: TestApp
  beforeAll(async () => {
    database = await createTestDatabase({ migrated: true })
    const name = new URL(database.url!).pathname.slice(1)
    const admin = await startTestApp({}, { database })
    await sql(admin, `ALTER DATABASE "${name}" SET timezone = 'Pacific/Chatham'`)
    await admin.stop()
    app = await startTestApp({}, { database })
  })
  afterAll(async () => {
    await app?.stop()
    await database?.drop()
  })

  it('signs checkpoints that verify, with the time they were made', async () => {
    const before = Date.now()
    const checkpoint = await createLogCheckpoint(app)
    expect(Math.abs(new Date(checkpoint.createdAt).getTime() - before)).toBeLessThan(60_000)
    const [row] = await sql<{ createdAt: Date }>(app, 'SELECT created_at AS "createdAt" FROM person_auth_log_checkpoint WHERE id = $1', [checkpoint.id])
    expect(row!.createdAt.toISOString()).toBe(checkpoint.createdAt)
    const verification = await verifyLog(app)
    expect(verification.firstBroken).toBeNull()
    expect(verification.ok).toBe(true)
  })

  it('puts entries in their UTC hour and day in authLogStats, its total the number of entries', async () => {
    // Seeded rows are outside the hash chain: after the checkpoint test.
    const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3 * 3_600_000
    const identifier = `tz-${hour}`
    // 1, 2 and 3 entries in three consecutive hours, each 30 minutes in.
    await seedLogEntries(
      app,
      [0, 1, 1, 2, 2, 2].map((offset) => ({ personInputIdentifier: identifier, createdAt: new Date(hour + offset * 3_600_000 + 1_800_000) })),
    )
    const stats = async (bucket: 'HOUR' | 'DAY') =>
      (
        await app.gql(
          `query ($filter: AuthLogFilter, $bucket: AuthLogBucket) { authLogStats(filter: $filter, bucket: $bucket) { total buckets { start count } } }`,
          {
            variables: { bucket, filter: { personInputIdentifier: identifier, createdAfter: new Date(hour - 86_400_000).toISOString(), createdBefore: new Date(hour + 4 * 3_600_000).toISOString() } },
            token: app.rootToken,
          },
        )
      ).data.authLogStats
    const hourly = await stats('HOUR')
    expect(hourly.total).toBe(6)
    expect(hourly.buckets.filter((bucket: { count: number }) => bucket.count > 0)).toEqual([0, 1, 2].map((offset) => ({ start: new Date(hour + offset * 3_600_000).toISOString(), count: offset + 1 })))
    const daily = await stats('DAY')
    expect(daily.total).toBe(6)
    const days = new Map<string, number>()
    for (const offset of [0, 1, 1, 2, 2, 2]) {
      const day = new Date(hour + offset * 3_600_000).toISOString().slice(0, 10)
      days.set(day, (days.get(day) ?? 0) + 1)
    }
    expect(daily.buckets.filter((bucket: { count: number }) => bucket.count > 0)).toEqual([...days].map(([day, count]) => ({ start: `${day}T00:00:00.000Z`, count })))
  })
})
