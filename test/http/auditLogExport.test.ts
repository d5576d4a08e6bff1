import { randomUUID } from 'node:crypto'
import { type ClientRequest, type IncomingMessage, get } from 'node:http'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exportAuthLog, recordExport } from '../../src/audit/export.js'
import { countAuthLog, parseAuthLogFilter } from '../../src/audit/query.js'
import { systemActor } from '../../src/audit/recorder.js'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { onPostgres } from '../testkit/database.js'
import { type LogEntry, createGlobalApiKey, personWithRoles, readLog, seedLogEntries, signedInPerson, tamper } from '../testkit/fixtures.js'

let app: TestApp

beforeAll(async () => {
  app = await startTestApp()
})

afterAll(async () => {
  await app?.stop()
})

function exportLog(format: 'jsonl' | 'csv' | string, query = '', token: string | null = app.rootToken, init: RequestInit = {}) {
  return fetch(`${app.url}/tenant/audit-log/export.${format}${query ? `?${query}` : ''}`, {
    ...init,
    headers: token ? { authorization: `Bearer ${token}` } : {},
  })
}

/**
 * 10,000 entries of about 2 KB each in `year`: 20 MB, more than socket buffers hold. Entries in the
 * past are written outside the hash chain (it accepts only time order), triggers off.
 */
async function seedLargeYear(year: number): Promise<string> {
  await tamper(app.app.services.db, `INSERT INTO person_auth_log (id, type, success, created_at, user_agent, sequence, hash)
      SELECT gen_random_uuid(), 'login', true, timestamptz '${year}-06-01T00:00:00Z' + g * interval '1 second', repeat('x', 2000), 0, decode(repeat('00', 32), 'hex')
        FROM generate_series(1, 10000) g`)
  return `createdAfter=${year}-01-01&createdBefore=${year + 1}-01-01`
}

/** An export on a connection of its own whose client takes the first chunk and then reads no more. */
function stalledExport(query: string, stalled: (response: IncomingMessage, request: ClientRequest) => void, token = app.rootToken): ClientRequest {
  const request = get(`${app.url}/tenant/audit-log/export.jsonl?${query}`, { agent: false, headers: { authorization: `Bearer ${token}` } }, (response) =>
    response.once('data', () => {
      response.pause()
      stalled(response, request)
    }),
  )
  return request
}

/** A minimal RFC 4180 reader: quoted fields, doubled quotes, CRLF records. */
function parseCsv(text: string): string[][] {
  const records: string[][] = []
  let record: string[] = []
  let field = ''
  let quoted = false
  for (let index = 0; index < text.length; index++) {
    const char = text[index]
    if (quoted) {
      if (char === '"' && text[index + 1] === '"') {
        field += '"'
        index++
      } else if (char === '"') quoted = false
      else field += char
    } else if (char === '"') quoted = true
    else if (char === ',') {
      record.push(field)
      field = ''
    } else if (char === '\r' && text[index + 1] === '\n') {
      record.push(field)
      records.push(record)
      record = []
      field = ''
      index++
    } else field += char
  }
  expect(field).toBe('')
  return records
}

const CSV_COLUMNS = [
  'id',
  'createdAt',
  'type',
  'success',
  'invokedByIdentityId',
  'personId',
  'targetPersonId',
  'personInputIdentifier',
  'errorCode',
  'clientIp',
  'userAgent',
  'metadata',
  'eventData',
  'sequence',
  'hash',
]

/** What a CSV field holds for a GraphQL entry value. */
const asCsvText = (value: unknown) => (value === null ? '' : typeof value === 'object' ? value : String(value))

const WINDOW = 'createdAfter=2003-01-01T00:00:00Z&createdBefore=2003-02-01T00:00:00Z'
const window = { createdAfter: '2003-01-01T00:00:00Z', createdBefore: '2003-02-01T00:00:00Z' }

let seeded: LogEntry[]

