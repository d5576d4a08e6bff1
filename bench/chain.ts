import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto'
import { cpus } from 'node:os'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { createScratchDatabase, DEFAULT_SERVER_URL } from './scratchDatabase.js'
import { verifyAuthLog } from '../src/audit/integrity.js'
import { openDatabase } from '../src/db/database.js'
import { COMMIT_THEN_FLUSH } from '../src/db/flushAfterCommit.js'
import { migrate } from '../src/db/migrator.js'

/**
 * What the hash chain costs: entries per second with 1, 4 and 16 concurrent
 * writers into person_auth_log (chained) next to the same INSERT into an
 * unchained copy of the table in the same database and run, and how fast the
 * chain verifies (parallel fast path and sequential walk). Creates its own database on the server and drops it after.
 *
 *   tsx bench/chain.ts            (BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/test)
 */

export interface ChainBenchmarkOptions {
  /** A server URL; the benchmark creates and drops a database of its own there. */
  readonly url?: string
  readonly writers?: readonly number[]
  /** How long each measurement runs. */
  readonly seconds?: number
  /** Measurements per configuration (and verifications); the median is reported. */
  readonly rounds?: number
  /** The chain is topped up to this many entries before verification is timed. */
  readonly verifyEntries?: number
  readonly log?: (line: string) => void
}

export interface WriterResult {
  readonly writers: number
  /** Entries per second into the unchained copy: one INSERT, committed (synchronous_commit as configured). */
  readonly plain: number
  /** Entries per second into person_auth_log as the application commits them (src/db/flushAfterCommit.ts). */
  readonly chained: number
  /** Entries per second into person_auth_log with the same single INSERT as `plain`: the head held through the WAL flush. */
  readonly chainedNaive: number
}

export interface VerificationTiming {
  readonly entries: number
  readonly seconds: number
  readonly perSecond: number
}

export interface ChainBenchmarkResult {
  readonly writers: WriterResult[]
  /** verifyAuthLog as the server runs it: slices checked in parallel threads, one per core. */
  readonly verification: VerificationTiming
  /** The same with `threads: 1`: the sequential walk alone. */
  readonly sequentialVerification: VerificationTiming
  readonly machine: string
}

type Writer = (client: pg.Client) => Promise<void>

/** One INSERT of a typical failed sign-in, values inline (a single round trip either way). */
function insertStatement(client: pg.Client, table: string): string {
  const literal = (value: string) => client.escapeLiteral(value)
  return `INSERT INTO ${table} (id, type, success, identity_id, client_ip, user_agent, person_input_identifier, error_code, metadata, event_data)
    VALUES (${literal(randomUUID())}, 'login', false, ${literal(randomUUID())}, ${literal(`203.0.113.${randomBytes(1)[0]}`)},
            'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
            ${literal(`user-${randomBytes(4).toString('hex')}@example.test`)}, 'INVALID_PASSWORD',
            ${literal(JSON.stringify({ sessionId: randomUUID() }))}, '{}')`
}

const writers: Record<'plain' | 'chained' | 'chainedNaive', Writer> = {
  plain: async (client) => {
    await client.query(insertStatement(client, 'person_auth_log_unchained'))
  },
  // As the application commits (src/db/flushAfterCommit.ts): asynchronously while holding the head, then, in the same round trip, a flush barrier without it.
  chained: async (client) => {
    await client.query(`BEGIN; ${insertStatement(client, 'person_auth_log')}; ${COMMIT_THEN_FLUSH}`)
  },
  chainedNaive: async (client) => {
    await client.query(insertStatement(client, 'person_auth_log'))
  },
}

