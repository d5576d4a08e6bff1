import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { type Database, openDatabase } from '../../src/db/database.js'
import { migrate } from '../../src/db/migrator.js'
import { createTestDatabase } from './database.js'

/** The command line as an operator runs it: `custos …` in a process of its own. */

const BIN = fileURLToPath(new URL('../../bin/custos.js', import.meta.url))

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/**
 * Runs `custos ARGS` with only PATH and `environment`: nothing of this process picks its database or
 * server. `as` runs it as another user (this process must be root).
 */
export function custos(args: string[], environment: Record<string, string> = {}, as?: { uid: number; gid: number }): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, LOG_LEVEL: 'silent', ...environment }, ...as }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    )
  })
}

/** A migrated test database that the command line opens too. */
export interface CliDatabase {
  /** What points the command line at it: DATABASE_URL, or CUSTOS_DATA_DIR. */
  readonly environment: Record<string, string>
  /** Opens it for `work` only: the embedded database admits one process at a time. */
  withDatabase<T>(work: (db: Database) => Promise<T>): Promise<T>
  drop(): Promise<void>
}

/** PostgreSQL, or an embedded database in `dataDir` (PGlite is reachable from another process only through its files). */
export async function cliDatabase(dataDir: string): Promise<CliDatabase> {
  const testDatabase = await createTestDatabase()
  const target = testDatabase.url ? testDatabase.target : { dataDir }
  const withDatabase = async <T>(work: (db: Database) => Promise<T>): Promise<T> => {
    const db = await openDatabase(target)
    try {
      return await work(db)
    } finally {
      await db.close()
    }
  }
  await withDatabase((db) => migrate(db))
  return {
    environment: testDatabase.url ? { DATABASE_URL: testDatabase.url } : { CUSTOS_DATA_DIR: dataDir },
    withDatabase,
    drop: () => testDatabase.drop(),
  }
}
