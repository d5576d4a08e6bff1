import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, expect, it } from 'vitest'
import { DataDirLockedError, LOCK_FILE, lockDataDir } from '../../src/db/dataDirLock.js'

const dirs: string[] = []
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
})

async function scratchDir() {
  const dir = await mkdtemp(join(tmpdir(), 'custos-lock-'))
  dirs.push(dir)
  return dir
}

/** How many of `contenders` taking the lock at once got it; the others must be refused. */
async function winners(dir: string, contenders: number) {
  const outcomes = await Promise.allSettled(Array.from({ length: contenders }, () => lockDataDir(dir)))
  for (const outcome of outcomes) if (outcome.status === 'rejected') expect(outcome.reason).toBeInstanceOf(DataDirLockedError)
  return outcomes.filter((outcome) => outcome.status === 'fulfilled').length
}

// Each taker read the stale id, then removed the lock file: also the one another taker had just created.
it('admits exactly one of several takers of a stale lock', async () => {
  for (let round = 0; round < 50; round++) {
    const dir = await scratchDir()
    // A process id that cannot be running: above the kernel's maximum.
    await writeFile(join(dir, LOCK_FILE), '2147483647\n')
    expect(await winners(dir, 4)).toBe(1)
  }
})
