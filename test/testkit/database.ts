import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { type Database, type DatabaseTarget, openDatabase } from '../../src/db/database.js'
import { migrate } from '../../src/db/migrator.js'

/**
 * A database of its own for one test suite: an in-memory PGlite by default,
 * or a fresh database on the server named by TEST_DATABASE_URL.
 */
export interface TestDatabase {
  readonly target: DatabaseTarget
  /** Set only on PostgreSQL: the fresh database's URL. */
  readonly url: string | undefined
  drop(): Promise<void>
}

export const serverUrl = process.env.TEST_DATABASE_URL || undefined
export const onPostgres = serverUrl !== undefined

export async function createTestDatabase(): Promise<TestDatabase> {
  if (!serverUrl) return { target: { dataDir: undefined }, url: undefined, drop: async () => {} }
  const name = `custos_test_${randomBytes(6).toString('hex')}`
  await adminQuery(`CREATE DATABASE "${name}"`)
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return {
    target: { url: url.toString() },
    url: url.toString(),
    drop: () => adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
  }
}

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

export interface MigratedTestDatabase extends TestDatabase {
  /** A handle on it, every migration applied (as the owner). */
  readonly db: Database
  /** Closes the handle and drops the database. */
  close(): Promise<void>
}

/** A fresh database with the project's migrations applied, for tests below the HTTP API. */
export async function migratedTestDatabase(): Promise<MigratedTestDatabase> {
  const database = await createTestDatabase()
  const db = await openDatabase(database.target)
  await migrate(db)
  return {
    ...database,
    db,
    async close() {
      await db.close()
      await database.drop()
    },
  }
}
