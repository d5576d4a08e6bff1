import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, readAuthLogPage } from '../../src/audit/query.js'
import type { Database } from '../../src/db/database.js'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { AUTH_LOG_QUERY, type StoredLogRow, seedLogEntries, readLog, storedLogRows } from '../testkit/fixtures.js'

let app: TestApp

const alice = { personId: randomUUID(), identityId: randomUUID() }
const bob = { personId: randomUUID(), identityId: randomUUID() }
const admin = { identityId: randomUUID() }
const at = (iso: string) => new Date(iso)
/** Three rows share this instant, so only `id DESC` orders them. */
const TIE = '2021-03-01T12:00:00.000Z'

beforeAll(async () => {
  app = await startTestApp()
  await seedLogEntries(app, [
    { type: 'login', success: false, createdAt: at('2021-01-01T00:00:00.000Z'), personInputIdentifier: 'alice@example.test', personId: alice.personId },
    { type: 'login', success: true, createdAt: at('2021-01-02T00:00:00.000Z'), personInputIdentifier: 'alice@example.test', personId: alice.personId, identityId: alice.identityId },
    { type: 'login', success: false, createdAt: at('2021-01-03T00:00:00.000Z'), personInputIdentifier: 'nobody@example.test' },
    { type: 'login', success: true, createdAt: at('2021-02-01T00:00:00.000Z'), personInputIdentifier: 'bob@example.test', personId: bob.personId, identityId: bob.identityId },
    { type: 'global_role_grant', createdAt: at(TIE), identityId: admin.identityId, targetPersonId: alice.personId },
    { type: 'global_role_revoke', createdAt: at(TIE), identityId: admin.identityId, targetPersonId: alice.personId },
    { type: 'global_role_grant', createdAt: at(TIE), identityId: admin.identityId, targetPersonId: bob.personId },
    { type: 'create_session_token', success: false, createdAt: at('2021-04-01T00:00:00.000Z'), identityId: admin.identityId, personInputIdentifier: 'bob@example.test' },
    { type: 'create_session_token', success: true, createdAt: at('2021-04-01T00:00:00.001Z'), identityId: admin.identityId, targetPersonId: bob.personId },
    { type: 'api_key_disable', createdAt: at('2021-05-01T00:00:00.000Z'), identityId: alice.identityId, personId: alice.personId, targetPersonId: bob.personId },
  ])
})

afterAll(() => app?.stop())

type Filter = {
  types?: string[]
  success?: boolean
  invokedByIdentityId?: string
  personId?: string
  targetPersonId?: string
  personInputIdentifier?: string
  createdAfter?: string
  createdBefore?: string
}

/** An independent reading of the filter contract, applied to every stored row. */
function matches(row: StoredLogRow, filter: Filter): boolean {
  const created = new Date(row.created_at).getTime()
  return (
    (filter.types === undefined || filter.types.includes(row.type)) &&
    (filter.success === undefined || row.success === filter.success) &&
    (filter.invokedByIdentityId === undefined || row.identity_id === filter.invokedByIdentityId) &&
    (filter.personId === undefined || row.person_id === filter.personId) &&
    (filter.targetPersonId === undefined || row.target_person_id === filter.targetPersonId) &&
    (filter.personInputIdentifier === undefined || row.person_input_identifier === filter.personInputIdentifier) &&
    (filter.createdAfter === undefined || created >= Date.parse(filter.createdAfter)) &&
    (filter.createdBefore === undefined || created < Date.parse(filter.createdBefore))
  )
}

async function expectedIds(filter: Filter): Promise<string[]> {
  return (await storedLogRows(app)).filter((row) => matches(row, filter)).map((row) => row.id)
}

async function servedIds(filter: Filter): Promise<string[]> {
  return (await readLog(app, { filter, limit: MAX_PAGE_SIZE })).entries.map((entry) => entry.id)
}

