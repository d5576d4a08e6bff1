import { randomBytes, randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CursorCodec } from '../../src/audit/cursor.js'
import { INPUT_IDENTIFIER_LIMIT } from '../../src/audit/recorder.js'
import { keysetPageSql, parseAuthLogFilter } from '../../src/audit/query.js'
import { ConfigError, loadConfig } from '../../src/config.js'
import { Prisma } from '../../src/generated/prisma/client.js'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { logSize } from '../testkit/expectations.js'
import { type SeedLogEntry, readLog, seedLogEntries, signedInPerson, sql } from '../testkit/fixtures.js'

let app: TestApp

beforeAll(async () => {
  app = await startTestApp()
})

afterAll(async () => {
  await app?.stop()
})

/** Each test seeds into a month of 2001 of its own and reads only that month, so tests never see each other's rows. */
let nextMonth = 0
function testWindow() {
  const start = new Date(Date.UTC(2001, nextMonth++, 1))
  const at = (minutes: number) => new Date(start.getTime() + minutes * 60_000)
  return { at, filter: { createdAfter: start.toISOString(), createdBefore: at(28 * 24 * 60).toISOString() } }
}

/** Seeds entries one minute apart (the first oldest) and returns their ids newest first, as authLog lists them. */
async function seedTimeline(at: (minutes: number) => Date, entries: SeedLogEntry[]): Promise<string[]> {
  const ids = await seedLogEntries(app, entries.map((entry, index) => ({ createdAt: at(index), ...entry })))
  return ids.reverse()
}

async function authLogError(variables: Record<string, unknown>) {
  const response = await app.gql(
    `query ($filter: AuthLogFilter, $limit: Int, $offset: Int, $cursor: String) {
      authLog(filter: $filter, limit: $limit, offset: $offset, cursor: $cursor) { hasMore }
    }`,
    { variables, token: app.rootToken },
  )
  expect(response.data?.authLog ?? null).toBeNull()
  return response.errors?.[0]?.extensions
}

const ids = (page: { entries: { id: string }[] }) => page.entries.map((entry) => entry.id)

