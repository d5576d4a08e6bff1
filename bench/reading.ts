/**
 * Reading the log at scale: seeds a synthetic log into a PostgreSQL database of its own, starts
 * the server as a child process, and measures
 *   - authLog over HTTP per filter (first page of 100) against the same SQL through pg, and
 *     against the same page from a bare node:http endpoint (bench/bareEndpoint.ts, the floor),
 *   - page 1 against page 1,000 through cursor, and through offset,
 *   - export rows/s against COPY (the same query) TO STDOUT, and the server's peak memory.
 *
 *   npx tsx bench/reading.ts [--rows 10000000] [--iterations 50]
 *   BENCH_DATABASE_URL=postgresql://user@host:5432/postgres (default postgresql://postgres@127.0.0.1:5432/test)
 *
 * The database is created and dropped; nothing else on the server is touched.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import http from 'node:http'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { DEFAULT_SERVER_URL, createScratchDatabase, withClient } from './scratchDatabase.js'
import { to as copyTo } from 'pg-copy-streams'
import { exportFields } from '../src/audit/export.js'
import { type AuthLogFilter, authLogPageSql, parseAuthLogFilter } from '../src/audit/query.js'
import { openDatabase } from '../src/db/database.js'
import { migrate } from '../src/db/migrator.js'
import { syntheticId, syntheticIdentifier, syntheticLogInsert } from '../test/testkit/syntheticLog.js'

export interface ReadingBenchmarkOptions {
  /** Entries to seed (default 1,000,000). */
  rows?: number
  /** Server holding the benchmark's own database (default BENCH_DATABASE_URL or the local test server). */
  databaseUrl?: string
  /** Timed requests per measurement (default 50). */
  iterations?: number
  /** Progress lines go here (default standard error). */
  log?: (line: string) => void
}

export interface LatencyRow {
  name: string
  httpP50: number
  httpP95: number
  /** The same page from bench/bareEndpoint.ts. */
  bareP50: number
  sqlP50: number
  sqlP95: number
  /** authLog ÷ SQL (p50). */
  ratio: number
  /** bare ÷ SQL (p50): the floor of `ratio` on this machine. */
  bareRatio: number
  /** authLog ÷ bare (p50): what the API adds. */
  apiRatio: number
}

export interface ReadingBenchmarkResult {
  machine: string
  rows: number
  seedSeconds: number
  latency: LatencyRow[]
  paging: { name: string; p50: number; p95: number }[]
  cursorRatio: number
  exports: { format: string; rowsPerSecond: number; copyRowsPerSecond: number; ratio: number; peakRssAboveIdleMb: number; idleRssMb: number }[]
  markdown: string
}

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const PERSONS = 20_000
const SPAN_DAYS = 730
const CHUNK = 250_000
/** Requests per filter before anything is timed. */
const WARM_UP_ROUNDS = 60

const percentile = (sorted: number[], fraction: number) => sorted[Math.min(sorted.length - 1, Math.ceil(fraction * (sorted.length - 1)))]!
const round = (value: number, digits = 2) => Number(value.toFixed(digits))

/** Requests of one kind timed in a row before the next kind's turn (timedSideBySide). */
const BLOCK = 10

/**
 * Times each of `runs` `iterations` times, side by side: BLOCK requests of each in turn, the order
 * rotating every round. A slow spell of the shared machine (seconds long, at times) then falls on
 * all of them alike; timed one after another, it fell on whichever was being timed and decided
 * the ratio between them.
 */
async function timedSideBySide<Name extends string>(
  iterations: number,
  runs: Record<Name, () => Promise<unknown>>,
): Promise<Record<Name, { p50: number; p95: number }>> {
  const names = Object.keys(runs) as Name[]
  for (const name of names) for (let warmup = 0; warmup < 3; warmup++) await runs[name]()
  const samples = new Map<Name, number[]>(names.map((name) => [name, []]))
  for (let round = 0; samples.get(names[0]!)!.length < iterations; round++) {
    for (let turn = 0; turn < names.length; turn++) {
      const name = names[(round + turn) % names.length]!
      const timings = samples.get(name)!
      for (let index = 0; index < BLOCK && timings.length < iterations; index++) {
        const started = performance.now()
        await runs[name]()
        timings.push(performance.now() - started)
      }
    }
  }
  const summary = (timings: number[]) => {
    const sorted = timings.sort((a, b) => a - b)
    return { p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95) }
  }
  return Object.fromEntries(names.map((name) => [name, summary(samples.get(name)!)])) as Record<Name, { p50: number; p95: number }>
}

