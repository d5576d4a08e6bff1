import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import pg from 'pg'
import { afterAll, beforeAll, inject } from 'vitest'
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

const snapshots = new Map<string, Promise<Blob>>()
const snapshot = (path: string) => {
  if (!snapshots.has(path)) snapshots.set(path, readFile(path).then((bytes) => new Blob([bytes])))
  return snapshots.get(path)!
}

/**
 * A new empty database, or with `migrated` one with every migration applied.
 * On PGlite both start from a dump made once per run (test/testkit/globalSetup.ts),
 * which costs far less than a new cluster.
 */
export async function createTestDatabase(options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  if (!serverUrl) {
    const dumps = inject('pgliteSnapshots')
    const initialData = await snapshot(options.migrated ? dumps.migrated : dumps.empty)
    return { target: { dataDir: undefined, initialData }, url: undefined, drop: async () => {} }
  }
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

/**
 * A database that outlives each start of the app: an embedded PGlite data
 * directory (`dataDir`, created on first open), or on PostgreSQL a fresh database.
 */
export async function durableTestDatabase(dataDir: string): Promise<TestDatabase> {
  if (onPostgres) return createTestDatabase()
  return { target: { dataDir }, url: undefined, drop: async () => {} }
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

/**
 * A migrated database for the enclosing describe: made before its tests (handed to `opened`)
 * and dropped after them.
 */
export function withMigratedTestDatabase(opened: (db: Database) => void): void {
  let database: MigratedTestDatabase | undefined
  beforeAll(async () => {
    database = await migratedTestDatabase()
    opened(database.db)
  })
  afterAll(async () => {
    await database?.close()
  })
}