describe('authLog filters', () => {
  it('typePrefix narrows to the types starting with it, also together with types', async () => {
    const { at, filter } = testWindow()
    const [member, created, login] = await seedTimeline(at, [{ type: 'login' }, { type: 'project_create' }, { type: 'project_membership_create' }])
    expect(ids(await readLog(app, { filter: { ...filter, typePrefix: 'project_' } }))).toEqual([member, created])
    expect(ids(await readLog(app, { filter: { ...filter, typePrefix: 'project_', types: ['project_create', 'login'] } }))).toEqual([created])
    expect(ids(await readLog(app, { filter: { ...filter, typePrefix: 'log' } }))).toEqual([login])
    expect(await authLogError({ filter: { typePrefix: 'nothing_' } })).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'filter.typePrefix' })
    // As the export's ?typePrefix= is: an empty prefix is a mistake, not "every type".
    expect(await authLogError({ filter: { typePrefix: '' } })).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'filter.typePrefix' })
  })

  it('takes bounds finer than a millisecond exactly (entries are stored to the millisecond)', async () => {
    const { at } = testWindow()
    const instant = new Date(at(0).getTime() + 214)
    const [entry] = await seedLogEntries(app, [{ createdAt: instant }])
    const iso = instant.toISOString()
    const finer = (digits: string) => iso.replace('Z', `${digits}Z`)
    const matches = async (filter: Record<string, string>) => ids(await readLog(app, { filter })).includes(entry!)
    expect(await matches({ createdAfter: iso, createdBefore: finer('1') })).toBe(true)
    expect(await matches({ createdAfter: finer('9') })).toBe(false)
    expect(await matches({ createdAfter: finer('000'), createdBefore: finer('0001') })).toBe(true)
    expect(await matches({ createdBefore: iso })).toBe(false)
    // Written into the query as a literal too.
    const literal = await app.gql(`{ authLog(filter: { createdAfter: "${finer('9')}", createdBefore: "${at(1).toISOString()}" }) { entries { id } } }`, { token: app.rootToken })
    expect(literal.data.authLog.entries).toEqual([])
  })

  it('identityIds and personIds match any id of their list', async () => {
    const { at, filter } = testWindow()
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()]
    const [third, second, first] = await seedTimeline(at, [
      { identityId: a, personId: c },
      { identityId: b, personId: b },
      { identityId: c, personId: a },
    ])
    expect(ids(await readLog(app, { filter: { ...filter, identityIds: [a, b.toUpperCase()] } }))).toEqual([second, first])
    expect(ids(await readLog(app, { filter: { ...filter, personIds: [a, c] } }))).toEqual([third, first])
    expect(ids(await readLog(app, { filter: { ...filter, identityIds: [a, b], personIds: [b, c] } }))).toEqual([second, first])
    expect(ids(await readLog(app, { filter: { ...filter, identityIds: [] } }))).toEqual([])
    expect(await authLogError({ filter: { personIds: [a, 'not-an-id'] } })).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'filter.personIds' })
    const tooMany = Array.from({ length: 101 }, () => randomUUID())
    expect(await authLogError({ filter: { identityIds: tooMany } })).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'filter.identityIds' })
  })

  it('clientIp matches an exact address or every address in a CIDR block', async () => {
    const { at, filter } = testWindow()
    const [v6, other, inside, exact] = await seedTimeline(at, [
      { clientIp: '10.1.2.3' },
      { clientIp: '10.1.200.7' },
      { clientIp: '10.2.0.1' },
      { clientIp: '2001:db8::5' },
    ])
    expect(ids(await readLog(app, { filter: { ...filter, clientIp: '10.1.2.3' } }))).toEqual([exact])
    expect(ids(await readLog(app, { filter: { ...filter, clientIp: '10.1.0.0/16' } }))).toEqual([inside, exact])
    expect(ids(await readLog(app, { filter: { ...filter, clientIp: '10.0.0.0/8' } }))).toEqual([other, inside, exact])
    expect(ids(await readLog(app, { filter: { ...filter, clientIp: '2001:db8::/32' } }))).toEqual([v6])
    expect(ids(await readLog(app, { filter: { ...filter, clientIp: '::ffff:10.1.2.3' } }))).toEqual([exact])
    // IPv4 addresses are stored unmapped, so an IPv4-mapped block is the IPv4 block inside it.
    expect(ids(await readLog(app, { filter: { ...filter, clientIp: '::ffff:10.1.0.0/112' } }))).toEqual([inside, exact])
    expect(ids(await readLog(app, { filter: { ...filter, clientIp: '::FFFF:10.0.0.0/104' } }))).toEqual([other, inside, exact])
    expect(ids(await readLog(app, { filter: { ...filter, clientIp: '::ffff:10.1.2.3/128' } }))).toEqual([exact])
    // Any spelling of a mapped address or block: hex, upper case, zeros written out.
    for (const spelling of ['::ffff:a01:203', '::FFFF:A01:203', '0:0:0:0:0:ffff:10.1.2.3', '0000:0000:0000:0000:0000:ffff:0a01:0203']) {
      expect(ids(await readLog(app, { filter: { ...filter, clientIp: spelling } })), spelling).toEqual([exact])
    }
    expect(ids(await readLog(app, { filter: { ...filter, clientIp: '::ffff:a00:0/104' } }))).toEqual([other, inside, exact])
    expect((await readLog(app, { filter: { ...filter, clientIp: '10.1.2.3' } })).entries[0]?.clientIp).toBe('10.1.2.3')
    // A mapped block under /96 would reach past the IPv4 addresses it is written in.
    for (const invalid of ['10.0.0.0/33', 'example.org', '10.0.0.0/', '::1/129', '::ffff:10.0.0.0/95', '::ffff:10.0.0.0/129']) {
      expect(await authLogError({ filter: { clientIp: invalid } })).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'filter.clientIp' })
    }
  })

  it('q finds a case-insensitive substring of the identifier, error code, user agent, metadata and event data', async () => {
    const { at, filter } = testWindow()
    const tag = randomBytes(4).toString('hex')
    const [inEventData, inMetadata, inUserAgent, inErrorCode, inIdentifier, percent] = await seedTimeline(at, [
      { personInputIdentifier: `discount 100% ${tag}` },
      { personInputIdentifier: `alice.${tag}@example.test`, errorCode: `NEXT_${tag}` },
      { errorCode: `INVALID_PASSWORD_${tag}`, success: false },
      { userAgent: `Mozilla/5.0 Firefox-${tag}` },
      { metadata: { reason: `locked-${tag}` } },
      { type: 'project_create', eventData: { projectSlug: `slug-${tag}`, name: 'n', secretKeys: [] } },
    ])
    const search = async (q: string) => ids(await readLog(app, { filter: { ...filter, q } }))
    expect(await search(`ALICE.${tag}`)).toEqual([inIdentifier])
    expect(await search(`password_${tag}`)).toEqual([inErrorCode])
    expect(await search(`firefox-${tag}`)).toEqual([inUserAgent])
    expect(await search(`locked-${tag}`)).toEqual([inMetadata])
    expect(await search(`slug-${tag}`)).toEqual([inEventData])
    expect(await search(tag)).toHaveLength(6)
    // LIKE's wildcards are plain characters in q.
    expect(await search(`100% ${tag}`)).toEqual([percent])
    expect(await search(`10_% ${tag}`)).toEqual([])
    // Nothing matches across two fields (identifier and error code of one entry here).
    expect(await search(`example.testnext_${tag}`)).toEqual([])
  })

  it('q counts characters, not UTF-16 units: 200 with emoji among them are taken', async () => {
    const response = await app.gql('query ($filter: AuthLogFilter) { authLog(filter: $filter) { entries { id } } }', {
      token: app.rootToken,
      variables: { filter: { q: `abc${'🚀'.repeat(197)}` } },
    })
    expect(response.errors).toBeUndefined()
    expect(response.data.authLog.entries).toEqual([])
  })

  it('q without three letters or digits in a row, or with control characters, is refused', async () => {
    for (const q of ['ab', '.-.-', 'a b c', 'abc\ndef', 'x'.repeat(201)]) {
      expect(await authLogError({ filter: { q } })).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'filter.q' })
    }
  })

  it('the search is served by the trigram index', async () => {
    const sql = keysetPageSql(Prisma.sql`id`, { criteria: parseAuthLogFilter({ q: 'firefox' }), limit: 100 })
    const plan = await app.app.services.db.session(async (session) => {
      await session.exec('BEGIN; SET LOCAL enable_seqscan = off')
      try {
        return (await session.query<Record<string, string>>(`EXPLAIN ${sql.text}`, sql.values)).map((row) => Object.values(row)[0]).join('\n')
      } finally {
        await session.exec('COMMIT')
      }
    })
    // On the month-partitioned log each partition has its own copy of the search index (<partition>_expr_idx).
    expect(plan).toMatch(/Bitmap Index Scan on person_auth_log_\w+_expr_idx/)
    expect(plan).not.toMatch(/Seq Scan/)
  })
})

