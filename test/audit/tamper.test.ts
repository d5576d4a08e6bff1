import { randomUUID } from 'node:crypto'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { GENESIS_HASH, chainHash } from '../../src/audit/canonical.js'
import { type CopySession, checkSlice, verifyAuthLog } from '../../src/audit/integrity.js'
import type { Database } from '../../src/db/database.js'
import { onPostgres } from '../testkit/database.js'
import { type TestApp, startTestApp } from '../testkit/app.js'
import {
  addLogEntries,
  createLogCheckpoint,
  restoreLogRows,
  snapshotLogRows,
  tamper,
  verifyLog,
} from '../testkit/fixtures.js'

/**
 * An intruder with superuser SQL (triggers off) rewrites the log in every way
 * the issue names; verification must name exactly the first broken entry.
 * Each case puts the log back afterwards and checks it verifies again.
 */

let app: TestApp
let db: Database
const ENTRIES = 10

type Row = { id: string; sequence: number; hash: string }

async function entryAt(sequence: number): Promise<Row> {
  const [row] = await db.session((session) =>
    session.query<Row>("SELECT id, sequence::int AS sequence, encode(hash, 'hex') AS hash FROM person_auth_log WHERE sequence = $1", [sequence]),
  )
  return row!
}

beforeAll(async () => {
  app = await startTestApp()
  db = app.app.services.db
  // Two bootstrap keys, then eight more: entries 1 to 10.
  await addLogEntries(app, ENTRIES - 2)
  expect(await verifyLog(app)).toMatchObject({ ok: true, entriesChecked: ENTRIES, firstBroken: null })
})

afterAll(async () => {
  await app?.stop()
})

let snapshot: Record<string, unknown>[] = []
let inserted: string[] = []

afterEach(async () => {
  if (inserted.length) await tamper(db, 'DELETE FROM person_auth_log WHERE id = ANY($1::uuid[])', [inserted])
  if (snapshot.length) await restoreLogRows(db, snapshot)
  // A case may have moved the head's hash along with the entries.
  await tamper(db, 'UPDATE person_auth_log_head SET hash = (SELECT hash FROM person_auth_log WHERE sequence = person_auth_log_head.sequence)')
  snapshot = []
  inserted = []
  // Every entry up to the head: a case may have added one (a checkpoint's own entry).
  const [head] = await db.session((session) => session.query<{ sequence: number }>('SELECT sequence::int AS sequence FROM person_auth_log_head'))
  expect(await verified()).toMatchObject({ ok: true, entriesChecked: head!.sequence })
})

/**
 * verifyAuthLog over GraphQL (a sequential walk: the log is short), after
 * checking that the parallel fast path, in slices of three entries on two
 * threads (PostgreSQL; PGlite has no second connection), concludes the same.
 */
async function verified(): ReturnType<typeof verifyLog> {
  const publicKey = app.app.services.auditSigner.publicKeyPem
  const sequential = await verifyAuthLog(db, { publicKey, threads: 1 })
  expect(await verifyAuthLog(db, { publicKey, threads: 2, sliceEntries: 3 })).toEqual(sequential)
  return verifyLog(app)
}

/** The fast path's check of entries 1 to the head, from the stored hashes alone (binary COPY: PostgreSQL only). */
async function wholeChainSlice() {
  const [head] = await db.session((session) => session.query<{ sequence: string }>('SELECT sequence::text AS sequence FROM person_auth_log_head'))
  return db.session((session) => checkSlice(session as CopySession, { after: 0n, last: BigInt(head!.sequence), anchorHash: GENESIS_HASH, checkpointSequences: [3n] }))
}

/** Keeps entries `sequences` to put back after the test. */
async function keep(...sequences: number[]) {
  snapshot = await snapshotLogRows(db, 'sequence = ANY($1::bigint[])', [sequences])
}

