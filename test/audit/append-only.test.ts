import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import type { Database } from '../../src/db/database.js'
import { createLogger } from '../../src/logger.js'
import { testSigningKey } from '../testkit/app.js'
import { type MigratedTestDatabase, migratedTestDatabase, onPostgres, serverUrl } from '../testkit/database.js'

/**
 * person_auth_log is append-only in the database itself: triggers refuse
 * UPDATE, DELETE and TRUNCATE to every role, owner and superuser included,
 * and the application role custos_app may only INSERT and SELECT it.
 */

let testDatabase: MigratedTestDatabase
let db: Database

beforeAll(async () => {
  testDatabase = await migratedTestDatabase()
  db = testDatabase.db
  await db.session(async (session) => {
    await session.query("INSERT INTO person_auth_log (id, type, success) VALUES (gen_random_uuid(), 'login', true)")
    await session.query(
      "INSERT INTO person_auth_log_checkpoint (id, sequence, hash, created_at, signature, reason) VALUES (gen_random_uuid(), 1, '', now(), '', 'on_demand')",
    )
  })
})

afterAll(async () => {
  await testDatabase?.close()
})

const asOwner = (sql: string) => db.session((session) => session.query(sql))

const currentPartition = async () => {
  const [row] = await db.session((session) =>
    session.query<{ name: string }>('SELECT tableoid::regclass::text AS name FROM person_auth_log ORDER BY sequence LIMIT 1'),
  )
  return row!.name
}

describe('the triggers stop even the owner and superusers', () => {
  it.each([
    ['UPDATE', "UPDATE person_auth_log SET type = 'login'"],
    ['DELETE', 'DELETE FROM person_auth_log'],
    ['TRUNCATE', 'TRUNCATE person_auth_log'],
  ])('%s of person_auth_log', async (operation, sql) => {
    await expect(asOwner(sql)).rejects.toThrow(`person_auth_log is append-only: ${operation} is not allowed`)
  })

  it.each(['UPDATE % SET type = $$login$$', 'DELETE FROM %', 'TRUNCATE %'])('%s on the partition itself', async (template) => {
    const partition = await currentPartition()
    await expect(asOwner(template.replace('%', partition))).rejects.toThrow('person_auth_log is append-only')
  })

  it.each(["UPDATE person_auth_log_checkpoint SET reason = 'interval'", 'DELETE FROM person_auth_log_checkpoint', 'TRUNCATE person_auth_log_checkpoint'])(
    'the checkpoints too: %s',
    async (sql) => {
      await expect(asOwner(sql)).rejects.toThrow('person_auth_log_checkpoint is append-only')
    },
  )

  it('leaves the log as it was', async () => {
    const [row] = await db.session((session) => session.query<{ count: number }>('SELECT count(*)::int AS count FROM person_auth_log'))
    expect(row!.count).toBe(1)
  })
})

/** The first day of the month `months` from this one (UTC), as a date. */
function monthFromNow(months: number) {
  const now = new Date()
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + months, 1)).toISOString().slice(0, 10)
}