describe('authLog filters', () => {
  const single: Record<string, Filter> = {
    'types (one)': { types: ['login'] },
    'types (OR of two)': { types: ['global_role_grant', 'global_role_revoke'] },
    'types (empty list matches nothing)': { types: [] },
    'success true': { success: true },
    'success false': { success: false },
    invokedByIdentityId: { invokedByIdentityId: admin.identityId },
    personId: { personId: alice.personId },
    targetPersonId: { targetPersonId: bob.personId },
    personInputIdentifier: { personInputIdentifier: 'alice@example.test' },
    createdAfter: { createdAfter: '2021-02-01T00:00:00.000Z' },
    createdBefore: { createdBefore: '2021-02-01T00:00:00.000Z' },
  }
  for (const [name, filter] of Object.entries(single)) {
    it(`filters by ${name} alone`, async () => {
      const expected = await expectedIds(filter)
      expect(await servedIds(filter)).toEqual(expected)
      // The filter discriminates: it neither keeps nor drops everything (bar the empty list).
      if (filter.types?.length !== 0) expect(expected.length).toBeGreaterThan(0)
      expect(expected.length).toBeLessThan((await storedLogRows(app)).length)
    })
  }

  const combined: Record<string, Filter> = {
    'types + success': { types: ['login'], success: false },
    'personInputIdentifier + success': { personInputIdentifier: 'alice@example.test', success: true },
    'invokedByIdentityId + targetPersonId': { invokedByIdentityId: admin.identityId, targetPersonId: alice.personId },
    'a date window': { createdAfter: '2021-01-02T00:00:00.000Z', createdBefore: TIE },
    'types + window + target': { types: ['global_role_grant', 'create_session_token'], targetPersonId: bob.personId, createdAfter: TIE },
    'personId + invokedByIdentityId + types': { personId: alice.personId, invokedByIdentityId: alice.identityId, types: ['api_key_disable'] },
    'every field at once': {
      types: ['login', 'api_key_disable'],
      success: true,
      invokedByIdentityId: bob.identityId,
      personId: bob.personId,
      personInputIdentifier: 'bob@example.test',
      createdAfter: '2021-02-01T00:00:00.000Z',
      createdBefore: '2021-02-01T00:00:00.001Z',
    },
    'fields that exclude each other': { personId: alice.personId, personInputIdentifier: 'bob@example.test' },
  }
  for (const [name, filter] of Object.entries(combined)) {
    it(`AND-combines ${name}`, async () => {
      expect(await servedIds(filter)).toEqual(await expectedIds(filter))
    })
  }

  it('gives the exact rows, not just the right count', async () => {
    const { entries } = await readLog(app, { filter: { personInputIdentifier: 'alice@example.test' } })
    expect(entries.map((entry) => [entry.createdAt, entry.success, entry.personId])).toEqual([
      ['2021-01-02T00:00:00.000Z', true, alice.personId],
      ['2021-01-01T00:00:00.000Z', false, alice.personId],
    ])
    const [every] = (await readLog(app, { filter: combined['every field at once'] })).entries
    expect(every).toMatchObject({ type: 'login', personId: bob.personId, invokedByIdentityId: bob.identityId })
  })

  it('treats createdAfter as inclusive and createdBefore as exclusive', async () => {
    const atTie = (await readLog(app, { filter: { createdAfter: TIE, createdBefore: TIE } })).entries
    expect(atTie).toEqual([])
    const from = (await readLog(app, { filter: { createdAfter: TIE, createdBefore: '2021-03-01T12:00:00.001Z' } })).entries
    expect(from.map((entry) => entry.createdAt)).toEqual([TIE, TIE, TIE])
    // The same instant written with another offset is the same bound.
    const offset = (await readLog(app, { filter: { createdAfter: '2021-03-01T13:00:00.000+01:00', createdBefore: '2021-03-01T13:00:00.001+01:00' } })).entries
    expect(offset.map((entry) => entry.id)).toEqual(from.map((entry) => entry.id))
    const before = (await readLog(app, { filter: { createdBefore: '2021-04-01T00:00:00.001Z', createdAfter: '2021-04-01T00:00:00.000Z' } })).entries
    expect(before.map((entry) => entry.success)).toEqual([false])
  })

  it('accepts the filter as literals in the query text too', async () => {
    const literal = await app.gql(
      `{ authLog(filter: { types: ["global_role_grant"], targetPersonId: "${alice.personId}", createdAfter: "${TIE}" }) { entries { id } } }`,
      { token: app.rootToken },
    )
    expect(literal.data.authLog.entries.map((entry: { id: string }) => entry.id)).toEqual(
      await expectedIds({ types: ['global_role_grant'], targetPersonId: alice.personId, createdAfter: TIE }),
    )
  })
})