describe('authLog paging with cursor', () => {
  it('walks every entry once, in the same order as offset paging, and ends with a null cursor', async () => {
    const { at, filter } = testWindow()
    const seeded = await seedTimeline(at, Array.from({ length: 7 }, () => ({})))
    const walked: string[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const page = await readLog(app, { filter, limit: 3, cursor })
      walked.push(...ids(page))
      expect(page.hasMore).toBe(page.nextCursor !== null)
      cursor = page.nextCursor
      pages++
    } while (cursor)
    expect(pages).toBe(3)
    expect(walked).toEqual(seeded)
    expect(ids(await readLog(app, { filter, limit: 3, offset: 3 }))).toEqual(seeded.slice(3, 6))
  })

  it('keeps its place while new entries arrive, where offset shifts', async () => {
    const { at, filter } = testWindow()
    const seeded = await seedTimeline(at, Array.from({ length: 6 }, () => ({})))
    const first = await readLog(app, { filter, limit: 2 })
    expect(ids(first)).toEqual(seeded.slice(0, 2))
    // Two newer entries arrive after the first page was read.
    const newer = await seedTimeline((minutes) => at(100 + minutes), [{}, {}])
    expect(ids(await readLog(app, { filter, limit: 2, cursor: first.nextCursor }))).toEqual(seeded.slice(2, 4))
    expect(ids(await readLog(app, { filter, limit: 2, offset: 2 }))).toEqual(seeded.slice(0, 2))
    expect(ids(await readLog(app, { filter, limit: 2 }))).toEqual(newer)
  })

  it("leaves entries written since the walk began out of its later pages, also those of its position's millisecond", async () => {
    // Chained entries, as the app writes them (created_at is stored to the millisecond).
    const filter = { personInputIdentifier: `walk-${randomUUID()}@example.test` }
    const write = (id: string, createdAtOf?: string) =>
      sql(
        app,
        `INSERT INTO person_auth_log (id, type, success, person_input_identifier, created_at)
         VALUES ($1, 'login', false, $2, coalesce((SELECT created_at FROM person_auth_log WHERE id = $3::uuid), person_auth_log_now()))`,
        [id, filter.personInputIdentifier, createdAtOf ?? null],
      )
    // A millisecond apart at least: entries sharing one would be ordered by their random ids, and
    // one of them could sort between the position and the entry written into its millisecond.
    for (let index = 0; index < 3; index++) {
      await write(randomUUID())
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
    const first = await readLog(app, { filter, limit: 1 })
    const [position] = ids(first)
    // Written after the first page, in the same millisecond as its last entry, with an id that sorts after it.
    const sameInstant = '00000000-0000-4000-8000-000000000000'
    await write(sameInstant, position)
    const rest = await readLog(app, { filter, limit: 10, cursor: first.nextCursor })
    expect(ids(rest)).toHaveLength(2)
    expect(ids(rest)).not.toContain(sameInstant)
    // A walk begun now sees it, right after the entry it shares the millisecond with.
    const now = ids(await readLog(app, { filter }))
    expect(now.indexOf(sameInstant)).toBe(now.indexOf(position!) + 1)
  })

  it('orders entries of the same instant by id, without skipping or repeating any', async () => {
    const { at, filter } = testWindow()
    const seeded = await seedLogEntries(app, Array.from({ length: 5 }, () => ({ createdAt: at(0) })))
    const walked: string[] = []
    let cursor: string | null = null
    do {
      const page = await readLog(app, { filter, limit: 2, cursor })
      walked.push(...ids(page))
      cursor = page.nextCursor
    } while (cursor)
    expect(walked).toEqual([...seeded].sort().reverse())
  })

  it('refuses a tampered, foreign or garbled cursor, one made for another filter, and cursor with offset', async () => {
    const { at, filter } = testWindow()
    await seedTimeline(at, [{ type: 'login' }, { type: 'login' }, { type: 'login' }])
    const { nextCursor } = await readLog(app, { filter, limit: 1 })
    expect(nextCursor).toEqual(expect.any(String))
    const [payload, mac] = nextCursor!.split('.') as [string, string]
    const decoded = JSON.parse(Buffer.from(payload, 'base64url').toString()) as unknown[]
    const tamperedPayload = Buffer.from(JSON.stringify(['1999-01-01T00:00:00.000000Z', ...decoded.slice(1)])).toString('base64url')
    const foreign = new CursorCodec(randomBytes(32)).encode(
      { createdAt: decoded[0] as string, id: decoded[1] as string, throughSequence: decoded[3] as string },
      decoded[2] as string,
    )
    for (const cursor of [`${tamperedPayload}.${mac}`, `${payload}.${mac.slice(0, -2)}AA`, foreign, 'garbage', `${nextCursor}.x`]) {
      expect(await authLogError({ filter, limit: 1, cursor })).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'cursor' })
    }
    expect(await authLogError({ filter: { ...filter, types: ['login'] }, limit: 1, cursor: nextCursor })).toMatchObject({
      code: 'BAD_USER_INPUT',
      argument: 'cursor',
    })
    for (const offset of [1, 0]) {
      expect(await authLogError({ filter, limit: 1, cursor: nextCursor, offset })).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'cursor' })
    }
    // The untouched cursor still works.
    expect((await readLog(app, { filter, limit: 1, cursor: nextCursor })).entries).toHaveLength(1)
  })
})

