import { createHash, randomUUID } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Database, SqlSession } from './database.js'

export type MigrationErrorCode = 'CHECKSUM_MISMATCH' | 'MIGRATION_FAILED' | 'MISSING_MIGRATION_FILE'

export class MigrationError extends Error {
  override readonly name = 'MigrationError'

  constructor(
    readonly code: MigrationErrorCode,
    readonly migrationName: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

export interface MigrateOptions {
  /** Folder holding `<timestamp>_<name>/migration.sql`; defaults to the project's `prisma/migrations`. */
  migrationsDir?: string
  log?: (msg: string, fields?: object) => void
}

const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../prisma/migrations', import.meta.url))

// The key `prisma migrate deploy` locks too, so this migrator and Prisma's never run at the same time.
const MIGRATION_LOCK_KEY = 72707369

// Same shape as the table Prisma's migrate creates, so either tool can read the other's history.
const CREATE_MIGRATIONS_TABLE = `
  CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                  VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"            VARCHAR(64) NOT NULL,
    "finished_at"         TIMESTAMPTZ,
    "migration_name"      VARCHAR(255) NOT NULL,
    "logs"                TEXT,
    "rolled_back_at"      TIMESTAMPTZ,
    "started_at"          TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0
  )`

interface MigrationFile {
  name: string
  script: string
  checksum: string
}

// PGlite hands every session the same connection, where a session-level advisory lock does not
// exclude a second caller; queueing per handle keeps concurrent calls in one process apart.
const runningMigrations = new WeakMap<Database, Promise<unknown>>()

/** Applies the migrations not yet recorded in `_prisma_migrations`, in name order, each once. */
export async function migrate(db: Database, options: MigrateOptions = {}): Promise<{ applied: string[] }> {
  const previous = runningMigrations.get(db) ?? Promise.resolve()
  const run = previous
    .catch(() => {})
    .then(async () => {
      const migrations = await readMigrations(options.migrationsDir ?? DEFAULT_MIGRATIONS_DIR)
      return db.session((session) => migrateLocked(session, migrations, options.log))
    })
  runningMigrations.set(db, run)
  return run
}

async function migrateLocked(
  session: SqlSession,
  migrations: MigrationFile[],
  log: MigrateOptions['log'],
): Promise<{ applied: string[] }> {
  // Waits while another server migrates; afterwards it finds that work recorded.
  await session.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY])
  try {
    // Checked first: a least-privilege role (custos_app) may read the history but not create tables.
    const [history] = await session.query<{ exists: boolean }>(`SELECT to_regclass('"_prisma_migrations"') IS NOT NULL AS exists`)
    if (!history?.exists) await session.exec(CREATE_MIGRATIONS_TABLE)
    const appliedChecksums = await readAppliedChecksums(session)
    verifyHistory(migrations, appliedChecksums)

    const applied: string[] = []
    for (const migration of migrations) {
      if (appliedChecksums.has(migration.name)) continue
      log?.('Applying migration', { migration: migration.name })
      const startedAt = Date.now()
      await applyMigration(session, migration)
      log?.('Applied migration', { migration: migration.name, durationMs: Date.now() - startedAt })
      applied.push(migration.name)
    }
    return { applied }
  } finally {
    // A failing unlock means a broken connection, whose lock the server drops anyway; keep the first error.
    await session.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => {})
  }
}

async function readMigrations(migrationsDir: string): Promise<MigrationFile[]> {
  const entries = await readdir(migrationsDir, { withFileTypes: true })
  // Plain code-unit order, independent of locale: timestamps prefix the names.
  const names = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
  return Promise.all(
    names.map(async (name) => {
      const path = join(migrationsDir, name, 'migration.sql')
      const content = await readFile(path).catch((error: unknown) => {
        throw new MigrationError('MISSING_MIGRATION_FILE', name, `Migration ${name} has no migration.sql (${path})`, {
          cause: error,
        })
      })
      // Hashing the bytes as stored, as Prisma does, keeps the checksums interchangeable.
      return { name, script: content.toString('utf8'), checksum: createHash('sha256').update(content).digest('hex') }
    }),
  )
}

/** Checksums of the migrations that completed and were not rolled back, by name. */
async function readAppliedChecksums(session: SqlSession): Promise<Map<string, string>> {
  const rows = await session.query<{ migration_name: string; checksum: string }>(
    `SELECT migration_name, checksum FROM "_prisma_migrations"
      WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL
      ORDER BY started_at`,
  )
  return new Map(rows.map((row) => [row.migration_name, row.checksum]))
}

/** Refuses to build on a history that no longer matches the files: that database is not what they describe. */
function verifyHistory(migrations: MigrationFile[], appliedChecksums: Map<string, string>): void {
  const filesByName = new Map(migrations.map((migration) => [migration.name, migration]))
  for (const [name, appliedChecksum] of appliedChecksums) {
    const file = filesByName.get(name)
    if (!file) {
      throw new MigrationError(
        'MISSING_MIGRATION_FILE',
        name,
        `Migration ${name} is recorded as applied, but its folder is missing from the migrations directory`,
      )
    }
    if (file.checksum !== appliedChecksum) {
      throw new MigrationError(
        'CHECKSUM_MISMATCH',
        name,
        `Migration ${name} was changed after it was applied ` +
          `(recorded checksum ${appliedChecksum}, file checksum ${file.checksum}); ` +
          'restore the original file and put the change in a new migration',
      )
    }
  }
}

/** Runs the script and records it in one transaction, so a failure leaves neither behind. */
async function applyMigration(session: SqlSession, migration: MigrationFile): Promise<void> {
  await session.exec('BEGIN')
  try {
    await session.exec(migration.script)
    await session.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
       VALUES ($1, $2, $3, now(), clock_timestamp(), 1)`,
      [randomUUID(), migration.checksum, migration.name],
    )
    await session.exec('COMMIT')
  } catch (error) {
    // The migration's error is the one worth reporting; a failed ROLLBACK means the connection is gone anyway.
    await session.exec('ROLLBACK').catch(() => {})
    throw new MigrationError(
      'MIGRATION_FAILED',
      migration.name,
      `Migration ${migration.name} failed: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    )
  }
}