describe('audit log export', () => {
  beforeAll(async () => {
    const at = (minutes: number) => new Date(Date.UTC(2003, 0, 10) + minutes * 60_000)
    await seedLogEntries(app, [
      { type: 'login', success: false, createdAt: at(1), errorCode: 'INVALID_PASSWORD', personInputIdentifier: 'a,b"c@example.test', clientIp: '10.0.0.1' },
      { type: 'login', createdAt: at(2), userAgent: 'line one\r\nline "two", three', personId: randomUUID(), identityId: randomUUID() },
      {
        type: 'project_create',
        createdAt: at(3),
        targetPersonId: randomUUID(),
        metadata: { reason: 'ünïcödé ✓ "quoted"\n' },
        eventData: { projectSlug: 'p', name: 'Name, with comma', secretKeys: ['a'] },
        clientIp: '2001:db8::1',
      },
    ])
    seeded = (await readLog(app, { filter: window })).entries
    expect(seeded).toHaveLength(3)
  })

  it('JSONL: one AuthLogEntry per line, exactly as authLog shows it, newest first', async () => {
    const response = await exportLog('jsonl', WINDOW)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8')
    const today = new Date().toISOString().slice(0, 10)
    expect(response.headers.get('content-disposition')).toBe(`attachment; filename="custos-audit-log-${today}.jsonl"`)
    const text = await response.text()
    expect(text.endsWith('\n')).toBe(true)
    const lines = text.slice(0, -1).split('\n')
    expect(lines.map((line) => JSON.parse(line))).toEqual(seeded)
    expect(Object.keys(JSON.parse(lines[0]!))).toEqual(CSV_COLUMNS)
  })

  it('CSV: the documented header, RFC 4180 quoting, CRLF records, the same values', async () => {
    const response = await exportLog('csv', WINDOW)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('text/csv; charset=utf-8; header=present')
    expect(response.headers.get('content-disposition')).toMatch(/^attachment; filename="custos-audit-log-\d{4}-\d{2}-\d{2}\.csv"$/)
    const text = await response.text()
    expect(text.startsWith(`${CSV_COLUMNS.join(',')}\r\n`)).toBe(true)
    expect(text).toContain('"a,b""c@example.test"')
    const [header, ...records] = parseCsv(text)
    expect(header).toEqual(CSV_COLUMNS)
    const parsed = records.map((record) =>
      Object.fromEntries(record.map((value, index) => [CSV_COLUMNS[index], /^metadata|eventData$/.test(CSV_COLUMNS[index]!) ? JSON.parse(value) : value])),
    )
    expect(parsed).toEqual(seeded.map((entry) => Object.fromEntries(Object.entries(entry).map(([key, value]) => [key, asCsvText(value)]))))
  })

  it('applies the same filters as authLog, from query parameters', async () => {
    const cases: [string, LogEntry[]][] = [
      ['types=login', seeded.filter((entry) => entry.type === 'login')],
      ['types=project_create,login&success=true', seeded.filter((entry) => entry.success)],
      ['types=project_create&types=login&success=false', seeded.filter((entry) => !entry.success)],
      ['typePrefix=project_', seeded.filter((entry) => entry.type === 'project_create')],
      ['clientIp=2001:db8::/32', seeded.filter((entry) => entry.clientIp === '2001:db8::1')],
      ['q=INVALID_PASS', seeded.filter((entry) => entry.errorCode === 'INVALID_PASSWORD')],
      [`personIds=${seeded[1]!.personId}`, [seeded[1]!]],
    ]
    for (const [query, expected] of cases) {
      const text = await (await exportLog('jsonl', `${WINDOW}&${query}`)).text()
      expect(text.split('\n').filter(Boolean).map((line) => JSON.parse(line).id), query).toEqual(expected.map((entry) => entry.id))
    }
  })

  it('finds what was typed as an empty identifier (signIn with email ""), as authLog does', async () => {
    const [empty] = await seedLogEntries(app, [
      { personInputIdentifier: '', createdAt: new Date(Date.UTC(2011, 5, 1)) },
      { personInputIdentifier: 'someone@example.test', createdAt: new Date(Date.UTC(2011, 5, 2)) },
    ])
    const range = 'createdAfter=2011-01-01&createdBefore=2012-01-01'
    const text = await (await exportLog('jsonl', `${range}&personInputIdentifier=`)).text()
    expect(text.split('\n').filter(Boolean).map((line) => JSON.parse(line).id)).toEqual([empty])
    const read = await readLog(app, { filter: { personInputIdentifier: '', createdAfter: '2011-01-01T00:00:00Z', createdBefore: '2012-01-01T00:00:00Z' } })
    expect(read.entries.map((entry) => entry.id)).toEqual([empty])
  })

  it('matches filter values holding quotes and backslashes exactly (on PostgreSQL they travel as literals)', async () => {
    const identifier = `O'Brien\\'); DROP TABLE person_auth_log; --@example.test`
    const [id] = await seedLogEntries(app, [
      { type: 'login', createdAt: new Date(Date.UTC(2006, 0, 10)), personInputIdentifier: identifier, userAgent: 'agent \\% 100%_' },
      { type: 'login', createdAt: new Date(Date.UTC(2006, 0, 11)), personInputIdentifier: "O'Brien", userAgent: 'agent x 100%_' },
    ])
    const exported = async (filter: Record<string, string>) => {
      const text = await (await exportLog('jsonl', new URLSearchParams({ createdAfter: '2006-01-01', createdBefore: '2006-02-01', ...filter }).toString())).text()
      return text.split('\n').filter(Boolean).map((line) => JSON.parse(line))
    }
    expect((await exported({ personInputIdentifier: identifier })).map((entry) => entry.id)).toEqual([id])
    expect((await exported({ personInputIdentifier: identifier })).map((entry) => entry.personInputIdentifier)).toEqual([identifier])
    expect((await exported({ q: 'agent \\% 100%_' })).map((entry) => entry.id)).toEqual([id])
    expect(await exported({ personInputIdentifier: "O'Brien\\" })).toEqual([])
  })

  it('streams a log larger than one batch, every entry once and in order, ties on created_at included', async () => {
    // Entries in the past are written outside the hash chain (it accepts only time order), triggers off.
    await tamper(app.app.services.db, `INSERT INTO person_auth_log (id, type, success, created_at, user_agent, sequence, hash)
        SELECT gen_random_uuid(), 'login', true, timestamptz '2004-06-01T00:00:00Z' + (g / 7) * interval '1 second', 'bulk', 0, decode(repeat('00', 32), 'hex')
          FROM generate_series(1, 4500) g`)
    const response = await exportLog('csv', 'createdAfter=2004-01-01&createdBefore=2005-01-01&count=true')
    expect(response.headers.get('x-total-count')).toBe('4500')
    const [, ...records] = parseCsv(await response.text())
    expect(records).toHaveLength(4500)
    expect(new Set(records.map((record) => record[0])).size).toBe(4500)
    const order = records.map((record) => `${record[1]} ${record[0]}`)
    expect(order).toEqual([...order].sort().reverse())
  })

  it('stops reading when the client goes away, and frees what it held', async () => {
    const year = await seedLargeYear(2005)
    // More aborted exports than PostgreSQL connections in the pool: an export that kept its
    // connection after its client left would hang the last one.
    for (let attempt = 0; attempt < 12; attempt++) {
      await new Promise<void>((resolve, reject) => {
        stalledExport(year, (_response, request) => {
          request.destroy()
          resolve()
        }).on('error', reject)
      })
    }
    const text = await (await exportLog('jsonl', year)).text()
    expect(text.split('\n').filter(Boolean)).toHaveLength(10000)
  })

  it('cuts off a running export once its token is disabled, rather than letting it run to the end', async () => {
    const year = await seedLargeYear(2009)
    const key = await createGlobalApiKey(app, ['super_admin'])
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      stalledExport(year, resolve, key.token).once('error', reject)
    })
    const disabled = await app.gql('mutation ($id: String!) { disableApiKey(id: $id) { ok } }', { variables: { id: key.id }, token: app.rootToken })
    expect(disabled.data.disableApiKey.ok).toBe(true)
    // The export asks again every 2 s, at its next chunk.
    await new Promise((resolve) => setTimeout(resolve, 2_500))
    let lines = 0
    await new Promise((resolve) =>
      response
        .on('error', resolve)
        .on('close', resolve)
        .on('data', (chunk: Buffer) => (lines += chunk.toString().split('\n').length - 1))
        .resume(),
    )
    expect(response.complete).toBe(false)
    expect(lines).toBeLessThan(10000)
    // The same export with a token that may read the log runs to the end.
    expect((await (await exportLog('jsonl', year)).text()).split('\n').filter(Boolean)).toHaveLength(10000)
  })

  it.runIf(onPostgres)('survives losing the database connection of an export midway: that export is cut off, the server answers on', async () => {
    const year = await seedLargeYear(2007)
    // The COPY stays open, waiting for the client.
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      stalledExport(year, resolve).once('error', reject)
    })
    const admin = new pg.Client({ connectionString: app.app.services.db.url })
    await admin.connect()
    try {
      const { rows } = await admin.query(
        "SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query LIKE 'COPY (%' AND pid <> pg_backend_pid()",
      )
      expect(rows).toEqual([{ terminated: true }])
    } finally {
      await admin.end()
    }
    // Reading on, the server's copy stream meets the lost connection.
    await new Promise((resolve) => response.on('error', resolve).on('close', resolve).on('data', () => {}).resume())
    expect(response.complete).toBe(false)
    expect((await fetch(`${app.url}/health`)).status).toBe(200)
    const text = await (await exportLog('jsonl', 'createdAfter=2007-01-01&createdBefore=2007-06-01T00:01:00Z')).text()
    expect(text.split('\n').filter(Boolean)).toHaveLength(59)
  })

  it('records every export, with its format and filter, as auth_log_export by the caller', async () => {
    const key = await createGlobalApiKey(app, ['super_admin'])
    await (await exportLog('csv', `${WINDOW}&typePrefix=project_`, key.token)).text()
    const [entry] = (await readLog(app, { filter: { types: ['auth_log_export'], invokedByIdentityId: key.identityId } })).entries
    expect(entry).toMatchObject({
      type: 'auth_log_export',
      success: true,
      invokedByIdentityId: key.identityId,
      clientIp: '127.0.0.1',
      eventData: { format: 'csv', filter: { createdAfter: '2003-01-01T00:00:00.000Z', createdBefore: '2003-02-01T00:00:00.000Z', typePrefix: 'project_' } },
    })
  })

  it('refuses a missing or invalid token (401) and a caller without system:viewAuthLog (403), as JSON', async () => {
    const person = await signedInPerson(app)
    const cases: [string | null, number, string][] = [
      [null, 401, 'UNAUTHENTICATED'],
      ['not-a-valid-token-at-all', 401, 'UNAUTHENTICATED'],
      [person.token, 403, 'FORBIDDEN'],
    ]
    for (const [token, status, code] of cases) {
      const response = await exportLog('jsonl', '', token)
      expect(response.status).toBe(status)
      expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8')
      expect(await response.json()).toMatchObject({ error: { code } })
    }
    expect(await (await exportLog('csv', '', person.token)).json()).toEqual({
      error: { code: 'FORBIDDEN', message: 'You are not allowed to view the audit log.' },
    })
    const post = await exportLog('csv', '', app.rootToken, { method: 'POST' })
    expect(post.status).toBe(405)
    expect(post.headers.get('allow')).toBe('GET')
  })

  it('serves a role that CUSTOS_ROLE_GRANTS grants system:viewAuthLog, as authLog does', async () => {
    const granting = await startTestApp({ CUSTOS_ROLE_GRANTS: JSON.stringify({ project_admin: ['system:viewAuthLog'] }) })
    try {
      const admin = await personWithRoles(granting, ['project_admin'])
      expect((await granting.gql('{ authLog(limit: 1) { hasMore } }', { token: admin.token })).data?.authLog).toBeTruthy()
      for (const format of ['jsonl', 'csv']) {
        const response = await fetch(`${granting.url}/tenant/audit-log/export.${format}`, { headers: { authorization: `Bearer ${admin.token}` } })
        expect(response.status, format).toBe(200)
        expect(await response.text()).toContain('auth_log_export')
      }
    } finally {
      await granting.stop()
    }
  })

  it('answers invalid parameters with 400 and a JSON error naming the parameter, before any data, recording nothing', async () => {
    const before = (await readLog(app, { filter: { types: ['auth_log_export'] } })).entries.length
    const cases: [string, string][] = [
      ['types=no_such_type', 'types'],
      ['typePrefix=zzz', 'typePrefix'],
      ['createdAfter=yesterday', 'createdAfter'],
      ['createdAfter=2003-02-30T00:00:00Z', 'createdAfter'],
      ['success=maybe', 'success'],
      ['clientIp=300.1.1.1', 'clientIp'],
      ['clientIp=fe80::1%25eth0', 'clientIp'],
      ['q=ab', 'q'],
      ['personIds=1,2', 'personIds'],
      ['personId=a&personId=b', 'personId'],
      ['types=', 'types'],
      ['fliter=x', 'fliter'],
      ['count=yes', 'count'],
      // Not UTF-8 once percent-decoded: a lone surrogate, stray bytes.
      ['q=ab%ED%A0%80cdef', 'q'],
      ['q=%FF%FEabc', 'q'],
      ['count=true&count=true', 'count'],
      ['count=false&count=true', 'count'],
      // Dates PostgreSQL cannot hold: year 0, and years JavaScript writes with six digits (in UTC).
      ['createdAfter=0000-01-01', 'createdAfter'],
      ['createdAfter=0000-01-01&count=true', 'createdAfter'],
      ['createdBefore=0001-01-01T00:30:00%2B01:00', 'createdBefore'],
      ['createdBefore=9999-12-31T23:00:00-05:00', 'createdBefore'],
      ['personInputIdentifier=a%00b', 'personInputIdentifier'],
      ['q=abc%00def', 'q'],
      ['types=login%00', 'types'],
      [`personInputIdentifier=${'x'.repeat(513)}`, 'personInputIdentifier'],
      ['createdAfter=2003-02-01&createdBefore=2003-01-01', 'createdAfter'],
    ]
    for (const format of ['csv', 'jsonl']) {
      for (const [query, parameter] of cases) {
        const response = await exportLog(format, query)
        expect(response.status, query).toBe(400)
        expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8')
        expect(await response.json(), query).toMatchObject({ error: { code: 'BAD_USER_INPUT', parameter, message: expect.any(String) } })
      }
    }
    expect((await readLog(app, { filter: { types: ['auth_log_export'] } })).entries).toHaveLength(before)
  })

  it('accepts the earliest and the latest date it can hold', async () => {
    const response = await exportLog('jsonl', 'createdAfter=0001-01-01&createdBefore=9999-12-31T23:59:59.999Z&types=login&success=false&count=true')
    expect(response.status).toBe(200)
    expect(response.headers.get('x-total-count')).toBe(String((await response.text()).split('\n').filter(Boolean).length))
  })

  it('counted, holds exactly the entries it counted, though more that match are recorded between the count and the reading', async () => {
    const db = app.app.services.db
    const criteria = parseAuthLogFilter({ types: ['auth_log_export'], createdAfter: new Date(Date.now() - 1000) })
    await recordExport(db.prisma, systemActor, criteria, 'jsonl')
    const entries = async (chunks: AsyncIterable<{ entries: number }>) => {
      let total = 0
      for await (const chunk of chunks) total += chunk.entries
      return total
    }
    await db.session(async (session) => {
      const counted = await countAuthLog(session, criteria)
      expect(counted.count).toBeGreaterThan(0)
      for (let index = 0; index < 2; index++) await recordExport(db.prisma, systemActor, criteria, 'jsonl')
      expect(await entries(exportAuthLog(session, counted.criteria, 'jsonl'))).toBe(counted.count)
      // Without the cut, the two recorded after the count are in.
      expect(await entries(exportAuthLog(session, criteria, 'jsonl'))).toBe(counted.count + 2)
    })
  })

  it('answers an unexpected failure before any data with a JSON 500, and cuts off an export that fails after data went out', async () => {
    const db = app.app.services.db
    const { session } = db
    // A log that fails every read: count=true reads before the headers, the CSV header goes out before the rows.
    db.session = (work) =>
      session((real) => work({ ...real, copyOut: undefined, query: () => Promise.reject(new Error('the disk is on fire')) }))
    try {
      const counted = await exportLog('csv', `${WINDOW}&count=true`)
      expect(counted.status).toBe(500)
      expect(counted.headers.get('content-type')).toBe('application/json; charset=utf-8')
      expect(await counted.json()).toEqual({ error: { code: 'INTERNAL_SERVER_ERROR', message: 'Unexpected error.' } })
      // Reset, whether before or after the client saw the headers: never ended as if complete.
      await expect(exportLog('csv', WINDOW).then((response) => response.text())).rejects.toThrow()
    } finally {
      db.session = session
    }
  })
})