async function gqlData(query: string, variables: Record<string, unknown>, token = app.rootToken) {
  const response = await app.gql(query, { variables, token })
  return response
}

describe('authLogTypes', () => {
  it('lists the types that occurred since the given time with counts, most frequent first', async () => {
    const since = new Date(Date.now() - 3_600_000)
    const recent = (minutes: number) => new Date(since.getTime() + 60_000 + minutes * 60_000)
    await seedLogEntries(app, [
      { type: 'idp_enable', createdAt: recent(1) },
      { type: 'idp_disable', createdAt: recent(2) },
      { type: 'idp_disable', createdAt: recent(3) },
      { type: 'idp_update', createdAt: new Date(since.getTime() - 60_000) },
    ])
    const response = await gqlData(`query ($since: DateTime) { authLogTypes(since: $since) { type count } }`, { since: since.toISOString() })
    const types = response.data.authLogTypes as { type: string; count: number }[]
    expect(types.filter((entry) => entry.type.startsWith('idp_'))).toEqual([
      { type: 'idp_disable', count: 2 },
      { type: 'idp_enable', count: 1 },
    ])
    expect(types.map((entry) => entry.count)).toEqual([...types.map((entry) => entry.count)].sort((a, b) => b - a))
  })

  it('looks back 30 days by default', async () => {
    await seedLogEntries(app, [
      { type: 'mail_template_change', createdAt: new Date(Date.now() - 29 * 86_400_000) },
      { type: 'tenant_config_change', createdAt: new Date(Date.now() - 31 * 86_400_000) },
    ])
    const types = (await gqlData(`{ authLogTypes { type count } }`, {})).data.authLogTypes as { type: string }[]
    expect(types.map((entry) => entry.type)).toContain('mail_template_change')
    expect(types.map((entry) => entry.type)).not.toContain('tenant_config_change')
  })
})