describe.runIf(onPostgres)("the fast path's slice check", () => {
  it('passes the intact chain and reports the stored hash at a checkpoint sequence', async () => {
    const report = await wholeChainSlice()
    const hex = (bytes: Uint8Array | null) => Buffer.from(bytes!).toString('hex')
    expect(report.ok).toBe(true)
    expect(hex(report.lastHash)).toBe((await entryAt(ENTRIES)).hash)
    expect(report.hashesAt.map(([sequence, hash]) => [sequence, hex(hash)])).toEqual([[3n, (await entryAt(3)).hash]])
  })

  it.each([
    ['a changed column', "UPDATE person_auth_log SET user_agent = 'forged' WHERE sequence = 5"],
    ['a deleted entry', 'DELETE FROM person_auth_log WHERE sequence = 5'],
    ['a duplicated sequence', "UPDATE person_auth_log SET sequence = 4 WHERE sequence = 5"],
  ])('fails on %s', async (_case, change) => {
    await keep(5)
    await tamper(db, change)
    expect((await wholeChainSlice()).ok).toBe(false)
  })
})

describe('verification after tampering', () => {
  it('names a changed column: CONTENT_CHANGED at that entry', async () => {
    await keep(5)
    const victim = await entryAt(5)
    await tamper(db, "UPDATE person_auth_log SET user_agent = 'forged' WHERE sequence = 5")

    const result = await verified()

    expect(result).toMatchObject({ ok: false, entriesChecked: 4, lastSequence: 4 })
    expect(result.firstBroken).toMatchObject({ reason: 'CONTENT_CHANGED', sequence: 5, entryId: victim.id })
  })

  it('names a changed JSON value the same way', async () => {
    await keep(7)
    await tamper(db, `UPDATE person_auth_log SET event_data = jsonb_set(event_data, '{description}', '"other"') WHERE sequence = 7`)

    expect((await verified()).firstBroken).toMatchObject({ reason: 'CONTENT_CHANGED', sequence: 7 })
  })

  it('names a deleted entry: ENTRY_MISSING at its sequence', async () => {
    await keep(6)
    await tamper(db, 'DELETE FROM person_auth_log WHERE sequence = 6')

    const result = await verified()

    expect(result).toMatchObject({ ok: false, entriesChecked: 5 })
    expect(result.firstBroken).toMatchObject({ reason: 'ENTRY_MISSING', sequence: 6, entryId: null })
  })

  it('names the deleted last entry, which the chain head still records', async () => {
    await keep(ENTRIES)
    await tamper(db, 'DELETE FROM person_auth_log WHERE sequence = $1', [ENTRIES])

    expect((await verified()).firstBroken).toMatchObject({ reason: 'ENTRY_MISSING', sequence: ENTRIES })
  })

  it.each([
    ['sorting before the genuine entry', '00000000-0000-4000-8000-000000000000'],
    ['sorting after the genuine entry', 'ffffffff-ffff-4fff-bfff-ffffffffffff'],
  ])('names a forged entry with a made-up hash, %s: ENTRY_INSERTED', async (_case, forgedId) => {
    inserted = [forgedId]
    await tamper(
      db,
      `INSERT INTO person_auth_log (id, type, success, created_at, sequence, hash)
       SELECT $1, 'login', true, created_at, sequence, sha256('forged') FROM person_auth_log WHERE sequence = 4`,
      [forgedId],
    )

    const result = await verified()

    expect(result).toMatchObject({ ok: false, entriesChecked: 3 })
    expect(result.firstBroken).toMatchObject({ reason: 'ENTRY_INSERTED', sequence: 4, entryId: forgedId })
  })

  it('names a forged entry whose hash links correctly to its predecessor: its successor does not link to it', async () => {
    const predecessor = await entryAt(3)
    const genuine = await entryAt(4)
    const forged = {
      sequence: 4n,
      id: '00000000-0000-4000-8000-000000000001',
      createdAt: new Date(),
      type: 'login',
      success: true,
      personId: null,
      identityId: null,
      targetPersonId: null,
      clientIp: '192.0.2.1',
      userAgent: 'forger',
      personInputIdentifier: 'someone@example.test',
      errorCode: null,
      metadata: {},
      eventData: {},
    }
    forged.createdAt.setUTCMilliseconds(0)
    const hash = chainHash(Buffer.from(predecessor.hash, 'hex'), forged)
    inserted = [forged.id]
    await tamper(
      db,
      `INSERT INTO person_auth_log (id, type, success, created_at, client_ip, user_agent, person_input_identifier, sequence, hash)
       VALUES ($1, 'login', true, $2, '192.0.2.1', 'forger', 'someone@example.test', 4, decode($3, 'hex'))`,
      [forged.id, forged.createdAt.toISOString(), hash.toString('hex')],
    )

    const result = await verified()

    expect(result.firstBroken).toMatchObject({ reason: 'ENTRY_INSERTED', sequence: 4, entryId: forged.id })
    expect(result.firstBroken?.entryId).not.toBe(genuine.id)
  })

  it('names an entry appended past the chain head with the trigger off: ENTRY_INSERTED', async () => {
    const forgedId = randomUUID()
    inserted = [forgedId]
    await tamper(
      db,
      `INSERT INTO person_auth_log (id, type, success, created_at, sequence, hash) VALUES ($1, 'login', true, now(), $2, sha256('forged'))`,
      [forgedId, ENTRIES + 1],
    )

    expect((await verified()).firstBroken).toMatchObject({ reason: 'ENTRY_INSERTED', sequence: ENTRIES + 1, entryId: forgedId })
  })

  it('names two swapped entries: ORDER_CHANGED at the first of them', async () => {
    await keep(4, 8)
    const movedUp = await entryAt(8)
    await tamper(db, 'UPDATE person_auth_log SET sequence = 12 - sequence WHERE sequence IN (4, 8)')

    const result = await verified()

    expect(result).toMatchObject({ ok: false, entriesChecked: 3 })
    expect(result.firstBroken).toMatchObject({ reason: 'ORDER_CHANGED', sequence: 4, entryId: movedUp.id })
  })

  it('names two entries swapped with their sequence numbers and hashes left in place: ORDER_CHANGED', async () => {
    await keep(5, 6)
    await tamper(
      db,
      `UPDATE person_auth_log target SET (sequence, hash) = (source.sequence, source.hash)
         FROM person_auth_log source WHERE target.sequence IN (5, 6) AND source.sequence = 11 - target.sequence`,
    )

    expect((await verified()).firstBroken).toMatchObject({ reason: 'ORDER_CHANGED', sequence: 5 })
  })

  it('names a change re-hashed through the whole chain at the signed checkpoint after it: CHECKPOINT_MISMATCH', async () => {
    // Signs entry ENTRIES; the checkpoint's own entry is the head after it.
    await createLogCheckpoint(app)
    const head = ENTRIES + 1
    await keep(...Array.from({ length: head - 4 }, (_, index) => index + 5))
    // The intruder knows the algorithm: changes entry 5, recomputes every hash after it, and moves the head.
    await tamper(db, "UPDATE person_auth_log SET user_agent = 'forged' WHERE sequence = 5")
    for (let sequence = 5; sequence <= head; sequence++) {
      await tamper(
        db,
        `UPDATE person_auth_log SET hash = sha256((SELECT hash FROM person_auth_log WHERE sequence = $1 - 1) || convert_to(person_auth_log_canonical(
           sequence, id, created_at, type, success, person_id, identity_id, target_person_id, client_ip, user_agent,
           person_input_identifier, error_code, metadata, event_data), 'UTF8'))
         WHERE sequence = $1`,
        [sequence],
      )
    }
    await tamper(db, 'UPDATE person_auth_log_head SET hash = (SELECT hash FROM person_auth_log WHERE sequence = $1)', [head])

    const result = await verified()

    expect(result).toMatchObject({ ok: false, entriesChecked: ENTRIES, checkpointsChecked: 1 })
    expect(result.firstBroken).toMatchObject({ reason: 'CHECKPOINT_MISMATCH', sequence: ENTRIES })
  })
})

describe('things the log refers to', () => {
  it('can be renamed or deleted without touching a log row', async () => {
    const [key] = await db.session((session) =>
      session.query<{ id: string; identity_id: string }>(
        "SELECT event_data->>'apiKeyId' AS id, event_data->>'identityId' AS identity_id FROM person_auth_log WHERE sequence = 3",
      ),
    )
    const before = await snapshotLogRows(db, "event_data->>'apiKeyId' = $1", [key!.id])
    await db.session(async (session) => {
      await session.query('UPDATE identity SET description = $1 WHERE id = $2', ['renamed', key!.identity_id])
      await session.query('DELETE FROM api_key WHERE id = $1', [key!.id])
      await session.query('DELETE FROM identity WHERE id = $1', [key!.identity_id])
    })

    expect(before).toHaveLength(1)
    expect(await snapshotLogRows(db, "event_data->>'apiKeyId' = $1", [key!.id])).toEqual(before)
  })
})