/** The privileges custos_app holds, tried through `run` (SQL as that role). */
function leastPrivilegeCases(run: (sql: string) => Promise<unknown>) {
  it('may insert entries, leaving created_at, sequence and hash (and the id, if it likes) to the database', async () => {
    await expect(run("INSERT INTO person_auth_log (id, type, success) VALUES (gen_random_uuid(), 'login', false)")).resolves.toBeDefined()
    await expect(run("INSERT INTO person_auth_log (type, success) VALUES ('login', false)")).resolves.toBeDefined()
    const [newest] = (await asOwner('SELECT id::text, sequence::text, (SELECT sequence::text FROM person_auth_log_head) AS head FROM person_auth_log ORDER BY sequence DESC LIMIT 1')) as {
      id: string
      sequence: string
      head: string
    }[]
    expect(newest?.id).toMatch(/^[0-9a-f-]{36}$/)
    expect(newest?.sequence).toBe(newest?.head)
  })

  it.each([
    ['choose created_at', "INSERT INTO person_auth_log (id, type, success, created_at) VALUES (gen_random_uuid(), 'login', true, now())"],
    ['choose the sequence', "INSERT INTO person_auth_log (id, type, success, sequence) VALUES (gen_random_uuid(), 'login', true, 1)"],
    ['UPDATE the log', "UPDATE person_auth_log SET type = 'login'"],
    ['DELETE from the log', 'DELETE FROM person_auth_log'],
    ['TRUNCATE the log', 'TRUNCATE person_auth_log'],
    ['move the chain head', 'UPDATE person_auth_log_head SET sequence = 0'],
    ['rewrite a checkpoint', 'DELETE FROM person_auth_log_checkpoint'],
    ['drop a partition', 'DROP TABLE person_auth_log_default'],
    ['write a partition directly', "INSERT INTO person_auth_log_default (id, type, success, created_at, sequence, hash) VALUES (gen_random_uuid(), 'login', true, now(), 1, '')"],
    ['make a partition for any month', "SELECT person_auth_log_create_partition('1900-02-01')"],
  ])('may not %s', async (_what, sql) => {
    await expect(run(sql)).rejects.toThrow(/permission denied|must be owner/)
  })

  it('reads the log and its head, and changes other tables as usual', async () => {
    await expect(run('SELECT count(*) FROM person_auth_log')).resolves.toBeDefined()
    await expect(run('SELECT sequence FROM person_auth_log_head')).resolves.toBeDefined()
    await expect(run("UPDATE identity SET description = 'x' WHERE false")).resolves.toBeDefined()
    await expect(run('DELETE FROM mail_outbox WHERE false')).resolves.toBeDefined()
  })

  it('keeps partitions ahead through the owner-run function: from the previous month to 121 months ahead', async () => {
    for (const months of [-1, 0, 60, 121]) {
      await expect(run(`SELECT person_auth_log_create_partition_ahead('${monthFromNow(months)}')`), `${months}`).resolves.toBeDefined()
    }
  })

  // Rows get created_at from the database: a month outside that reach would stay empty, one more table for every read.
  it.each([['1900-02-01'], [monthFromNow(-2)], [monthFromNow(122)], ['9999-12-01']])('may not make a partition for %s', async (month) => {
    await expect(run(`SELECT person_auth_log_create_partition_ahead('${month}')`)).rejects.toThrow(/no partition for .*: the months from/)
  })
}

describe('the application role custos_app (SET ROLE on the owner connection)', () => {
  leastPrivilegeCases((sql) =>
    db.session(async (session) => {
      await session.exec('BEGIN')
      try {
        await session.exec('SET LOCAL ROLE custos_app')
        const rows = await session.query(sql)
        await session.exec('COMMIT')
        return rows
      } catch (error) {
        await session.exec('ROLLBACK')
        throw error
      }
    }),
  )
})

describe.runIf(onPostgres)('a login role in custos_app, connected as itself', () => {
  // Roles are cluster-wide: a name of this run's own, dropped afterwards.
  const role = `custos_test_app_${randomBytes(5).toString('hex')}`
  let client: pg.Client

  beforeAll(async () => {
    await asOwner(`CREATE ROLE ${role} LOGIN IN ROLE custos_app`)
    const url = new URL(testDatabase.url!)
    url.username = role
    client = new pg.Client({ connectionString: url.toString() })
    await client.connect()
  })

  afterAll(async () => {
    await client?.end()
    await asOwner(`DROP ROLE IF EXISTS ${role}`)
  })

  leastPrivilegeCases((sql) => client.query(sql))
})