const STATS = `query ($filter: AuthLogFilter, $bucket: AuthLogBucket) {
  authLogStats(filter: $filter, bucket: $bucket) { bucket from to total types { type count } buckets { start count types { type count } } }
}`

describe('authLogStats', () => {
  it('counts per hour and per type over the window, empty hours included', async () => {
    const { at, filter } = testWindow()
    await seedLogEntries(app, [
      { type: 'login', createdAt: at(5) },
      { type: 'login', createdAt: at(50), success: false },
      { type: 'password_change', createdAt: at(55) },
      { type: 'login', createdAt: at(180) },
    ])
    const window = { createdAfter: filter.createdAfter, createdBefore: at(240).toISOString() }
    const stats = (await gqlData(STATS, { filter: window, bucket: 'HOUR' })).data.authLogStats
    expect(stats).toMatchObject({ bucket: 'HOUR', total: 4, from: window.createdAfter, to: window.createdBefore })
    expect(stats.types).toEqual([
      { type: 'login', count: 3 },
      { type: 'password_change', count: 1 },
    ])
    expect(stats.buckets).toEqual([
      { start: at(0).toISOString(), count: 3, types: [{ type: 'login', count: 2 }, { type: 'password_change', count: 1 }] },
      { start: at(60).toISOString(), count: 0, types: [] },
      { start: at(120).toISOString(), count: 0, types: [] },
      { start: at(180).toISOString(), count: 1, types: [{ type: 'login', count: 1 }] },
    ])
    const failures = (await gqlData(STATS, { filter: { ...window, success: false }, bucket: 'DAY' })).data.authLogStats
    expect(failures).toMatchObject({ bucket: 'DAY', total: 1, buckets: [{ start: at(0).toISOString(), count: 1 }] })
  })

  it('refuses a window of too many buckets, or one that ends before it starts', async () => {
    const tooLong = await gqlData(STATS, { filter: { createdAfter: '2001-01-01T00:00:00Z', createdBefore: '2002-01-01T00:00:00Z' }, bucket: 'HOUR' })
    expect(tooLong.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'bucket' })
    const backwards = await gqlData(STATS, { filter: { createdAfter: '2001-02-01T00:00:00Z', createdBefore: '2001-01-01T00:00:00Z' } })
    expect(backwards.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'filter.createdAfter' })
    // Stats need at least one bucket; a page of an empty window is just empty.
    const empty = await gqlData(STATS, { filter: { createdAfter: '2001-01-01T00:00:00Z', createdBefore: '2001-01-01T00:00:00Z' } })
    expect(empty.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'filter.createdAfter' })
  })

  it('refuses a page of a window that ends before it starts, and answers an empty window with an empty page', async () => {
    const page = `query ($filter: AuthLogFilter) { authLog(filter: $filter) { entries { id } hasMore } }`
    const backwards = await gqlData(page, { filter: { createdAfter: '2001-02-01T00:00:00Z', createdBefore: '2001-01-01T00:00:00Z' } })
    expect(backwards.data ?? null).toBeNull()
    expect(backwards.errors).toEqual([
      expect.objectContaining({ message: 'filter.createdAfter must not be after filter.createdBefore', extensions: expect.objectContaining({ code: 'BAD_USER_INPUT', argument: 'filter.createdAfter' }) }),
    ])
    const empty = await gqlData(page, { filter: { createdAfter: '2001-01-01T00:00:00Z', createdBefore: '2001-01-01T00:00:00Z' } })
    expect(empty.data.authLog).toEqual({ entries: [], hasMore: false })
  })

  it('without createdAfter counts the 30 days before createdBefore; without createdBefore, up to now', async () => {
    const { at } = testWindow()
    const personId = randomUUID()
    await seedLogEntries(app, [
      { personId, createdAt: at(-31 * 24 * 60) },
      { personId, createdAt: at(-29 * 24 * 60) },
      { personId, createdAt: at(0) },
    ])
    const end = at(60)
    const endingThen = (await gqlData(STATS, { filter: { personId, createdBefore: end.toISOString() } })).data.authLogStats
    expect(endingThen).toMatchObject({ from: new Date(end.getTime() - 30 * 86_400_000).toISOString(), to: end.toISOString(), total: 2 })
    expect(endingThen.buckets).toHaveLength(31)

    const start = new Date(Date.now() - 2 * 86_400_000)
    await seedLogEntries(app, [{ personId, createdAt: new Date(start.getTime() + 60_000) }])
    const asked = Date.now()
    const sinceThen = (await gqlData(STATS, { filter: { personId, createdAfter: start.toISOString() } })).data.authLogStats
    expect(sinceThen).toMatchObject({ from: start.toISOString(), total: 1 })
    expect(Date.parse(sinceThen.to)).toBeGreaterThanOrEqual(asked)
    expect(Date.parse(sinceThen.to)).toBeLessThanOrEqual(Date.now())
  })

  it('requires system:viewAuthLog, like authLog and authLogTypes', async () => {
    const person = await signedInPerson(app)
    for (const query of [STATS, '{ authLogTypes { type } }', '{ authLog { hasMore } }']) {
      const response = await gqlData(query, {}, person.token)
      expect(response.errors?.[0]).toMatchObject({ message: 'You are not allowed to view the audit log.', extensions: { code: 'FORBIDDEN' } })
    }
  })
})