/** Seeds with the secondary indexes dropped, then rebuilds them from their own definitions. */
async function seed(url: string, rows: number, log: (line: string) => void) {
  const db = await openDatabase({ url })
  try {
    await migrate(db)
    await db.session(async (session) => {
      const indexes = await session.query<{ name: string; definition: string }>(
        `SELECT i.relname AS name, pg_get_indexdef(i.oid) AS definition
           FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
          WHERE x.indrelid = 'person_auth_log'::regclass AND NOT x.indisprimary`,
      )
      for (const index of indexes) await session.exec(`DROP INDEX "${index.name}"`)
      // Triggers off: the synthetic rows stay outside the hash chain (their sequence and hash are
      // placeholders); through the chain trigger, row by row, seeding takes many times longer.
      await session.exec('SET session_replication_role = replica')
      const options = { total: rows, newest: new Date(), spanDays: SPAN_DAYS, persons: PERSONS }
      for (let from = 1; from <= rows; from += CHUNK) {
        await session.exec(syntheticLogInsert(from, Math.min(from + CHUNK - 1, rows), options))
        log(`  seeded ${Math.min(from + CHUNK - 1, rows).toLocaleString('en')} rows`)
      }
      await session.exec('SET session_replication_role = DEFAULT')
      for (const index of indexes) {
        // A partitioned table's index definition reads ON ONLY; built on the parent it covers every partition.
        await session.exec(index.definition.replace(' ON ONLY ', ' ON '))
        log(`  built ${index.name}`)
      }
      await session.exec('VACUUM ANALYZE person_auth_log')
    })
  } finally {
    await db.close()
  }
}

interface Server {
  url: string
  pid: number
  stop(): Promise<void>
}

/** Runs `script` under tsx in a child process and waits for the line in which `ready` finds its URL. */
async function startChild(script: string, env: NodeJS.ProcessEnv, ready: RegExp): Promise<Server> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const url = await new Promise<string>((resolve, reject) => {
    let output = ''
    const watch = (chunk: Buffer) => {
      output += chunk
      const match = ready.exec(output)
      if (match) resolve(match[1]!.replace('localhost', '127.0.0.1'))
    }
    child.stdout!.on('data', watch)
    child.stderr!.on('data', watch)
    child.once('exit', (code) => reject(new Error(`${script} exited (${code}): ${output}`)))
  })
  return {
    url,
    pid: child.pid!,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      }),
  }
}

const startServer = (databaseUrl: string, token: string, dataDir: string) =>
  startChild(
    'src/main.ts',
    {
      DATABASE_URL: databaseUrl,
      PORT: '0',
      CUSTOS_ROOT_TOKEN: token,
      CUSTOS_DATA_DIR: dataDir,
      // A PostgreSQL deployment must bring both keys; throwaway ones serve a throwaway database.
      CUSTOS_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      CUSTOS_SIGNING_KEY: generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      LOG_LEVEL: 'warn',
      CUSTOS_AUDIT_READS: 'false',
    },
    /listening: GraphiQL at (http:\/\/[^/]+)\/tenant/,
  )

/** The same page over bare node:http (bench/bareEndpoint.ts): the floor authLog is compared with. */
const startBareEndpoint = (databaseUrl: string) => startChild('bench/bareEndpoint.ts', { DATABASE_URL: databaseUrl }, /listening (\d+)\n/).then(
  (bare) => ({ ...bare, url: `http://127.0.0.1:${bare.url}` }),
)

/** Resident memory of a process in MB (Linux /proc, else ps). */
async function rssMb(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024
  } catch {
    const { execFileSync } = await import('node:child_process')
    return Number(execFileSync('ps', ['-o', 'rss=', '-p', String(pid)]).toString().trim()) / 1024
  }
}