/** Entries per second written by `count` connections running `writer` for `seconds`. */
async function measure(url: string, count: number, seconds: number, writer: Writer): Promise<number> {
  const clients = Array.from({ length: count }, () => new pg.Client({ connectionString: url }))
  await Promise.all(clients.map((client) => client.connect()))
  try {
    let written = 0
    const started = performance.now()
    const deadline = started + seconds * 1000
    await Promise.all(
      clients.map(async (client) => {
        while (performance.now() < deadline) {
          await writer(client)
          written++
        }
      }),
    )
    return written / ((performance.now() - started) / 1000)
  } finally {
    await Promise.all(clients.map((client) => client.end()))
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

export async function runChainBenchmark(options: ChainBenchmarkOptions = {}): Promise<ChainBenchmarkResult> {
  const serverUrl = options.url ?? process.env.BENCH_DATABASE_URL ?? DEFAULT_SERVER_URL
  const writerCounts = options.writers ?? [1, 4, 16]
  const seconds = options.seconds ?? 5
  const rounds = options.rounds ?? 3
  const verifyEntries = options.verifyEntries ?? 200_000
  const log = options.log ?? (() => {})
  const scratch = await createScratchDatabase(serverUrl)
  const url = scratch.url
  const db = await openDatabase({ url })
  try {
    await migrate(db)
    // The unchained copy: same columns, constraints, indexes and partitioning; no trigger, no head lock.
    await db.session((session) =>
      session.exec(`
        CREATE TABLE person_auth_log_unchained (LIKE person_auth_log INCLUDING CONSTRAINTS INCLUDING INDEXES) PARTITION BY RANGE (created_at);
        ALTER TABLE person_auth_log_unchained ALTER COLUMN created_at SET DEFAULT now(),
          ALTER COLUMN sequence DROP NOT NULL, ALTER COLUMN hash DROP NOT NULL,
          ALTER COLUMN metadata SET DEFAULT '{}', ALTER COLUMN event_data SET DEFAULT '{}';
        CREATE TABLE person_auth_log_unchained_default PARTITION OF person_auth_log_unchained DEFAULT;`),
    )
    const results: WriterResult[] = []
    for (const count of writerCounts) {
      const samples = { plain: [] as number[], chained: [] as number[], chainedNaive: [] as number[] }
      for (let round = 0; round < rounds; round++) {
        // Interleaved, so a busy moment on the machine hits every variant alike.
        for (const variant of ['plain', 'chained', 'chainedNaive'] as const) {
          samples[variant].push(await measure(url, count, seconds, writers[variant]))
        }
      }
      const result = { writers: count, plain: median(samples.plain), chained: median(samples.chained), chainedNaive: median(samples.chainedNaive) }
      log(`${count} writer(s): plain ${result.plain.toFixed(0)}/s, chained ${result.chained.toFixed(0)}/s, chained naive ${result.chainedNaive.toFixed(0)}/s`)
      results.push(result)
    }

    // Top the chain up through the trigger, in transactions of a thousand (each moves the head row), then time a full verification.
    await db.session(async (session) => {
      for (;;) {
        const [head] = await session.query<{ sequence: string }>('SELECT sequence::text AS sequence FROM person_auth_log_head')
        const missing = verifyEntries - Number(head!.sequence)
        if (missing <= 0) break
        await session.query(
          `INSERT INTO person_auth_log (id, type, success, identity_id, client_ip, user_agent, person_input_identifier, error_code, metadata, event_data)
           SELECT gen_random_uuid(), 'login', false, gen_random_uuid(), '198.51.100.7', 'bench', 'user-' || n || '@example.test', 'INVALID_PASSWORD',
                  jsonb_build_object('sessionId', gen_random_uuid()), jsonb_build_object('attempt', n, 'tags', jsonb_build_array('a', 'b'))
             FROM generate_series(1, $1::int) AS n`,
          [Math.min(missing, 1000)],
        )
      }
    })
    // Interleaved, so a busy moment on the machine hits both alike.
    const publicKey = generateKeyPairSync('ed25519').publicKey
    const timings = { parallel: [] as number[], sequential: [] as number[] }
    let entries = 0
    for (let round = 0; round < rounds; round++) {
      for (const mode of ['parallel', 'sequential'] as const) {
        const started = performance.now()
        const verification = await verifyAuthLog(db, { publicKey, ...(mode === 'sequential' ? { threads: 1 } : {}) })
        timings[mode].push((performance.now() - started) / 1000)
        if (!verification.ok) throw new Error(`the benchmark's chain does not verify: ${verification.firstBroken?.message}`)
        entries = verification.entriesChecked
      }
    }
    const timing = (samples: number[]): VerificationTiming => ({ entries, seconds: median(samples), perSecond: entries / median(samples) })
    const verified = timing(timings.parallel)
    const sequential = timing(timings.sequential)
    log(`verification: ${entries} entries in ${verified.seconds.toFixed(2)} s = ${verified.perSecond.toFixed(0)}/s (sequential walk ${sequential.perSecond.toFixed(0)}/s)`)
    return { writers: results, verification: verified, sequentialVerification: sequential, machine: `${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}` }
  } finally {
    await db.close()
    await scratch.drop()
  }
}

/** The results as the README's table. */
export function chainBenchmarkTable(result: ChainBenchmarkResult): string {
  const rows = result.writers.map(
    (row) =>
      `| ${row.writers} | ${row.plain.toFixed(0)} | ${row.chained.toFixed(0)} | ${(row.chained / row.plain).toFixed(2)} | ${row.chainedNaive.toFixed(0)} |`,
  )
  return [
    '| writers | plain INSERT /s | chained /s | chained ÷ plain | chained, head held through flush /s |',
    '| ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
    `Verification: ${result.verification.entries} entries in ${result.verification.seconds.toFixed(2)} s = **${result.verification.perSecond.toFixed(0)} entries/s**` +
      ` (the sequential walk alone: ${result.sequentialVerification.perSecond.toFixed(0)} entries/s).`,
  ].join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await runChainBenchmark({ log: (line) => process.stderr.write(`${line}\n`) })
  process.stdout.write(`${chainBenchmarkTable(result)}\n\nMachine: ${result.machine}\n`)
}