describe('dates PostgreSQL cannot hold', () => {
  it('accepts 0001-01-01 to 9999-12-31, and a default window that would start before 0001 starts there', async () => {
    const everything = { createdAfter: '0001-01-01T00:00:00Z', createdBefore: '9999-12-31T23:59:59.999Z' }
    expect((await gqlData(`query ($filter: AuthLogFilter) { authLog(filter: $filter, limit: 1) { hasMore } }`, { filter: everything })).errors).toBeUndefined()
    expect((await gqlData(`{ authLogTypes(since: "0001-01-01T00:00:00Z") { type } }`, {})).errors).toBeUndefined()
    const early = (await gqlData(STATS, { filter: { createdBefore: '0001-01-10T00:00:00Z' } })).data.authLogStats
    expect(early).toMatchObject({ from: '0001-01-01T00:00:00.000Z', to: '0001-01-10T00:00:00.000Z', total: 0 })
  })
})

describe('refused reads, with CUSTOS_AUDIT_READS=true', () => {
  let auditing: TestApp

  beforeAll(async () => {
    auditing = await startTestApp({ CUSTOS_AUDIT_READS: 'true' })
  })

  afterAll(async () => {
    await auditing?.stop()
  })

  /** The error `query` is refused with: no data, and the log (auth_log_read included) left as it was. */
  async function refusal(query: string, variables: Record<string, unknown>) {
    const mark = await logSize(auditing)
    const response = await auditing.gql(query, { variables, token: auditing.rootToken })
    expect(response.data ?? null).toBeNull()
    expect(response.errors).toHaveLength(1)
    expect(await logSize(auditing)).toBe(mark)
    return response.errors![0]!.extensions
  }

  const AUTH_LOG = `query ($filter: AuthLogFilter, $offset: Int, $cursor: String) { authLog(filter: $filter, offset: $offset, cursor: $cursor) { hasMore } }`

  // Year 0 PostgreSQL does not have; beyond 9999, or before 0001 once in UTC, JavaScript writes a six-digit year it cannot read.
  it.each(['0000-01-01T00:00:00Z', '0001-01-01T00:30:00+01:00', '9999-12-31T23:00:00-05:00'])('refuses %s in every reading operation', async (date) => {
    const operations: [string, Record<string, unknown>, string][] = [
      [AUTH_LOG, { filter: { createdAfter: date } }, 'filter.createdAfter'],
      [AUTH_LOG, { filter: { createdBefore: date } }, 'filter.createdBefore'],
      [`query ($since: DateTime) { authLogTypes(since: $since) { type } }`, { since: date }, 'since'],
      [STATS, { filter: { createdAfter: date } }, 'filter.createdAfter'],
      [STATS, { filter: { createdBefore: date } }, 'filter.createdBefore'],
      [STATS, { filter: { createdAfter: '0001-01-01T00:00:00Z', createdBefore: date } }, 'filter.createdBefore'],
    ]
    for (const [query, variables, argument] of operations) {
      expect(await refusal(query, variables), JSON.stringify(variables)).toMatchObject({ code: 'BAD_USER_INPUT', argument })
    }
    expect(await refusal(`{ authLog(filter: { createdAfter: "${date}" }) { hasMore } }`, {})).toMatchObject({ code: 'BAD_USER_INPUT' })
  })

  it('refuses a personInputIdentifier longer than an entry can hold', async () => {
    const tooLong = 'x'.repeat(INPUT_IDENTIFIER_LIMIT + 1)
    expect(await refusal(AUTH_LOG, { filter: { personInputIdentifier: tooLong } })).toMatchObject({
      code: 'BAD_USER_INPUT',
      argument: 'filter.personInputIdentifier',
    })
    expect(await refusal(`{ authLogStats(filter: { personInputIdentifier: "${tooLong}" }) { total } }`, {})).toMatchObject({
      code: 'BAD_USER_INPUT',
      argument: 'filter.personInputIdentifier',
    })
    const longest = 'x'.repeat(INPUT_IDENTIFIER_LIMIT)
    await seedLogEntries(auditing, [{ personInputIdentifier: longest }])
    expect((await readLog(auditing, { filter: { personInputIdentifier: longest } })).entries).toHaveLength(1)
  })

  it('refuses text with an unpaired surrogate, which the recorded read could not hold', async () => {
    // Refused before anything runs, as in any operation (src/http/rejectUnstorableInput.ts), naming the variable.
    for (const filter of [{ q: 'abc\ud800' }, { personInputIdentifier: '\udc00x@example.test' }]) {
      expect(await refusal(AUTH_LOG, { filter }), Object.keys(filter)[0]).toMatchObject({ code: 'BAD_USER_INPUT', variable: 'filter' })
    }
    // A whole pair is a character like any other.
    const personInputIdentifier = 'emoji-😀@example.test'
    await seedLogEntries(auditing, [{ personInputIdentifier }])
    expect((await readLog(auditing, { filter: { personInputIdentifier } })).entries).toHaveLength(1)
  })

  it('refuses a cursor with any offset, 0 included', async () => {
    const personId = randomUUID()
    await seedLogEntries(auditing, [{ personId }, { personId }])
    const { nextCursor } = await readLog(auditing, { filter: { personId }, limit: 1 })
    for (const offset of [0, 1]) {
      expect(await refusal(AUTH_LOG, { filter: { personId }, cursor: nextCursor, offset })).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'cursor' })
    }
  })
})

