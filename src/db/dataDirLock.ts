import { randomUUID } from 'node:crypto'
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

/**
 * The embedded database admits one process: two PGlite instances on one data directory corrupt
 * it. Whoever opens it (the server, `custos` on the command line) first takes this lock file,
 * holding its process id; a lock whose process is gone is stale and taken over.
 */

export const LOCK_FILE = 'custos.pid'

/**
 * Held while a stale lock is removed, so that of several processes taking it over at once none
 * removes the lock another has just taken in its place.
 */
const TAKEOVER_FILE = 'custos.pid.takeover'

export class DataDirLockedError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holderPid: number,
    lockFile = LOCK_FILE,
  ) {
    super(
      `The embedded database in ${dataDir} is in use by process ${holderPid}. ` +
        'Stop it first, or, if it is a running Custos server, reach it with --url and --token. ' +
        `(If no such process exists, delete ${join(dataDir, lockFile)}.)`,
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

/**
 * Creates `path` holding this process's id, unless it exists. Written aside and linked into
 * place, so the file never exists without its id: a reader never takes a lock being created for stale.
 */
async function createHoldingPid(path: string): Promise<boolean> {
  const aside = `${path}.${process.pid}.${randomUUID()}`
  await writeFile(aside, `${process.pid}\n`, { mode: 0o600 })
  try {
    await link(aside, path)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    return false
  } finally {
    await rm(aside, { force: true })
  }
}

/** The process id a lock file holds; undefined when it is gone or holds none. */
async function holderOf(path: string): Promise<number | undefined> {
  const holder = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10)
  return Number.isInteger(holder) && holder > 0 ? holder : undefined
}

/** Takes the data directory's lock; resolves with its release. */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  await mkdir(dataDir, { recursive: true })
  const path = join(dataDir, LOCK_FILE)
  const takeover = join(dataDir, TAKEOVER_FILE)
  for (;;) {
    if (await createHoldingPid(path)) return () => rm(path, { force: true })
    const holder = await holderOf(path)
    if (holder !== undefined && isRunning(holder)) throw new DataDirLockedError(dataDir, holder)
    // Left by a process that ended without releasing it (a crash, a kill -9).
    if (!(await createHoldingPid(takeover))) {
      const taker = await holderOf(takeover)
      // A taker that died in the middle leaves a lock no one can safely remove but a person.
      if (taker !== undefined && !isRunning(taker)) throw new DataDirLockedError(dataDir, taker, TAKEOVER_FILE)
      await sleep(5)
      continue
    }
    try {
      // Removed only if still the stale one: another taker may have replaced it since it was read.
      if ((await holderOf(path)) === holder) await rm(path, { force: true })
    } finally {
      await rm(takeover, { force: true })
    }
  }
}
