import { mkdir, open, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * The embedded database admits one process: two PGlite instances on one data directory corrupt
 * it. Whoever opens it (the server, `custos` on the command line) first takes this lock file,
 * holding its process id; a lock whose process is gone is stale and taken over.
 */

export const LOCK_FILE = 'custos.pid'

export class DataDirLockedError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holderPid: number,
  ) {
    super(
      `The embedded database in ${dataDir} is in use by process ${holderPid}. ` +
        'Stop it first, or, if it is a running Custos server, reach it with --url and --token. ' +
        `(If no such process exists, delete ${join(dataDir, LOCK_FILE)}.)`,
    )
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Takes the data directory's lock; resolves with its release. */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  await mkdir(dataDir, { recursive: true })
  const path = join(dataDir, LOCK_FILE)
  for (;;) {
    try {
      const handle = await open(path, 'wx', 0o600)
      await handle.writeFile(`${process.pid}\n`)
      await handle.close()
      return () => rm(path, { force: true })
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const holder = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10)
    if (Number.isInteger(holder) && holder > 0 && isRunning(holder)) throw new DataDirLockedError(dataDir, holder)
    // Left by a process that ended without releasing it (a crash, a kill -9).
    await rm(path, { force: true })
  }
}