describe('recording reads', () => {
  it('CUSTOS_AUDIT_READS must be true or false', () => {
    expect(() => loadConfig({ CUSTOS_AUDIT_READS: 'yes' })).toThrow(ConfigError)
    expect(loadConfig({ CUSTOS_AUDIT_READS: 'true' }).auditReads).toBe(true)
    expect(loadConfig({}).auditReads).toBe(false)
  })

  it('is off by default', async () => {
    const { filter } = testWindow()
    await readLog(app, { filter, limit: 5 })
    expect((await readLog(app, { filter: { types: ['auth_log_read'] } })).entries).toEqual([])
  })

  it('with CUSTOS_AUDIT_READS=true records every authLog read with its filter, but no refused one', async () => {
    const auditing = await startTestApp({ CUSTOS_AUDIT_READS: 'true' })
    try {
      const personId = randomUUID()
      await seedLogEntries(auditing, [{ personId }, { personId }])
      const first = await readLog(auditing, { filter: { personId }, limit: 1 })
      await readLog(auditing, { filter: { personId }, limit: 1, cursor: first.nextCursor })
      await auditing.gql(`{ authLog(filter: { q: "ab" }) { hasMore } }`, { token: auditing.rootToken })
      const reads = await readLog(auditing, { filter: { types: ['auth_log_read'] } })
      // Newest first; the read just made is recorded only after it answered.
      expect(reads.entries.map((entry) => entry.eventData)).toEqual([
        { filter: { personId }, limit: 1, cursor: first.nextCursor },
        { filter: { personId }, limit: 1 },
      ])
      expect(reads.entries[0]).toMatchObject({ success: true, invokedByIdentityId: expect.any(String), clientIp: '127.0.0.1' })
    } finally {
      await auditing.stop()
    }
  })
})
