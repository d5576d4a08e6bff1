import { chmod, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { openDatabase } from '../../src/db/database.js'
import { createLogger } from '../../src/logger.js'
import { custos } from '../testkit/cli.js'

/**
 * The embedded database's directory (CUSTOS_DATA_DIR) is its owner's alone: PGlite writes its
 * files for everyone (0666), so the directory is what keeps other local users out of them.
 * On PostgreSQL runs too: the data directory is the embedded default's either way.
 */
let scratch: string
let umask: number

beforeAll(async () => {
  // The usual umask, under which the directory used to be created 0755.
  umask = process.umask(0o022)
  scratch = await mkdtemp(join(tmpdir(), 'custos-private-'))
})

afterAll(async () => {
  process.umask(umask)
  await rm(scratch, { recursive: true, force: true })
})

const modeOf = async (path: string) => (await stat(path)).mode & 0o777

it('creates the data directory, and any missing parent, for its owner only', async () => {
  const dataDir = join(scratch, 'parent', 'data')
  const warnings: string[] = []
  const db = await openDatabase({ dataDir }, { warn: (message) => warnings.push(message) })
  await db.close()
  expect(await modeOf(dataDir)).toBe(0o700)
  expect(await modeOf(join(scratch, 'parent'))).toBe(0o700)
  // PGlite keeps its files in the directory itself, not below a subdirectory of it.
  expect(await readdir(dataDir)).toContain('PG_VERSION')
  expect(warnings).toEqual([])
})

it('the server closes an existing data directory open to others, says so, and keeps its key files 0600', async () => {
  const dataDir = join(scratch, 'existing')
  await mkdir(dataDir)
  await chmod(dataDir, 0o755)
  const logged: string[] = []
  const log = new Writable({
    write(chunk, _encoding, done) {
      logged.push(String(chunk))
      done()
    },
  })
  const config = loadConfig({ PORT: '0', CUSTOS_DATA_DIR: dataDir })
  const app = await startApp(config, createLogger('info', log), undefined, new Writable({ write: (_chunk, _encoding, done) => done() }))
  await app.stop()
  expect(await modeOf(dataDir)).toBe(0o700)
  const warnings = logged.map((line) => JSON.parse(line)).filter((line) => line.level === 40)
  expect(warnings.map((line) => line.msg)).toEqual([`The data directory ${dataDir} was open to other users (mode 0755): closed it (mode 0700).`])
  for (const keyFile of ['encryption.key', 'audit-signing-key.pem', 'cursor.key']) expect(await modeOf(join(dataDir, keyFile)), keyFile).toBe(0o600)
})

it('refuses a shared directory such as /tmp (sticky bit) instead of closing it to everyone else', async () => {
  const shared = join(scratch, 'shared')
  await mkdir(shared)
  await chmod(shared, 0o1777)
  await expect(openDatabase({ dataDir: shared })).rejects.toThrow(/CUSTOS_DATA_DIR: .* is shared by all users/)
  expect((await stat(shared)).mode & 0o7777).toBe(0o1777)
})

// Root may close any directory, so the refusal needs another user: nobody, on a directory root owns.
it.runIf(process.getuid?.() === 0)('refuses a directory open to others that it cannot close (another owner), and leaves it as it was', async () => {
  const open = join(scratch, 'rootowned')
  await mkdir(open)
  // nobody must reach it: through the scratch directory too.
  await chmod(scratch, 0o755)
  await chmod(open, 0o755)
  const result = await custos(['migrate'], { CUSTOS_DATA_DIR: open, HOME: scratch }, { uid: 65534, gid: 65534 })
  expect(result.stderr).toContain(`CUSTOS_DATA_DIR: ${open} is open to other users (mode 0755) and could not be closed (EPERM): run Custos as its owner, or \`chmod 700\` it`)
  expect(result.code).toBe(2)
  expect(await modeOf(open)).toBe(0o755)
  expect(await readdir(open)).toEqual([])
}, 60_000)