const ENTRY_FIELDS = exportFields.map((field) => field.name).join(' ')
const AUTH_LOG = `query ($filter: AuthLogFilter, $limit: Int, $offset: Int, $cursor: String) {
  authLog(filter: $filter, limit: $limit, offset: $offset, cursor: $cursor) { hasMore nextCursor entries { ${ENTRY_FIELDS} } }
}`

// Node's own http client with one kept-alive connection: fetch (undici) adds about a millisecond of
// client-side work per request, which would be charged to the server next to pg's lean client.
const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 })

/** POSTs `payload` as JSON and resolves with the response body. */
function postJson(server: Server, path: string, payload: string, headers: Record<string, string> = {}): Promise<string> {
  const { hostname, port } = new URL(server.url)
  return new Promise<string>((resolve, reject) => {
    const request = http.request(
      {
        host: hostname,
        port,
        path,
        method: 'POST',
        agent: keepAlive,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers },
      },
      (response) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
        response.on('error', reject)
      },
    )
    request.on('error', reject)
    request.end(payload)
  })
}

type PageBody = { data?: { authLog: { nextCursor: string | null; entries: unknown[] } }; errors?: unknown }

async function authLog(server: Server, token: string, variables: Record<string, unknown>) {
  const body = JSON.parse(await postJson(server, '/tenant', JSON.stringify({ query: AUTH_LOG, variables }), { authorization: `Bearer ${token}` })) as PageBody
  if (!body.data?.authLog) throw new Error(`authLog failed: ${JSON.stringify(body.errors)}`)
  return body.data.authLog
}

async function barePage(bare: Server, filter: AuthLogFilter) {
  const text = await postJson(bare, '/', JSON.stringify({ filter, limit: 100 }))
  const body = JSON.parse(text) as PageBody
  if (!body.data?.authLog) throw new Error(`bare endpoint failed: ${text}`)
  return body.data.authLog
}

function machineDescription(serverVersion: string): string {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU'
  return `${cpus().length} × ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}, ${serverVersion.split(' on ')[0]} (same host)`
}