describe.runIf(onPostgres)('the server running as a login role in custos_app', () => {
  const role = `custos_test_server_${randomBytes(5).toString('hex')}`
  let appDatabase: MigratedTestDatabase

  beforeAll(async () => {
    // Migrated by the owner, as README tells production to do.
    appDatabase = await migratedTestDatabase()
    await asOwner(`CREATE ROLE ${role} LOGIN IN ROLE custos_app`)
  })

  afterAll(async () => {
    await appDatabase?.close()
    await asOwner(`DROP ROLE IF EXISTS ${role}`)
  })

  it('starts, records, verifies and signs, and leaves retention to the owner', async () => {
    const url = new URL(appDatabase.url!)
    url.username = role
    const logged: string[] = []
    const config = loadConfig({
      PORT: '0',
      DATABASE_URL: url.toString(),
      CUSTOS_SIGNING_KEY: testSigningKey(),
      CUSTOS_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      CUSTOS_ROOT_TOKEN: `root-${randomBytes(16).toString('hex')}`,
      CUSTOS_LOGIN_TOKEN: `login-${randomBytes(16).toString('hex')}`,
      CUSTOS_AUDIT_RETENTION_MONTHS: '1',
      LOG_LEVEL: 'warn',
    })
    const sink = new Writable({
      write(chunk, _encoding, done) {
        logged.push(String(chunk))
        done()
      },
    })
    const app = await startApp(config, createLogger(config.logLevel, sink))
    try {
      const gql = (query: string) =>
        fetch(`${app.url}/tenant`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${config.rootToken}` },
          body: JSON.stringify({ query }),
        }).then((response) => response.json() as Promise<{ data: any }>)

      const created = await gql('mutation { createGlobalApiKey(description: "as custos_app") { ok } }')
      const checkpoint = await gql('mutation { createAuthLogCheckpoint { ok result { sequence } } }')
      const verification = await gql('{ verifyAuthLog { ok entriesChecked } }')

      expect(created.data.createGlobalApiKey.ok).toBe(true)
      expect(checkpoint.data.createAuthLogCheckpoint).toMatchObject({ ok: true, result: { sequence: 3 } })
      // Four: the checkpoint is recorded after the entry it signs.
      expect(verification.data.verifyAuthLog).toEqual({ ok: true, entriesChecked: 4 })
      const maintenance = await app.auditMaintenance.maintainPartitions()
      expect(maintenance.retentionStopped).toContain('does not own person_auth_log')
      expect(logged.join('')).toContain('does not own person_auth_log')
    } finally {
      await app.stop()
    }
  })
})

describe.runIf(onPostgres)('the migration creating custos_app', () => {
  it('survives many databases creating the role at the same time (roles are cluster-wide)', async () => {
    // The migration's own DO block, for a role of this run's own so the race really happens.
    const migration = readFileSync(fileURLToPath(new URL('../../prisma/migrations/20261122030000_integrity/migration.sql', import.meta.url)), 'utf8')
    const block = /DO \$\$\nBEGIN\n {2}IF NOT EXISTS \(SELECT 1 FROM pg_roles WHERE rolname = 'custos_app'\)[\s\S]*?\nEND\n\$\$;/.exec(migration)
    expect(block).not.toBeNull()
    const role = `custos_test_race_${randomBytes(5).toString('hex')}`
    const clients = Array.from({ length: 6 }, () => new pg.Client({ connectionString: serverUrl }))
    await Promise.all(clients.map((client) => client.connect()))
    try {
      // Each holds its transaction open a moment, so the others meet an uncommitted role.
      await Promise.all(
        clients.map((client) => client.query(`BEGIN; ${block![0].replaceAll('custos_app', role)} SELECT pg_sleep(0.2); COMMIT;`)),
      )
      const { rows } = await clients[0]!.query('SELECT count(*)::int AS count FROM pg_roles WHERE rolname = $1', [role])
      expect(rows[0].count).toBe(1)
    } finally {
      await clients[0]!.query(`DROP ROLE IF EXISTS ${role}`)
      await Promise.all(clients.map((client) => client.end()))
    }
  })

  it('runs in several databases at once', async () => {
    const databases = await Promise.all(Array.from({ length: 4 }, () => migratedTestDatabase()))
    try {
      for (const { db: each } of databases) {
        const [grants] = await each.session((session) =>
          session.query(
            `SELECT has_column_privilege('custos_app', 'person_auth_log', 'type', 'INSERT') AS type,
                    has_column_privilege('custos_app', 'person_auth_log', 'created_at', 'INSERT') AS created_at`,
          ),
        )
        expect(grants).toEqual({ type: true, created_at: false })
      }
    } finally {
      await Promise.all(databases.map((database) => database.close()))
    }
  })
})
