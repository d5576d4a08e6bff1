import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { type RequestListener, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { EXPORT_BATCH_SIZE } from '../../src/audit/export.js'
import { LOCK_FILE } from '../../src/db/dataDirLock.js'
import { type Database, openDatabase } from '../../src/db/database.js'
import { migrate } from '../../src/db/migrator.js'
import { type TestApp, startTestApp, testSigningKey } from '../testkit/app.js'
import { type TestDatabase, createTestDatabase } from '../testkit/database.js'
import { type LogEntry, readLog, seedLogEntries } from '../testkit/fixtures.js'

const BIN = fileURLToPath(new URL('../../bin/custos.js', import.meta.url))

/** The parent's environment without anything that would pick a database or server for the child. */
function childEnvironment(extra: Record<string, string>): NodeJS.ProcessEnv {
  const environment = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(DATABASE_URL|CUSTOS_|TEST_DATABASE_URL)/.test(name)))
  return { ...environment, ...extra }
}

function startCli(args: string[], environment: Record<string, string> = {}): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [BIN, ...args], { env: childEnvironment(environment) })
}

async function runCli(args: string[], environment: Record<string, string> = {}) {
  const child = startCli(args, environment)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => (stdout += chunk))
  child.stderr.on('data', (chunk) => (stderr += chunk))
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  return { code, stdout, stderr }
}

const jsonLines = (text: string) => text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as LogEntry)

let scratch: string
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'custos-cli-test-'))
})
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true })
})

// Each run of the command line starts a Node process that compiles TypeScript: seconds, not milliseconds.
const CLI_TIMEOUT = { timeout: 180_000 }

