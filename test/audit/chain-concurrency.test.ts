import { execFile } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { checkpointPayload } from '../../src/audit/checkpointFormat.js'
import { verifyAuthLog } from '../../src/audit/integrity.js'
import { auditSigner } from '../../src/crypto/signingKey.js'
import { type Database, type SqlSession, openDatabase } from '../../src/db/database.js'
import { migrate } from '../../src/db/migrator.js'
import { writeEntries } from '../testkit/chainWriter.js'
import { type TestDatabase, createTestDatabase, migratedTestDatabase, onPostgres } from '../testkit/database.js'

/**
 * Many writers at once, in this process on separate connection pools and in
 * processes of their own, some rolling back after inserting: the chain must
 * come out as one line 1, 2, 3, … with no fork and no gap.
 */

const IN_PROCESS_POOLS = 3
const WRITERS_PER_POOL = 4
const CHILD_PROCESSES = 2
const WRITERS_PER_CHILD = 3
const ENTRIES_PER_WRITER = 30
const ABANDON_EVERY = 7

let testDatabase: TestDatabase
let pools: Database[] = []

beforeAll(async () => {
  if (!onPostgres) return
  testDatabase = await createTestDatabase()
  pools = await Promise.all(Array.from({ length: IN_PROCESS_POOLS }, () => openDatabase(testDatabase.target)))
  await migrate(pools[0]!)
})

afterAll(async () => {
  await Promise.all(pools.map((pool) => pool.close()))
  await testDatabase?.drop()
})

it.runIf(onPostgres)(`${IN_PROCESS_POOLS * WRITERS_PER_POOL + CHILD_PROCESSES * WRITERS_PER_CHILD} concurrent writers leave one chain without gaps`, async () => {
  const writerScript = fileURLToPath(new URL('../testkit/chainWriter.ts', import.meta.url))
  const children = Array.from({ length: CHILD_PROCESSES }, () =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', writerScript, testDatabase.url!, `${WRITERS_PER_CHILD}`, `${ENTRIES_PER_WRITER}`, `${ABANDON_EVERY}`]).then(
      ({ stdout }) => Number(stdout.trim()),
    ),
  )
  const inProcess = pools.flatMap((pool, poolIndex) =>
    Array.from({ length: WRITERS_PER_POOL }, (_, index) => writeEntries(pool, `pool-${poolIndex}-${index}`, ENTRIES_PER_WRITER, ABANDON_EVERY)),
  )
  const committed = (await Promise.all([...inProcess, ...children])).reduce((sum, count) => sum + count, 0)
  const writers = IN_PROCESS_POOLS * WRITERS_PER_POOL + CHILD_PROCESSES * WRITERS_PER_CHILD
  expect(committed).toBe(writers * (ENTRIES_PER_WRITER - Math.floor(ENTRIES_PER_WRITER / ABANDON_EVERY)))

  const [shape] = await pools[0]!.session((session) =>
    session.query<{ count: number; distinct: number; first: number; last: number; backwards: number }>(
      `SELECT count(*)::int AS count, count(DISTINCT sequence)::int AS distinct, min(sequence)::int AS first, max(sequence)::int AS last,
              (SELECT count(*)::int FROM (SELECT created_at < lag(created_at) OVER (ORDER BY sequence) AS back FROM person_auth_log) s WHERE back) AS backwards
         FROM person_auth_log`,
    ),
  )
  expect(shape).toEqual({ count: committed, distinct: committed, first: 1, last: committed, backwards: 0 })
  const result = await verifyAuthLog(pools[0]!, { publicKey: generateKeyPairSync('ed25519').publicKey })
  expect(result).toMatchObject({ ok: true, entriesChecked: committed, firstBroken: null })
}, 120_000)

// Verification reads the chain head and the checkpoints in two statements. Entries committed and signed between them must
// not make a checkpoint seem to lie past the head: that is what entries cut off the end look like.
it('is not misled by a checkpoint signed while it starts', async () => {
  const database = await migratedTestDatabase()
  const signer = auditSigner(generateKeyPairSync('ed25519').privateKey)
  try {
    const { db } = database
    const add = (session: SqlSession) => session.query("INSERT INTO person_auth_log (id, type, success) VALUES (gen_random_uuid(), 'login', true)")
    await db.session(add)
    let signedMeanwhile = false
    // A handle on the same database whose sessions add two entries and sign the new head right after the head is first read.
    const racing: Database = Object.create(db, {
      session: {
        value: <T>(work: (session: SqlSession) => Promise<T>) =>
          db.session((session) =>
            work(
              Object.create(session, {
                query: {
                  value: async (sql: string, params?: unknown[]) => {
                    const rows = await session.query(sql, params)
                    if (signedMeanwhile || !/FROM person_auth_log_head/.test(sql)) return rows
                    signedMeanwhile = true
                    await add(session)
                    await add(session)
                    const [head] = await session.query<{ sequence: string; hash: Uint8Array }>('SELECT sequence::text AS sequence, hash FROM person_auth_log_head')
                    const checkpoint = { sequence: BigInt(head!.sequence), hash: head!.hash, createdAt: new Date() }
                    await session.query(
                      "INSERT INTO person_auth_log_checkpoint (id, sequence, hash, created_at, signature, reason) VALUES (gen_random_uuid(), $1, $2, $3, $4, 'interval')",
                      [head!.sequence, head!.hash, checkpoint.createdAt.toISOString(), signer.sign(checkpointPayload(checkpoint))],
                    )
                    return rows
                  },
                },
              }),
            ),
          ),
      },
    })
    const result = await verifyAuthLog(racing, { publicKey: signer.verificationKeys, threads: 1 })
    expect(signedMeanwhile).toBe(true)
    expect(result).toMatchObject({ ok: true, firstBroken: null })
    expect(await verifyAuthLog(db, { publicKey: signer.verificationKeys })).toMatchObject({ ok: true, entriesChecked: 3, checkpointsChecked: 1 })
  } finally {
    await database.close()
  }
})