describe('authLog order and paging', () => {
  it('orders by created_at DESC, then id DESC', async () => {
    const { entries } = await readLog(app, { limit: MAX_PAGE_SIZE })
    const stored = await storedLogRows(app)
    expect(entries.map((entry) => entry.id)).toEqual(stored.map((row) => row.id))
    const tied = entries.filter((entry) => entry.createdAt === TIE).map((entry) => entry.id)
    expect(tied).toHaveLength(3)
    expect(tied).toEqual([...tied].sort().reverse())
  })

  it('pages with offset and limit, hasMore telling whether rows remain', async () => {
    const all = (await storedLogRows(app)).map((row) => row.id)
    const first = await readLog(app, { limit: 4 })
    const second = await readLog(app, { limit: 4, offset: 4 })
    const last = await readLog(app, { limit: 4, offset: all.length - 4 })
    const beyond = await readLog(app, { limit: 4, offset: all.length })
    expect(first).toEqual({ hasMore: true, nextCursor: expect.any(String), entries: expect.any(Array) })
    expect(first.entries.map((entry) => entry.id)).toEqual(all.slice(0, 4))
    expect(second.entries.map((entry) => entry.id)).toEqual(all.slice(4, 8))
    expect(last.entries.map((entry) => entry.id)).toEqual(all.slice(-4))
    expect(last.hasMore).toBe(false)
    expect(beyond).toEqual({ hasMore: false, nextCursor: null, entries: [] })
  })

  describe('with more rows than a page holds', () => {
    const bulkType = 'passwordless_login_init'
    const bulkRows = MAX_PAGE_SIZE + 10

    beforeAll(async () => {
      await seedLogEntries(
        app,
        Array.from({ length: bulkRows }, (_, n) => ({ type: bulkType, createdAt: new Date(Date.UTC(2020, 0, 1) + (n + 1) * 1000) })),
      )
    })

    it('serves 100 entries by default', async () => {
      const page = await readLog(app, { filter: { types: [bulkType] } })
      expect(page.entries).toHaveLength(DEFAULT_PAGE_SIZE)
      expect(DEFAULT_PAGE_SIZE).toBe(100)
      expect(page.hasMore).toBe(true)
    })

    it('caps the page at 500 whatever limit asks', async () => {
      const page = await readLog(app, { filter: { types: [bulkType] }, limit: 100_000 })
      expect(page.entries).toHaveLength(500)
      expect(MAX_PAGE_SIZE).toBe(500)
      expect(page.hasMore).toBe(true)
      const rest = await readLog(app, { filter: { types: [bulkType] }, limit: 100_000, offset: 500 })
      expect(rest).toEqual({ hasMore: false, nextCursor: null, entries: expect.any(Array) })
      expect(rest.entries).toHaveLength(bulkRows - 500)
    })

    it('knows hasMore from one extra row, never from a COUNT', async () => {
      const statements: string[] = []
      const real = app.app.services.db
      // Records every statement the page read sends, and runs it on the real database.
      const recording: Database = {
        ...real,
        session: (work) =>
          real.session((session) =>
            work({
              ...session,
              query: (text, values) => {
                statements.push(`${text} -- ${JSON.stringify(values)}`)
                return session.query(text, values)
              },
            }),
          ),
      }
      const page = await readAuthLogPage(recording, { filter: { types: [bulkType] }, limit: 7, offset: 3 }, { cursors: app.app.services.cursors })
      expect(page.entries).toHaveLength(7)
      expect(page.hasMore).toBe(true)
      expect(statements).toHaveLength(1)
      expect(statements[0]).not.toMatch(/count\s*\(/i)
      // One row more than the page, after skipping the offset.
      expect(statements[0]).toMatch(/LIMIT/i)
      expect(statements[0]).toContain('[')
      expect(JSON.parse(statements[0]!.split(' -- ')[1]!)).toEqual(expect.arrayContaining([8, 3]))
    })
  })
})

describe('authLog input validation', () => {
  const cases: Array<{ name: string; query?: string; variables?: Record<string, unknown>; code: string; argument?: string }> = [
    { name: 'an unknown event type', variables: { filter: { types: ['login', 'teleport'] } }, code: 'BAD_USER_INPUT', argument: 'filter.types' },
    { name: 'a malformed invokedByIdentityId', variables: { filter: { invokedByIdentityId: 'abc' } }, code: 'BAD_USER_INPUT', argument: 'filter.invokedByIdentityId' },
    { name: 'a malformed personId', variables: { filter: { personId: "1' OR '1'='1" } }, code: 'BAD_USER_INPUT', argument: 'filter.personId' },
    { name: 'a malformed targetPersonId', variables: { filter: { targetPersonId: '00000000-0000-0000-0000-00000000000g' } }, code: 'BAD_USER_INPUT', argument: 'filter.targetPersonId' },
    { name: 'a malformed date in variables', variables: { filter: { createdAfter: 'yesterday' } }, code: 'BAD_USER_INPUT' },
    { name: 'an impossible date in variables', variables: { filter: { createdBefore: '2021-02-30T00:00:00Z' } }, code: 'BAD_USER_INPUT' },
    { name: 'a malformed date as a literal', query: '{ authLog(filter: { createdAfter: "last tuesday" }) { hasMore } }', code: 'GRAPHQL_VALIDATION_FAILED' },
    { name: 'a negative offset', variables: { offset: -1 }, code: 'BAD_USER_INPUT', argument: 'offset' },
    { name: 'a limit of 0', variables: { limit: 0 }, code: 'BAD_USER_INPUT', argument: 'limit' },
    { name: 'a negative limit', variables: { limit: -5 }, code: 'BAD_USER_INPUT', argument: 'limit' },
    { name: 'a negative limit as a literal', query: '{ authLog(limit: -1) { hasMore } }', code: 'BAD_USER_INPUT', argument: 'limit' },
    { name: 'a limit beyond Int', query: '{ authLog(limit: 99999999999) { hasMore } }', code: 'GRAPHQL_VALIDATION_FAILED' },
    { name: 'an IPv6 address with a zone id', variables: { filter: { clientIp: 'fe80::1%eth0' } }, code: 'BAD_USER_INPUT', argument: 'filter.clientIp' },
    { name: 'a CIDR block with a zone id', variables: { filter: { clientIp: 'fe80::%1/64' } }, code: 'BAD_USER_INPUT', argument: 'filter.clientIp' },
    { name: 'a success that is not a boolean', variables: { filter: { success: 'yes' } }, code: 'BAD_USER_INPUT' },
  ]
  for (const { name, query, variables, code, argument } of cases) {
    it(`refuses ${name} with ${code} and no data`, async () => {
      const response = await app.gql(query ?? AUTH_LOG_QUERY, { variables, token: app.rootToken })
      expect(response.data?.authLog ?? null).toBeNull()
      expect(response.errors).toHaveLength(1)
      const [error] = response.errors!
      expect(error!.extensions?.code).toBe(code)
      if (argument) expect(error!.extensions?.argument).toBe(argument)
      // A validation error, never the database's words.
      expect(error!.message).not.toMatch(/prisma|invalid input syntax|sql|postgres|Unexpected error/i)
    })
  }
})