describe('custos against a server (--url, --token)', CLI_TIMEOUT, () => {
  let app: TestApp
  let server: string[]
  const at = (minutes: number) => new Date(Date.UTC(2010, 0, 1) + minutes * 60_000)

  beforeAll(async () => {
    app = await startTestApp()
    server = ['--url', app.url, '--token', app.rootToken]
    await seedLogEntries(app, [
      { type: 'login', createdAt: at(1), success: false, errorCode: 'INVALID_PASSWORD', personInputIdentifier: 'eve@example.test', clientIp: '10.9.8.7' },
      { type: 'login', createdAt: at(2), personInputIdentifier: 'ann@example.test' },
      { type: 'password_change', createdAt: at(3) },
      { type: 'login', createdAt: at(4), personInputIdentifier: 'bob@example.test' },
    ])
  })
  afterAll(async () => {
    await app?.stop()
  })

  it('log -n N --json prints the newest N entries, oldest first, in the GraphQL entry shape', async () => {
    const { code, stdout, stderr } = await runCli(['log', '-n', '3', '--json', ...server])
    expect(stderr).toBe('')
    expect(code).toBe(0)
    const newest = (await readLog(app, { limit: 3 })).entries
    expect(jsonLines(stdout)).toEqual([...newest].reverse())
  })

  it('log filters by type and time, and prints a table without --json', async () => {
    const json = await runCli(['log', '--json', '--type', 'login', '--since', at(2).toISOString(), '--until', at(60).toISOString(), ...server])
    expect(jsonLines(json.stdout).map((entry) => entry.personInputIdentifier)).toEqual(['ann@example.test', 'bob@example.test'])
    const table = await runCli(['log', '--failed', '--ip', '10.9.0.0/16', ...server])
    const [header, ...rows] = table.stdout.trimEnd().split('\n')
    expect(header).toMatch(/^TIME \(UTC\)\s+TYPE\s+OK\s+ACTOR\s+CLIENT IP\s+WHO \/ ERROR$/)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatch(/^2010-01-01 00:01:00\s+login\s+NO\s+-\s+10\.9\.8\.7\s+eve@example\.test INVALID_PASSWORD$/)
  })

  it('log shows line breaks and terminal escapes a client typed as escapes, one row per entry', async () => {
    // What anyone with the login token may type as an email, and signIn records as typed.
    const typed = 'x@example.test\n2010-01-01 00:00:00  login  yes  -  10.0.0.1  admin@example.test\x1b]0;owned\x07\x1b[2J\u202e\u009b'
    await seedLogEntries(app, [{ type: 'password_reset_init', createdAt: at(-10), personInputIdentifier: typed }])
    const table = await runCli(['log', '--type', 'password_reset_init', '--until', at(0).toISOString(), ...server])
    expect(table.code).toBe(0)
    const [, ...rows] = table.stdout.trimEnd().split('\n')
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatch(/x@example\.test\\n2010-01-01 00:00:00 {2}login .*admin@example\.test\\x1b\]0;owned\\x07\\x1b\[2J\\u202e\\x9b$/)
  })

  /** The entries a running `custos log --json` prints; `arrived(n)` resolves once it has printed n. */
  function printedEntries(child: ChildProcessWithoutNullStreams) {
    const lines: LogEntry[] = []
    let pending = ''
    let onLine = () => {}
    child.stdout.on('data', (chunk: Buffer) => {
      pending += chunk
      const complete = pending.split('\n')
      pending = complete.pop()!
      lines.push(...complete.filter(Boolean).map((line) => JSON.parse(line) as LogEntry))
      onLine()
    })
    const arrived = (count: number) =>
      new Promise<void>((resolve, reject) => {
        onLine = () => lines.length >= count && resolve()
        child.once('close', () => reject(new Error(`custos exited early; lines so far: ${lines.length}`)))
        onLine()
      })
    return { lines, arrived }
  }

  it('log --follow prints entries as they arrive until interrupted', async () => {
    const child = startCli(['log', '-f', '--json', '-n', '1', '--interval', '0.2', ...server])
    const { lines, arrived } = printedEntries(child)
    await arrived(1)
    const [first, second] = await seedLogEntries(app, [
      { type: 'idp_create', eventData: { identityProvider: 'a' } },
      { type: 'idp_update', eventData: { identityProvider: 'b' }, createdAt: new Date(Date.now() + 1) },
    ])
    await arrived(3)
    expect(lines.slice(1).map((entry) => entry.id)).toEqual([first, second])
    child.kill('SIGINT')
    expect(await new Promise((resolve) => child.on('close', resolve))).toBe(0)
    expect(lines).toHaveLength(3)
  })

  it('log --follow prints what arrives when this machine\'s clock runs ahead of the server\'s and nothing matched at first', async () => {
    // The command line's clock is a minute ahead; no idp_disable entry is there yet.
    const clockAhead = `const now = Date.now; Date.now = () => now() + 60_000`
    const child = startCli(['log', '-f', '--json', '--type', 'idp_disable', '--interval', '0.2', ...server], {
      NODE_OPTIONS: `--import=data:text/javascript,${encodeURIComponent(clockAhead)}`,
    })
    const closed = new Promise((resolve) => child.on('close', resolve))
    const { lines } = printedEntries(child)
    try {
      // Its first read and a few polls have been answered.
      const requests = () => app.logOutput().split('"path":"/tenant"').length
      const before = requests()
      await vi.waitFor(() => expect(requests()).toBeGreaterThan(before + 3), { timeout: 60_000, interval: 100 })
      const [disabled] = await seedLogEntries(app, [{ type: 'idp_disable', eventData: { identityProvider: 'c' } }])
      await vi.waitFor(() => expect(lines.map((entry) => entry.id)).toEqual([disabled]), { timeout: 10_000, interval: 100 })
    } finally {
      child.kill('SIGINT')
    }
    expect(await closed).toBe(0)
  })

  it('export writes the file through the export endpoint, with the export itself recorded', async () => {
    const out = join(scratch, 'server.csv')
    // A partial file an older run left, open to all: the export is written afresh, the owner's alone.
    await writeFile(`${out}.partial`, 'stale', { mode: 0o644 })
    const { code, stderr } = await runCli(['export', '--format', 'csv', '--out', out, '--type', 'login', '--until', at(60).toISOString(), ...server])
    expect(code).toBe(0)
    expect(stderr).toMatch(/Exported 3 entries to .*server\.csv in [\d.]+ s\n$/)
    const endpoint = await fetch(`${app.url}/tenant/audit-log/export.csv?types=login&createdBefore=${at(60).toISOString()}`, {
      headers: { authorization: `Bearer ${app.rootToken}` },
    })
    expect(await readFile(out, 'utf8')).toBe(await endpoint.text())
    // The owner's alone, like the data directory.
    expect((await stat(out)).mode & 0o777).toBe(0o600)
    const exports = (await readLog(app, { filter: { types: ['auth_log_export'] } })).entries
    expect(exports[1]).toMatchObject({ userAgent: 'custos-cli', eventData: { format: 'csv', filter: { types: ['login'] } } })
  })

  it('export reports an export the server cut off in one line, exit status 1, and leaves no file', async () => {
    // More than one batch of the export (EXPORT_BATCH_SIZE), long before the other tests' entries.
    await seedLogEntries(app, Array.from({ length: EXPORT_BATCH_SIZE + 1 }, (_, index) => ({ type: 'idp_enable', createdAt: new Date(Date.UTC(2009, 0, 1) + index) })))
    const db = app.app.services.db
    const { session } = db
    // The count and the first batch are read and sent; the second batch fails, so the server resets the connection mid-file.
    db.session = (work) =>
      session((real) => {
        let reads = 0
        const query: typeof real.query = (...args) => (reads++ < 2 ? real.query(...args) : Promise.reject(new Error('the disk is on fire')))
        return work({ ...real, copyOut: undefined, query })
      })
    const out = join(scratch, 'cut-off.csv')
    try {
      const { code, stdout, stderr } = await runCli(['export', '--format', 'csv', '--out', out, '--no-progress', '--type', 'idp_enable', ...server])
      expect({ code, stdout }).toEqual({ code: 1, stdout: '' })
      expect(stderr).toMatch(/^custos export: [^\n]*cut off[^\n]*\n$/)
    } finally {
      db.session = session
    }
    await expect(readFile(out)).rejects.toThrow(/ENOENT/)
    await expect(readFile(`${out}.partial`)).rejects.toThrow(/ENOENT/)
  })

  it('reports a refused token or bad arguments without a stack trace', async () => {
    const refused = await runCli(['log', '--url', app.url, '--token', 'not-the-right-token'])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/^custos log: .*bearer token is not valid/)
    const cases = [
      ['log', '--bogus'],
      ['log', '-n', 'many'],
      ['log', '--since', 'yesterday'],
      ['log', '--type', 'no_such_type'],
      ['log', '--follow', '--until', '2020-01-01'],
      ['export', '--format', 'xml', '--out', join(scratch, 'x')],
      ['export', '--format', 'csv'],
      // An empty list matched nothing on the database and everything through the export endpoint.
      ['export', '--format', 'csv', '--out', join(scratch, 'empty-type.csv'), '--type', ','],
      ['log', '--person', ''],
      // GraphQL read an empty typePrefix as no constraint, the export endpoint refused it (exit status 1).
      ['log', '--type-prefix', ''],
      // Past 2^31 - 1 ms a timer fires after 1 ms: --follow would poll without pause.
      ['log', '--interval', '3000000'],
      ['export', '--format', 'csv', '--out', join(scratch, 'empty-prefix.csv'), '--type-prefix', ''],
    ]
    for (const args of cases) {
      const result = await runCli([...args, ...server])
      expect(result.code, args.join(' ')).toBe(2)
      expect(result.stderr, args.join(' ')).toMatch(new RegExp(`^custos ${args[0]}: .+\\n\\nUsage: custos ${args[0]}`))
    }
    // A server named without a token, on the command line or in CUSTOS_URL, is a wrong argument too.
    const noToken = await runCli(['log', '--url', app.url])
    expect(noToken).toMatchObject({ code: 2, stderr: expect.stringMatching(/^custos log: --url needs --token.+\n\nUsage: custos log/) })
  })

  it('export exits 2 with the message when the export endpoint refuses a parameter (400 BAD_USER_INPUT), and leaves no file', async () => {
    // A server that refuses what this command line accepts (another version of Custos).
    const out = join(scratch, 'refused.csv')
    const result = await withServer(
      (_req, res) => {
        res.writeHead(400, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ error: { code: 'BAD_USER_INPUT', message: 'No event type starts with "idp_"', parameter: 'typePrefix' } }))
      },
      (url) => runCli(['export', '--format', 'csv', '--out', out, '--type-prefix', 'idp_', '--url', url, '--token', app.rootToken]),
    )
    expect(result).toEqual({ code: 2, stdout: '', stderr: 'custos export: No event type starts with "idp_"\n' })
    await expect(readFile(`${out}.partial`)).rejects.toThrow(/ENOENT/)
  })

  it('export exits 1 and leaves no file when the response ends before the entries it counted (a proxy that ends a cut-off response)', async () => {
    const [line] = (await (await fetch(`${app.url}/tenant/audit-log/export.jsonl`, { headers: { authorization: `Bearer ${app.rootToken}` } })).text()).split('\n')
    const out = join(scratch, 'ended-early.jsonl')
    for (const [body, ending] of [
      [`${line}\n${line}\n${line}\n${line!.slice(0, 40)}`, 'the last one cut off'],
      [`${line}\n${line}\n${line}\n`, 'each whole'],
    ] as const) {
      const result = await withServer(
        (_req, res) => {
          res.writeHead(200, { 'content-type': 'application/x-ndjson', 'x-total-count': '10' })
          res.end(body)
        },
        (url) => runCli(['export', '--format', 'jsonl', '--out', out, '--no-progress', '--url', url, '--token', app.rootToken]),
      )
      expect(result).toEqual({ code: 1, stdout: '', stderr: `custos export: The export ended early: 3 entries of the 10 counted, ${ending}\n` })
      await expect(readFile(out)).rejects.toThrow(/ENOENT/)
      await expect(readFile(`${out}.partial`)).rejects.toThrow(/ENOENT/)
    }
  })

  it('removes FILE.partial on SIGINT and exits 130', async () => {
    const out = join(scratch, 'interrupted.jsonl')
    const [line] = (await (await fetch(`${app.url}/tenant/audit-log/export.jsonl`, { headers: { authorization: `Bearer ${app.rootToken}` } })).text()).split('\n')
    const result = await withServer(
      // Some entries, then nothing more: the export is under way when the signal comes.
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/x-ndjson', 'x-total-count': '10' })
        res.write(`${line}\n`)
      },
      async (url) => {
        const child = startCli(['export', '--format', 'jsonl', '--out', out, '--no-progress', '--url', url, '--token', app.rootToken])
        const closed = new Promise<number | null>((resolve) => child.on('close', resolve))
        await vi.waitFor(() => stat(`${out}.partial`).then((file) => expect(file.size).toBeGreaterThan(0)), { timeout: 10_000 })
        child.kill('SIGINT')
        return closed
      },
    )
    expect(result).toBe(130)
    await expect(stat(`${out}.partial`)).rejects.toThrow(/ENOENT/)
    await expect(stat(out)).rejects.toThrow(/ENOENT/)
  })
})