describe('audit log export under load', () => {
  // Each export records its entry through Prisma, which draws from the pool its session came from:
  // taken inside the session, ten exports waiting for the head held all ten connections for good.
  it.runIf(onPostgres)('serves more exports at once than the connection pool holds while the chain head is busy', async () => {
    const writer = new pg.Client({ connectionString: app.app.services.db.url })
    await writer.connect()
    await writer.query('BEGIN')
    await writer.query('SELECT 1 FROM person_auth_log_head FOR UPDATE')
    const statuses = Array.from({ length: 24 }, () =>
      exportLog('jsonl', 'types=auth_log_checkpoint', app.rootToken, { signal: AbortSignal.timeout(15_000) }).then(
        async (response) => (await response.text(), response.status),
        (error: Error) => error.name,
      ),
    )
    await new Promise((resolve) => setTimeout(resolve, 1000))
    await writer.query('COMMIT')
    await writer.end()
    expect(await Promise.all(statuses)).toEqual(Array(24).fill(200))
  })

  // Each export holds a database session until its client has read it all: clients that stop
  // reading must not hold the whole pool (10 connections), or every other request waits with them.
  it('keeps answering other requests while more exports than the pool holds stall, and serves the waiting ones in turn', async () => {
    const year = await seedLargeYear(1999)
    let streamingCount = 0
    const streamingNow: (() => void)[] = []
    const stalled = Array.from({ length: 12 }, () =>
      stalledExport(year, (_response, request) => {
        streamingCount++
        streamingNow.push(() => request.destroy())
      }).on('error', () => {}),
    )
    const streams = async (count: number) => {
      while (streamingCount < count) await new Promise((resolve) => setTimeout(resolve, 50))
    }
    // Those that got a slot stream; the rest wait for one.
    await streams(1)
    await new Promise((resolve) => setTimeout(resolve, 500))
    const answer = await app.gql('{ authLog(limit: 1) { entries { type } } }', { token: app.rootToken })
    expect(answer.errors).toBeUndefined()
    expect(answer.data.authLog.entries).toHaveLength(1)
    // Clients that leave free their slots for those waiting, which then stream too.
    const first = streamingCount
    for (const leave of streamingNow.splice(0)) leave()
    await streams(first + 1)
    for (const request of stalled) request.destroy()
    const text = await (await exportLog('jsonl', year)).text()
    expect(text.split('\n').filter(Boolean)).toHaveLength(10000)
  })
})
