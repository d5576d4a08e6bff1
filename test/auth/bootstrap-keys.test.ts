import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RunningApp, startApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import type { DatabaseTarget } from '../../src/db/database.js'
import { createLogger } from '../../src/logger.js'
import { testSigningKey } from '../testkit/app.js'
import { type TestDatabase, createTestDatabase, durableTestDatabase, onPostgres } from '../testkit/database.js'

/**
 * The real start-up path on a database that outlives each start: an embedded
 * PGlite data directory (or, on PostgreSQL, one database reused across starts).
 */
let dataDir: string
let testDatabase: TestDatabase
let target: DatabaseTarget

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'custos-bootstrap-'))
  testDatabase = await durableTestDatabase(join(dataDir, 'db'))
  target = testDatabase.target
})

afterAll(async () => {
  await testDatabase?.drop()
  await rm(dataDir, { recursive: true, force: true })
})

interface Start {
  readonly terminal: string
  readonly log: string
  readonly app: RunningApp
}

/** Starts the app with `environment`, capturing what it prints and logs. */
async function start(environment: Record<string, string> = {}, on: DatabaseTarget = target): Promise<Start> {
  const printed: string[] = []
  const logged: string[] = []
  const sink = (into: string[]) =>
    new Writable({
      write(chunk, _encoding, done) {
        into.push(String(chunk))
        done()
      },
    })
  const config = loadConfig({ PORT: '0', CUSTOS_DATA_DIR: dataDir, LOG_LEVEL: 'debug', ...environment })
  const app = await startApp(config, createLogger('debug', sink(logged)), on, sink(printed))
  return {
    app,
    get terminal() {
      return printed.join('')
    },
    get log() {
      return logged.join('')
    },
  }
}

async function rolesOf(app: RunningApp, token: string): Promise<string[] | number> {
  const response = await fetch(`${app.url}/tenant`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: '{ me { roles } }' }),
  })
  if (response.status !== 200) return response.status
  return ((await response.json()) as { data: { me: { roles: string[] } } }).data.me.roles
}

const sha256 = (token: string) => createHash('sha256').update(token).digest('hex')

/** Every row of every table as text, to search for a secret. */
async function everyStoredValue(app: RunningApp): Promise<string> {
  return app.services.db.session(async (session) => {
    const tables = await session.query<{ name: string }>("SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'")
    const dumps = await Promise.all(tables.map(({ name }) => session.query<{ row: string }>(`SELECT t::text AS row FROM "${name}" t`)))
    return dumps.flat().map(({ row }) => row).join('\n')
  })
}

const apiKeyCreations = async (app: RunningApp) =>
  app.services.db.session((session) => session.query<{ n: number }>("SELECT count(*)::int AS n FROM person_auth_log WHERE type = 'api_key_create'"))

describe('bootstrap keys', () => {
  let generated: { root: string; login: string }

  it('on a first start without tokens, generates both, prints them once, and stores only their hashes', async () => {
    const first = await start()
    try {
      const tokens = Object.fromEntries([...first.terminal.matchAll(/Generated (root|login) token[^:]*: (\S+)/g)].map((match) => [match[1], match[2]]))
      expect(Object.keys(tokens).sort()).toEqual(['login', 'root'])
      generated = tokens as typeof generated
      expect(first.terminal).toMatch(/only its hash is stored/)
      expect(await rolesOf(first.app, generated.root)).toEqual(['super_admin'])
      expect(await rolesOf(first.app, generated.login)).toEqual(['login'])

      const stored = await everyStoredValue(first.app)
      expect(stored).toContain(sha256(generated.root))
      expect(stored).toContain(sha256(generated.login))
      for (const token of Object.values(generated)) {
        expect(stored).not.toContain(token)
        expect(first.log).not.toContain(token)
      }
      // Each creation is in the audit log, by the system (no identity).
      expect(await apiKeyCreations(first.app)).toEqual([{ n: 2 }])
    } finally {
      await first.app.stop()
    }
  })

  it('prints nothing on the next start and keeps the generated tokens working', async () => {
    const second = await start()
    try {
      expect(second.terminal).toBe('')
      expect(await rolesOf(second.app, generated.root)).toEqual(['super_admin'])
      expect(await rolesOf(second.app, generated.login)).toEqual(['login'])
      expect(await apiKeyCreations(second.app)).toEqual([{ n: 2 }])
    } finally {
      await second.app.stop()
    }
  })

  it('replaces a key when the environment names a different token, and leaves it be on the next start', async () => {
    const chosen = `chosen-root-${randomBytes(12).toString('hex')}`
    const third = await start({ CUSTOS_ROOT_TOKEN: chosen })
    try {
      expect(third.terminal).toBe('')
      expect(await rolesOf(third.app, chosen)).toEqual(['super_admin'])
      expect(await rolesOf(third.app, generated.root)).toBe(401)
      expect(await rolesOf(third.app, generated.login)).toEqual(['login'])
      expect(third.log).not.toContain(chosen)
      expect(await apiKeyCreations(third.app)).toEqual([{ n: 3 }])
    } finally {
      await third.app.stop()
    }
    const fourth = await start({ CUSTOS_ROOT_TOKEN: chosen })
    try {
      expect(fourth.terminal).toBe('')
      expect(await rolesOf(fourth.app, chosen)).toEqual(['super_admin'])
      expect(await apiKeyCreations(fourth.app)).toEqual([{ n: 3 }])
    } finally {
      await fourth.app.stop()
    }
  })
})

describe.runIf(onPostgres)('bootstrap keys of servers starting together on a new database', () => {
  it('are made once: one server prints the generated tokens, and they work on both', async () => {
    const fresh = await createTestDatabase({ migrated: true })
    const environment = { DATABASE_URL: fresh.url!, CUSTOS_ENCRYPTION_KEY: randomBytes(32).toString('base64'), CUSTOS_SIGNING_KEY: testSigningKey() }
    const starts = await Promise.all([start(environment, fresh.target), start(environment, fresh.target)])
    try {
      const printing = starts.filter(({ terminal }) => terminal !== '')
      expect(printing).toHaveLength(1)
      const root = /Generated root token[^:]*: (\S+)/.exec(printing[0]!.terminal)![1]!
      const login = /Generated login token[^:]*: (\S+)/.exec(printing[0]!.terminal)![1]!
      for (const { app } of starts) {
        expect(await rolesOf(app, root)).toEqual(['super_admin'])
        expect(await rolesOf(app, login)).toEqual(['login'])
      }
      expect(await apiKeyCreations(starts[0]!.app)).toEqual([{ n: 2 }])
    } finally {
      await Promise.all(starts.map(({ app }) => app.stop()))
      await fresh.drop()
    }
  })
})