/** A server of another make on loopback, for `work` only: what the command line does with answers Custos never gives. */
async function withServer<T>(handler: RequestListener, work: (url: string) => Promise<T>): Promise<T> {
  const server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  try {
    return await work(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  } finally {
    server.close()
  }
}

describe('custos on the database directly (DATABASE_URL or CUSTOS_DATA_DIR)', CLI_TIMEOUT, () => {
  let testDatabase: TestDatabase
  let environment: Record<string, string>
  let seeded: string[]

  /** The same database the child opens: PostgreSQL, or an embedded one in a directory. */
  async function withDatabase<T>(work: (db: Database) => Promise<T>): Promise<T> {
    const db = await openDatabase(testDatabase.url ? testDatabase.target : { dataDir: environment.CUSTOS_DATA_DIR })
    try {
      return await work(db)
    } finally {
      await db.close()
    }
  }

  /** The auth_log_export entries there are. */
  const recordedExports = () => withDatabase((db) => db.session((session) => session.query(`SELECT id FROM person_auth_log WHERE type = 'auth_log_export'`)))

  beforeAll(async () => {
    testDatabase = await createTestDatabase()
    environment = testDatabase.url ? { DATABASE_URL: testDatabase.url } : { CUSTOS_DATA_DIR: join(scratch, 'data') }
    seeded = await withDatabase(async (db) => {
      await migrate(db)
      return seedLogEntries(db, [
        { type: 'login', createdAt: new Date(Date.UTC(2011, 0, 1)), userAgent: 'agent, "one"' },
        { type: 'project_create', createdAt: new Date(Date.UTC(2011, 0, 2)), eventData: { projectSlug: 's', name: 'n', secretKeys: [] } },
        { type: 'login', createdAt: new Date(Date.UTC(2011, 0, 3)), personId: randomUUID() },
      ])
    })
  })
  afterAll(async () => {
    await testDatabase?.drop()
  })

  it('log reads the newest entries', async () => {
    const { code, stdout, stderr } = await runCli(['log', '-n', '2', '--json'], environment)
    expect(stderr).toBe('')
    expect(code).toBe(0)
    expect(jsonLines(stdout).map((entry) => entry.id)).toEqual([seeded[1], seeded[2]])
    expect(jsonLines(stdout)[0]).toMatchObject({ type: 'project_create', createdAt: '2011-01-02T00:00:00.000Z', eventData: { projectSlug: 's' } })
  })

  it('export writes every matching entry and records itself as the command line', async () => {
    const out = join(scratch, 'direct.jsonl')
    const { code, stderr } = await runCli(['export', '--format', 'jsonl', '--out', out, '--type', 'login,project_create,auth_log_export'], environment)
    expect(code).toBe(0)
    expect(stderr).toMatch(/\[#+\] 100% {2}4\/4 entries/)
    expect(stderr).toMatch(/Exported 4 entries to .*direct\.jsonl/)
    const [own, ...rest] = jsonLines(await readFile(out, 'utf8'))
    expect(rest.map((entry) => entry.id)).toEqual([...seeded].reverse())
    expect(own).toMatchObject({
      type: 'auth_log_export',
      invokedByIdentityId: null,
      userAgent: 'custos-cli (direct database access)',
      eventData: { format: 'jsonl', filter: { types: ['auth_log_export', 'login', 'project_create'] } },
    })
    expect(rest[2]).toMatchObject({ userAgent: 'agent, "one"' })
  })

  it('export to a file it cannot write exits 2 naming the option, before it reads or records anything', async () => {
    const before = await recordedExports()
    const missing = join(scratch, 'no-such-directory')
    const out = join(scratch, 'unwritten.jsonl')
    for (const [option, args] of [
      ['--out', ['--out', join(missing, 'audit.jsonl')]],
      ['--checkpoints', ['--out', out, '--checkpoints', join(missing, 'checkpoints.json')]],
    ] as const) {
      const result = await runCli(['export', '--format', 'jsonl', ...args], environment)
      expect(result, option).toEqual({ code: 2, stdout: '', stderr: expect.stringMatching(new RegExp(`^${option} .*no-such-directory.*: cannot be written \\(ENOENT[^\\n]*\\)\\n$`)) })
    }
    await expect(readFile(out)).rejects.toThrow(/ENOENT/)
    await expect(readFile(`${out}.partial`)).rejects.toThrow(/ENOENT/)
    expect(await recordedExports()).toEqual(before)
  })

  it('export to a directory exits 2 naming the option, before it reads or records anything', async () => {
    const before = await recordedExports()
    const out = join(scratch, 'unwritten-too.jsonl')
    for (const [option, args] of [
      ['--out', ['--out', scratch]],
      ['--checkpoints', ['--out', out, '--checkpoints', scratch]],
    ] as const) {
      const result = await runCli(['export', '--format', 'jsonl', ...args], environment)
      expect(result, option).toEqual({ code: 2, stdout: '', stderr: `${option} ${scratch}: cannot be written (it is a directory)\n` })
      await expect(readFile(`${scratch}.partial`)).rejects.toThrow(/ENOENT/)
    }
    await expect(readFile(`${out}.partial`)).rejects.toThrow(/ENOENT/)
    expect(await recordedExports()).toEqual(before)
  })

  it('export refuses --checkpoints naming the --out file (exit 2), before it reads, records or writes anything', async () => {
    const before = await recordedExports()
    const out = join(scratch, 'both.jsonl')
    await writeFile(out, 'kept\n')
    for (const checkpoints of [out, join(scratch, '.', 'both.jsonl')]) {
      const result = await runCli(['export', '--format', 'jsonl', '--out', out, '--checkpoints', checkpoints], environment)
      expect(result).toMatchObject({ code: 2, stdout: '', stderr: expect.stringMatching(/^custos export: --checkpoints must name another file than --out\n\nUsage: custos export/) })
    }
    expect(await readFile(out, 'utf8')).toBe('kept\n')
    await expect(readFile(`${out}.partial`)).rejects.toThrow(/ENOENT/)
    expect(await recordedExports()).toEqual(before)
  })

  it('refuses --token without --url (exit 2) instead of reading the database', async () => {
    const result = await runCli(['log', '-n', '1', '--token', 'meant-for-a-server-token'], environment)
    expect(result).toMatchObject({ code: 2, stdout: '', stderr: expect.stringMatching(/^custos log: --token goes with --url .+\n\nUsage: custos log/) })
  })

  it('with CUSTOS_AUDIT_READS=true records its reads', async () => {
    const { code } = await runCli(['log', '-n', '1', '--json'], { ...environment, CUSTOS_AUDIT_READS: 'true' })
    expect(code).toBe(0)
    const reads = await withDatabase((db) => db.session((session) => session.query(`SELECT event_data FROM person_auth_log WHERE type = 'auth_log_read'`)))
    expect(reads).toEqual([{ event_data: { filter: {}, limit: 1 } }])
  })
})

describe('a database that does not answer', CLI_TIMEOUT, () => {
  it('is reported in one line with exit status 1, not a stack trace', async () => {
    // verify needs a key before it opens the database.
    const environment = { DATABASE_URL: 'postgresql://custos@127.0.0.1:1/custos', CUSTOS_SIGNING_KEY: testSigningKey() }
    for (const args of [['log', '-n', '1'], ['export', '--format', 'csv', '--out', join(scratch, 'unreachable.csv')], ['migrate'], ['verify']]) {
      const result = await runCli(args, environment)
      expect(result, args[0]).toEqual({ code: 1, stdout: '', stderr: `custos ${args[0]}: Cannot reach the database: connect ECONNREFUSED 127.0.0.1:1\n` })
    }
    await expect(readFile(join(scratch, 'unreachable.csv.partial'))).rejects.toThrow(/ENOENT/)
  })

  it('that was never migrated is reported in one line with exit status 1, not a stack trace', async () => {
    const empty = await createTestDatabase()
    try {
      const neverMigrated = join(scratch, 'never-migrated')
      if (!empty.url) await (await openDatabase({ dataDir: neverMigrated })).close()
      const target: Record<string, string> = empty.url ? { DATABASE_URL: empty.url } : { CUSTOS_DATA_DIR: neverMigrated }
      const environment = { ...target, CUSTOS_SIGNING_KEY: testSigningKey() }
      for (const args of [['log', '-n', '1'], ['export', '--format', 'jsonl', '--out', join(scratch, 'never-migrated.jsonl')], ['verify']]) {
        const result = await runCli(args, environment)
        expect(result, args[0]).toEqual({ code: 1, stdout: '', stderr: `custos ${args[0]}: The database holds no audit log: run custos migrate first\n` })
      }
    } finally {
      await empty.drop()
    }
  })
})

describe('an embedded data directory that holds no database', CLI_TIMEOUT, () => {
  it('is reported in one line with exit status 1, and is not created; migrate creates it', async () => {
    const dataDir = join(scratch, 'nowhere')
    const environment = { CUSTOS_DATA_DIR: dataDir, CUSTOS_SIGNING_KEY: testSigningKey() }
    for (const args of [['log', '-n', '1'], ['export', '--format', 'csv', '--out', join(scratch, 'nowhere.csv')], ['verify']]) {
      const result = await runCli(args, environment)
      expect(result, args[0]).toEqual({
        code: 1,
        stdout: '',
        stderr: `custos ${args[0]}: No embedded database in ${dataDir}: set DATABASE_URL, or CUSTOS_DATA_DIR to the server's data directory\n`,
      })
    }
    // Without a signing key too, whose embedded default would be generated into the directory.
    expect(await runCli(['partitions'], { CUSTOS_DATA_DIR: dataDir })).toEqual({
      code: 1,
      stdout: '',
      stderr: `custos partitions: No embedded database in ${dataDir}: set DATABASE_URL, or CUSTOS_DATA_DIR to the server's data directory\n`,
    })
    await expect(stat(dataDir)).rejects.toThrow(/ENOENT/)
    expect(await runCli(['migrate'], environment)).toMatchObject({ code: 0 })
    expect(await runCli(['log', '-n', '1', '--json'], environment)).toMatchObject({ code: 0, stderr: '' })
  })
})

describe('commands without options', CLI_TIMEOUT, () => {
  it('migrate and partitions print their usage for --help and refuse anything else (exit 2), without opening the database', async () => {
    // Opening this database would fail (exit status 1): the commands must not get that far.
    const environment = { DATABASE_URL: 'postgresql://custos@127.0.0.1:1/custos', CUSTOS_SIGNING_KEY: testSigningKey() }
    for (const command of ['migrate', 'partitions']) {
      const help = await runCli([command, '--help'], environment)
      expect(help, command).toEqual({ code: 0, stdout: expect.stringMatching(new RegExp(`^Usage: custos ${command}\n`)), stderr: '' })
      for (const args of [['--bogus'], ['now']]) {
        const wrong = await runCli([command, ...args], environment)
        expect(wrong, `${command} ${args}`).toMatchObject({ code: 2, stdout: '', stderr: expect.stringMatching(new RegExp(`^custos ${command}: .+\n\nUsage: custos ${command}\n`)) })
      }
    }
  })
})

describe('the embedded data directory, one process at a time', CLI_TIMEOUT, () => {
  it('the command line refuses a data directory another process holds, and takes over a lock its holder left behind', async () => {
    const dataDir = join(scratch, 'locked')
    const held = await openDatabase({ dataDir })
    try {
      await migrate(held)
      const refused = await runCli(['log', '-n', '1', '--json'], { CUSTOS_DATA_DIR: dataDir })
      expect(refused.code).toBe(1)
      expect(refused.stdout).toBe('')
      expect(refused.stderr).toBe(
        `custos log: The embedded database in ${dataDir} is in use by process ${process.pid}. Stop it first, or, if it is a running Custos server, ` +
          `reach it with --url and --token. (If no such process exists, delete ${join(dataDir, LOCK_FILE)}.)\n`,
      )
    } finally {
      await held.close()
    }
    // A holder that died without releasing: its process id is free again.
    const gone = spawn(process.execPath, ['-e', ''])
    await new Promise((resolve) => gone.on('close', resolve))
    await writeFile(join(dataDir, LOCK_FILE), `${gone.pid}\n`)
    const { code, stderr } = await runCli(['log', '-n', '1', '--json'], { CUSTOS_DATA_DIR: dataDir })
    expect(stderr).toBe('')
    expect(code).toBe(0)
    await expect(readFile(join(dataDir, LOCK_FILE), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' })
  })
})
