import { expect } from 'vitest'
import type { TestApp } from './app.js'
import { type LogEntry, readLog, sql } from './fixtures.js'

/** Assertions about what a call left behind: log entries and rows. */

/** How many entries the log holds: a mark to read the entries written after it with `entriesSince`. */
export async function logSize(app: TestApp): Promise<number> {
  const [row] = await sql<{ count: number }>(app, 'SELECT count(*)::int AS count FROM person_auth_log')
  return row?.count ?? 0
}

/** The entries written since `mark` (from logSize), oldest first. */
export async function entriesSince(app: TestApp, mark: number): Promise<LogEntry[]> {
  const added = (await logSize(app)) - mark
  if (added === 0) return []
  return (await readLog(app, { limit: added })).entries.reverse()
}

/** Asserts that exactly one entry was written since `mark` and that it matches `expected`. */
export async function expectSingleEntry(app: TestApp, mark: number, expected: Partial<LogEntry>): Promise<LogEntry> {
  const entries = await entriesSince(app, mark)
  expect(entries).toHaveLength(1)
  expect(entries[0]).toMatchObject(expected)
  return entries[0]!
}

/**
 * A digest of every row of every table, to prove a call changed nothing. API keys'
 * sliding-session bookkeeping (last_used_at, expires_at) is left out: any
 * authenticated request may touch it.
 */
export async function databaseFingerprint(app: TestApp): Promise<string> {
  const tables = await sql<{ name: string }>(
    app,
    `SELECT table_name AS name FROM information_schema.tables
     WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> '_prisma_migrations' ORDER BY 1`,
  )
  // One statement for all tables: a denied call in the permission table is measured twice.
  const digests = tables.map(
    ({ name }) =>
      `SELECT '${name}' || ':' || md5(coalesce(string_agg(r, '|' ORDER BY r), '')) AS digest
       FROM (SELECT (to_jsonb(t) - 'last_used_at' - 'expires_at')::text AS r FROM "${name}" t) AS "${name}_rows"`,
  )
  const rows = await sql<{ digest: string }>(app, digests.join('\nUNION ALL\n'))
  return rows
    .map((row) => row.digest)
    .sort()
    .join('\n')
}

/** Runs `call` and asserts that it changed no row and recorded no entry. */
export async function expectNoEffect(app: TestApp, call: () => Promise<unknown>): Promise<void> {
  const before = await databaseFingerprint(app)
  const mark = await logSize(app)
  await call()
  expect(await logSize(app)).toBe(mark)
  expect(await databaseFingerprint(app)).toBe(before)
}
