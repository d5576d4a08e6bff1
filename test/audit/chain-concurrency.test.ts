import { execFile } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { verifyAuthLog } from '../../src/audit/integrity.js'
import { type Database, openDatabase } from '../../src/db/database.js'
import { migrate } from '../../src/db/migrator.js'
import { writeEntries } from '../testkit/chainWriter.js'
import { type TestDatabase, createTestDatabase, onPostgres } from '../testkit/database.js'

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
