import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import type { TestProject } from 'vitest/node'
import { openDatabase } from '../../src/db/database.js'
import { migrate } from '../../src/db/migrator.js'

declare module 'vitest' {
  export interface ProvidedContext {
    /** Dumps of an embedded database, empty and with every migration applied ('' on PostgreSQL runs). */
    pgliteSnapshots: { readonly empty: string; readonly migrated: string }
  }
}

/**
 * Once per run, on PGlite: dumps the data directory of a new embedded
 * database, then of the same database migrated by the project's migrator.
 * Creating a PGlite cluster (initdb in WASM) costs seconds of CPU; each test
 * database starts from a copy of one of these dumps instead, and an app's
 * start still runs the migrator (which finds every migration applied and
 * checks their checksums).
 */
export default async function setup(project: TestProject) {
  if (process.env.TEST_DATABASE_URL) {
    project.provide('pgliteSnapshots', { empty: '', migrated: '' })
    return
  }
  const dir = await mkdtemp(join(tmpdir(), 'custos-snapshots-'))
  const dataDir = join(dir, 'db')
  // Private, as openDatabase would make it (it says so when it has to).
  await mkdir(dataDir, { mode: 0o700 })
  const dump = async (name: string) => {
    const pglite = await PGlite.create(dataDir)
    const path = join(dir, `${name}.tar`)
    await writeFile(path, Buffer.from(await (await pglite.dumpDataDir('none')).arrayBuffer()))
    await pglite.close()
    return path
  }
  const empty = await dump('empty')
  const db = await openDatabase({ dataDir })
  try {
    await migrate(db)
  } finally {
    await db.close()
  }
  project.provide('pgliteSnapshots', { empty, migrated: await dump('migrated') })
  return () => rm(dir, { recursive: true, force: true })
}