export async function runReadingBenchmark(options: ReadingBenchmarkOptions = {}): Promise<ReadingBenchmarkResult> {
  const rows = options.rows ?? 1_000_000
  const iterations = options.iterations ?? 50
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`))
  const adminUrl = options.databaseUrl ?? process.env.BENCH_DATABASE_URL ?? DEFAULT_SERVER_URL
  const token = `bench-${randomBytes(16).toString('hex')}`
  const dataDir = await mkdtemp(join(tmpdir(), 'custos-bench-'))
  const scratch = await createScratchDatabase(adminUrl)
  const databaseUrl = scratch.url
  let server: Server | undefined
  let bare: Server | undefined
  try {
    log(`Seeding ${rows.toLocaleString('en')} entries into ${scratch.name}`)
    const seedStarted = performance.now()
    await seed(databaseUrl, rows, log)
    const seedSeconds = (performance.now() - seedStarted) / 1000
    server = await startServer(databaseUrl, token, dataDir)
    const running = server
    bare = await startBareEndpoint(databaseUrl)
    const floor = bare
    log(`Server at ${running.url} (pid ${running.pid}), bare endpoint at ${floor.url}`)

    return await withClient(databaseUrl, async (client) => {
      const [{ version }] = (await client.query<{ version: string }>('SELECT version()')).rows as [{ version: string }]
      const [{ ip }] = (await client.query<{ ip: string }>('SELECT host(client_ip) AS ip FROM person_auth_log WHERE client_ip IS NOT NULL LIMIT 1')).rows as [{ ip: string }]
      const week = new Date(Date.now() - 7 * 86_400_000).toISOString()
      const filters: Record<string, AuthLogFilter> = {
        'no filter': {},
        'types: [login]': { types: ['login'] },
        'typePrefix: project_': { typePrefix: 'project_' },
        'success: false': { success: false },
        invokedByIdentityId: { invokedByIdentityId: syntheticId('identity', 42) },
        'identityIds (3)': { identityIds: [1, 2, 3].map((n) => syntheticId('identity', n)) },
        'personIds (3)': { personIds: [4, 5, 6].map((n) => syntheticId('person', n)) },
        targetPersonId: { targetPersonId: syntheticId('person', 7) },
        personInputIdentifier: { personInputIdentifier: syntheticIdentifier(8) },
        'q: firefox (common)': { q: 'firefox' },
        'q: user1234@ (rare)': { q: 'user1234@' },
        'clientIp: address': { clientIp: ip },
        'clientIp: /16': { clientIp: '10.20.0.0/16' },
        'createdAfter: 7 days': { createdAfter: new Date(week) },
        'typePrefix + success + createdAfter': { typePrefix: 'password_', success: false, createdAfter: new Date(week) },
      }

      log('Latency: authLog over HTTP vs the same SQL through pg (first page, 100 entries)')
      // A server that has just started is still compiling its hot paths (V8 tiers functions up
      // after hundreds of calls), and PostgreSQL's caches are cold: every filter is run a while
      // first, so the first filter measured is not charged for the warm-up of all of them.
      for (let round = 0; round < WARM_UP_ROUNDS; round++) {
        for (const filter of Object.values(filters)) {
          await authLog(running, token, { filter, limit: 100 })
          await barePage(floor, filter)
          const sql = authLogPageSql({ criteria: parseAuthLogFilter(filter), limit: 101 })
          await client.query(sql.text, sql.values)
        }
      }
      const latency: LatencyRow[] = []
      for (const [filterName, filter] of Object.entries(filters)) {
        const sql = authLogPageSql({ criteria: parseAuthLogFilter(filter), limit: 101 })
        const { http, floorHttp, raw } = await timedSideBySide(iterations, {
          http: () => authLog(running, token, { filter, limit: 100 }),
          floorHttp: () => barePage(floor, filter),
          raw: () => client.query(sql.text, sql.values),
        })
        latency.push({
          name: filterName,
          httpP50: round(http.p50),
          httpP95: round(http.p95),
          bareP50: round(floorHttp.p50),
          sqlP50: round(raw.p50),
          sqlP95: round(raw.p95),
          ratio: round(http.p50 / raw.p50, 1),
          bareRatio: round(floorHttp.p50 / raw.p50, 1),
          apiRatio: round(http.p50 / floorHttp.p50, 2),
        })
        log(`  ${filterName}: HTTP p50 ${http.p50.toFixed(1)} ms, bare ${floorHttp.p50.toFixed(1)} ms, SQL p50 ${raw.p50.toFixed(1)} ms`)
      }

      log('Paging: page 1 vs page 1,000 (100 per page)')
      let cursor: string | null = null
      for (let page = 1; page < 1000; page++) cursor = (await authLog(running, token, { limit: 100, cursor })).nextCursor
      const { firstPage, cursorPage } = await timedSideBySide(iterations, {
        firstPage: () => authLog(running, token, { limit: 100 }),
        cursorPage: () => authLog(running, token, { limit: 100, cursor }),
      })
      const { offsetPage } = await timedSideBySide(Math.min(iterations, 20), { offsetPage: () => authLog(running, token, { limit: 100, offset: 99_900 }) })
      const paging = [
        { name: 'page 1', ...firstPage },
        { name: 'page 1,000 by cursor', ...cursorPage },
        { name: 'page 1,000 by offset', ...offsetPage },
      ].map((row) => ({ name: row.name, p50: round(row.p50), p95: round(row.p95) }))

      log('Export: all entries over HTTP vs COPY (the same query) TO STDOUT')
      const exportColumns = exportFields.map((field) => `${field.sql} AS "${field.name}"`).join(', ')
      const copyQuery = `SELECT ${exportColumns} FROM person_auth_log ORDER BY created_at DESC, id DESC`
      const exports = []
      // Idle once, before any export: V8 gives memory back lazily, so an idle reading taken after
      // an export would start from wherever its garbage collection left off.
      await new Promise((resolve) => setTimeout(resolve, 2_000))
      const idle = await rssMb(running.pid)
      for (const format of ['jsonl', 'csv'] as const) {
        const copyStarted = performance.now()
        await new Promise<void>((resolve, reject) => {
          const stream = client.query(copyTo(`COPY (${copyQuery}) TO STDOUT${format === 'csv' ? ' WITH (FORMAT csv, HEADER)' : ''}`))
          stream.on('data', () => {})
          stream.on('end', resolve)
          stream.on('error', reject)
        })
        const copySeconds = (performance.now() - copyStarted) / 1000

        let peak = idle
        const sampler = setInterval(() => void rssMb(running.pid).then((value) => (peak = Math.max(peak, value)), () => {}), 50)
        const exportStarted = performance.now()
        const response = await fetch(`${running.url}/tenant/audit-log/export.${format}`, { headers: { authorization: `Bearer ${token}` } })
        let lines = 0
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          for (let index = chunk.indexOf(10); index !== -1; index = chunk.indexOf(10, index + 1)) lines++
        }
        const exportSeconds = (performance.now() - exportStarted) / 1000
        clearInterval(sampler)
        peak = Math.max(peak, await rssMb(running.pid))
        // The export holds its own entry: one row more than COPY saw.
        const exported = format === 'csv' ? lines - 1 : lines
        const rowsPerSecond = Math.round(exported / exportSeconds)
        const copyRowsPerSecond = Math.round(rows / copySeconds)
        exports.push({ format, rowsPerSecond, copyRowsPerSecond, ratio: round(rowsPerSecond / copyRowsPerSecond), peakRssAboveIdleMb: round(peak - idle, 1), idleRssMb: round(idle, 1) })
        log(`  ${format}: ${exported.toLocaleString('en')} rows in ${exportSeconds.toFixed(1)} s; COPY ${copySeconds.toFixed(1)} s; RSS idle ${idle.toFixed(0)} MB, peak ${peak.toFixed(0)} MB`)
      }

      const machine = machineDescription(version)
      const cursorRatio = round(paging[1]!.p50 / paging[0]!.p50)
      const result = { machine, rows, seedSeconds: round(seedSeconds, 1), latency, paging, cursorRatio, exports }
      return { ...result, markdown: renderMarkdown(result) }
    })
  } finally {
    keepAlive.destroy()
    await server?.stop()
    await bare?.stop()
    await scratch.drop()
    await rm(dataDir, { recursive: true, force: true })
  }
}

function renderMarkdown(result: Omit<ReadingBenchmarkResult, 'markdown'>): string {
  const lines = [
    `Machine: ${result.machine}. Log: ${result.rows.toLocaleString('en')} synthetic entries over ${SPAN_DAYS} days, ${PERSONS.toLocaleString('en')} persons (seeded in ${result.seedSeconds} s).`,
    '',
    '| authLog, first page of 100 | HTTP p50 (ms) | HTTP p95 (ms) | bare p50 (ms) | SQL p50 (ms) | SQL p95 (ms) | HTTP / SQL (p50) | bare / SQL | HTTP / bare |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...result.latency.map(
      (row) => `| ${row.name} | ${row.httpP50} | ${row.httpP95} | ${row.bareP50} | ${row.sqlP50} | ${row.sqlP95} | ${row.ratio}x | ${row.bareRatio}x | ${row.apiRatio}x |`,
    ),
    '',
    '| paging over HTTP, no filter | p50 (ms) | p95 (ms) |',
    '| --- | ---: | ---: |',
    ...result.paging.map((row) => `| ${row.name} | ${row.p50} | ${row.p95} |`),
    `| **page 1,000 / page 1 by cursor** | **${result.cursorRatio}x** | |`,
    '',
    '| export, whole log | rows/s | COPY TO STDOUT rows/s | export / COPY | server RSS idle (MB) | peak above idle (MB) |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...result.exports.map(
      (row) => `| ${row.format} | ${row.rowsPerSecond.toLocaleString('en')} | ${row.copyRowsPerSecond.toLocaleString('en')} | ${row.ratio}x | ${row.idleRssMb} | ${row.peakRssAboveIdleMb} |`,
    ),
  ]
  return `${lines.join('\n')}\n`
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { rows: { type: 'string' }, iterations: { type: 'string' } } })
  const result = await runReadingBenchmark({
    rows: values.rows ? Number(values.rows) : undefined,
    iterations: values.iterations ? Number(values.iterations) : undefined,
  })
  process.stdout.write(result.markdown)
}
