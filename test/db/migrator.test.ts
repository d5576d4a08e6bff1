import { createHash } from 'node:crypto'
import { appendFile, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Database, openDatabase } from '../../src/db/database.js'
import { MigrationError, migrate } from '../../src/db/migrator.js'
import { createTestDatabase, onPostgres, type TestDatabase } from '../testkit/database.js'

const projectMigrationsDir = fileURLToPath(new URL('../../prisma/migrations', import.meta.url))
const projectMigrationNames = (await readdir(projectMigrationsDir, { withFileTypes: true }))
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort()
const firstMigrationName = projectMigrationNames[0]!

// Sorts after every real migration, so it is always the one still pending.
const LATER_MIGRATION = '29991231000000_later'

let testDatabase: TestDatabase
let db: Database
let scratchDirs: string[] = []

beforeEach(async () => {
  testDatabase = await createTestDatabase()
  db = await openDatabase(testDatabase.target)
})

afterEach(async () => {
  await db.close()
  await testDatabase.drop()
  await Promise.all(scratchDirs.map((dir) => rm(dir, { recursive: true, force: true })))
  scratchDirs = []
})

/** A disposable copy of the project's migrations that a test may edit. */
async function copyOfProjectMigrations(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'custos-migrations-'))
  scratchDirs.push(dir)
  await cp(projectMigrationsDir, dir, { recursive: true })
  return dir
}

async function addMigration(migrationsDir: string, name: string, script: string): Promise<void> {
  await mkdir(join(migrationsDir, name))
  await writeFile(join(migrationsDir, name, 'migration.sql'), script)
}

// A type alias, not an interface: SqlSession.query wants rows assignable to Record<string, unknown>.
type MigrationRecord = {
  migration_name: string
  checksum: string
  finished_at: Date | null
  applied_steps_count: number
}

function migrationRecords(): Promise<MigrationRecord[]> {
  return db.session((session) =>
    session.query<MigrationRecord>(
      `SELECT migration_name, checksum, finished_at, applied_steps_count
         FROM "_prisma_migrations" ORDER BY migration_name`,
    ),
  )
}

async function tableExists(table: string): Promise<boolean> {
  const [row] = await db.session((session) =>
    session.query<{ exists: boolean }>('SELECT to_regclass($1) IS NOT NULL AS exists', [table]),
  )
  return row!.exists
}

describe('migrate', () => {
  it('applies every migration to an empty database and records it the way Prisma does', async () => {
    const logged: Array<{ msg: string; fields?: object }> = []
    const { applied } = await migrate(db, { log: (msg, fields) => logged.push({ msg, fields }) })

    expect(applied).toEqual(projectMigrationNames)
    expect(logged).toContainEqual({
      msg: 'Applied migration',
      fields: expect.objectContaining({ migration: firstMigrationName }),
    })
    const records = await migrationRecords()
    expect(records.map((record) => record.migration_name)).toEqual(projectMigrationNames)
    for (const record of records) {
      const script = await readFile(join(projectMigrationsDir, record.migration_name, 'migration.sql'))
      expect(record.checksum).toBe(createHash('sha256').update(script).digest('hex'))
      expect(record.finished_at).toBeInstanceOf(Date)
      expect(record.applied_steps_count).toBe(1)
    }
    expect(await tableExists('person_auth_log')).toBe(true)
  })

  it('applies nothing the second time', async () => {
    await migrate(db)

    expect(await migrate(db)).toEqual({ applied: [] })
    expect(await migrationRecords()).toHaveLength(projectMigrationNames.length)
  })

  it('applies only the migrations added since the last run', async () => {
    const migrationsDir = await copyOfProjectMigrations()
    await migrate(db, { migrationsDir })
    await addMigration(migrationsDir, LATER_MIGRATION, 'CREATE TABLE later_table (id integer);')

    expect(await migrate(db, { migrationsDir })).toEqual({ applied: [LATER_MIGRATION] })
    expect(await tableExists('later_table')).toBe(true)
  })

  it.runIf(onPostgres)('lets two servers start together: one applies, the other waits and finds it done', async () => {
    const secondServer = await openDatabase(testDatabase.target)
    try {
      const results = await Promise.all([migrate(db), migrate(secondServer)])

      expect(results.flatMap((result) => result.applied).sort()).toEqual(projectMigrationNames)
      expect((await migrationRecords()).map((record) => record.migration_name)).toEqual(projectMigrationNames)
    } finally {
      await secondServer.close()
    }
  })

  it('serializes concurrent calls on one handle (PGlite has a single connection)', async () => {
    const results = await Promise.all([migrate(db), migrate(db)])

    expect(results.map((result) => result.applied)).toEqual([projectMigrationNames, []])
    expect(await migrationRecords()).toHaveLength(projectMigrationNames.length)
  })

  it('refuses an applied migration whose file changed, before applying anything new', async () => {
    const migrationsDir = await copyOfProjectMigrations()
    await migrate(db, { migrationsDir })
    await appendFile(join(migrationsDir, firstMigrationName, 'migration.sql'), '\n-- edited after it was applied\n')
    await addMigration(migrationsDir, LATER_MIGRATION, 'CREATE TABLE later_table (id integer);')

    const failure = migrate(db, { migrationsDir })

    await expect(failure).rejects.toBeInstanceOf(MigrationError)
    await expect(failure).rejects.toMatchObject({
      code: 'CHECKSUM_MISMATCH',
      migrationName: firstMigrationName,
      message: expect.stringContaining(`Migration ${firstMigrationName} was changed after it was applied`),
    })
    expect(await tableExists('later_table')).toBe(false)
    expect((await migrationRecords()).map((record) => record.migration_name)).toEqual(projectMigrationNames)
  })

  it('refuses a history that names a migration whose folder is gone', async () => {
    const migrationsDir = await copyOfProjectMigrations()
    await addMigration(migrationsDir, LATER_MIGRATION, 'CREATE TABLE later_table (id integer);')
    await migrate(db, { migrationsDir })
    await rm(join(migrationsDir, LATER_MIGRATION), { recursive: true })

    await expect(migrate(db, { migrationsDir })).rejects.toMatchObject({
      code: 'MISSING_MIGRATION_FILE',
      message: expect.stringContaining(LATER_MIGRATION),
    })
  })

  it('leaves no trace of a failing migration and reports its name and the database error', async () => {
    const migrationsDir = await copyOfProjectMigrations()
    await addMigration(
      migrationsDir,
      LATER_MIGRATION,
      'CREATE TABLE half_done (id integer);\nSELECT * FROM no_such_table;',
    )

    await expect(migrate(db, { migrationsDir })).rejects.toMatchObject({
      code: 'MIGRATION_FAILED',
      migrationName: LATER_MIGRATION,
      message: expect.stringMatching(new RegExp(`${LATER_MIGRATION}.*no_such_table`)),
    })
    expect(await tableExists('half_done')).toBe(false)
    // The migrations before it committed on their own.
    expect((await migrationRecords()).map((record) => record.migration_name)).toEqual(projectMigrationNames)
    expect(await tableExists('person_auth_log')).toBe(true)
  })
})
