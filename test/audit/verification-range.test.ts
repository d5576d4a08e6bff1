import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCheckpoint } from '../../src/audit/checkpoints.js'
import { openDatabase } from '../../src/db/database.js'
import { migrate } from '../../src/db/migrator.js'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { type TestDatabase, durableTestDatabase } from '../testkit/database.js'
import { addLogEntries, verifyLog } from '../testkit/fixtures.js'

/**
 * The range verifyAuthLog is asked for: it must name entries the log holds, or it is refused with
 * BAD_USER_INPUT; a range is never reported verified for entries that are not there.
 */

const MAX_BIGINT = '9223372036854775807'
const noTimedCheckpoints = { CUSTOS_AUDIT_CHECKPOINT_ENTRIES: '0', CUSTOS_AUDIT_CHECKPOINT_SECONDS: '0' }

/** verifyAuthLog's refusal of `variables`, or its result when it was not refused. */
async function refusal(app: TestApp, variables: Record<string, unknown>) {
  const response = await app.gql('query ($from: BigInt, $to: BigInt) { verifyAuthLog(from: $from, to: $to) { ok entriesChecked } }', {
    variables,
    token: app.rootToken,
  })
  expect(response.data?.verifyAuthLog ?? null, JSON.stringify(variables)).toBeNull()
  expect(response.errors, JSON.stringify(variables)).toHaveLength(1)
  return { message: response.errors![0]!.message, ...response.errors![0]!.extensions }
}

describe('verifyAuthLog(from, to)', () => {
  let app: TestApp
  let head: number

  beforeAll(async () => {
    app = await startTestApp(noTimedCheckpoints)
    await addLogEntries(app, 3)
    head = (await verifyLog(app)).lastSequence
    expect(head).toBeGreaterThanOrEqual(3)
  })

  afterAll(async () => {
    await app?.stop()
  })

  it('refuses a sequence beyond PostgreSQL bigint, naming the argument', async () => {
    const literal = await app.gql('{ verifyAuthLog(from: 99999999999999999999, to: 99999999999999999999) { ok entriesChecked lastSequence } }', {
      token: app.rootToken,
    })
    expect(literal.data?.verifyAuthLog ?? null).toBeNull()
    expect(literal.errors?.[0]).toMatchObject({
      message: `from must be a sequence number from 1 to ${MAX_BIGINT}, not 99999999999999999999`,
      extensions: { code: 'BAD_USER_INPUT', argument: 'from' },
    })
    expect(await refusal(app, { to: '9223372036854775808' })).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'to' })
  })

  it('refuses a from past the last entry, naming it', async () => {
    for (const from of [head + 1, MAX_BIGINT]) {
      expect(await refusal(app, { from })).toEqual({ message: `from is past the last entry, ${head}`, code: 'BAD_USER_INPUT', argument: 'from' })
    }
  })

  it('refuses a to past the last entry rather than verify less than was asked', async () => {
    expect(await refusal(app, { from: 1, to: head + 1 })).toEqual({ message: `to is past the last entry, ${head}`, code: 'BAD_USER_INPUT', argument: 'to' })
  })

  it('still refuses to before from', async () => {
    expect(await refusal(app, { from: head, to: head - 1 })).toEqual({ message: 'to must not be less than from', code: 'BAD_USER_INPUT', argument: 'to' })
  })

  it('verifies a range up to the last entry', async () => {
    expect(await verifyLog(app, { from: head, to: head })).toMatchObject({ ok: true, entriesChecked: head, lastSequence: head, firstBroken: null })
    expect(await verifyLog(app, { from: 1, to: head })).toMatchObject({ ok: true, entriesChecked: head, lastSequence: head })
  })

  // Retention re-signs its checkpoint at the same entry when the drop failed after signing.
  it('signs a checkpoint again at an entry that has one', async () => {
    const { db, auditSigner } = app.app.services
    for (let attempt = 0; attempt < 2; attempt++) {
      expect(await createCheckpoint(db, auditSigner, { reason: 'retention', at: 2n })).toMatchObject({ ok: true, result: { sequence: 2n } })
    }
  })
})

describe('verifyAuthLog(from, to) after retention dropped the oldest entries', () => {
  let app: TestApp
  let database: TestDatabase
  let scratch: string
  const now = new Date()
  const month = (offset: number) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1))

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'custos-verification-range-'))
    database = await durableTestDatabase(join(scratch, 'db'))
    // Entries 1-2 in the month three months ago, 3-4 in the one two months ago: both past retention.
    // Chained entries at a chosen time, before the server's own: only the owner may write them.
    const db = await openDatabase(database.target)
    try {
      await migrate(db)
      const query = (sql: string, params: unknown[]) => db.session((session) => session.query(sql, params))
      for (const offset of [-3, -2]) {
        await query('SELECT person_auth_log_create_partition($1::date)', [month(offset).toISOString().slice(0, 10)])
        for (const day of [1, 2]) {
          await query("INSERT INTO person_auth_log (id, type, success, created_at) VALUES (gen_random_uuid(), 'login', true, $1)", [
            new Date(month(offset).getTime() + day * 86_400_000).toISOString(),
          ])
        }
      }
    } finally {
      await db.close()
    }
    app = await startTestApp({ ...noTimedCheckpoints, CUSTOS_AUDIT_RETENTION_MONTHS: '1' }, { database })
    // Retention drops them at start; running it once more waits for that.
    await app.app.auditMaintenance.maintainPartitions()
    await addLogEntries(app, 1)
  })

  afterAll(async () => {
    await app?.stop()
    await database?.drop()
    await rm(scratch, { recursive: true, force: true })
  })

  it('starts a from among the dropped entries at the retention checkpoint, as a whole verification does', async () => {
    const whole = await verifyLog(app)
    expect(whole).toMatchObject({ ok: true, anchor: { sequence: 4 } })
    expect(await verifyLog(app, { from: 1 })).toEqual(whole)
    expect(await verifyLog(app, { from: 2, to: 5 })).toMatchObject({ ok: true, entriesChecked: 1, anchor: { sequence: 4 }, lastSequence: 5 })
  })

  it('refuses a to among the dropped entries: none of what it names can be checked', async () => {
    for (const range of [{ to: 4 }, { from: 1, to: 2 }]) {
      expect(await refusal(app, range)).toEqual({
        message: 'to is before the first entry, 5: retention dropped the entries before it',
        code: 'BAD_USER_INPUT',
        argument: 'to',
      })
    }
  })
})
