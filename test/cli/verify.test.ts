import { createPublicKey, generateKeyPairSync } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { recordAuditEntry, systemActor } from '../../src/audit/recorder.js'
import { createCheckpoint } from '../../src/audit/checkpoints.js'
import { SIGNING_KEY_FILE, auditSigner } from '../../src/crypto/signingKey.js'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { type CliDatabase, cliDatabase, custos as runCustos } from '../testkit/cli.js'
import { onPostgres } from '../testkit/database.js'
import { addLogEntries, restoreLogRows, signedInPerson, snapshotLogRows, tamper, verifyLog } from '../testkit/fixtures.js'

/** `custos verify` and `custos partitions` as an operator runs them, in a process of their own. */

const privateKey = generateKeyPairSync('ed25519').privateKey
const privatePem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()

let dataDir: string
let database: CliDatabase

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'custos-cli-'))
  database = await cliDatabase(dataDir)
  await withDatabase(async (db) => {
    for (let index = 0; index < 5; index++) {
      await db.prisma.$transaction((tx) => recordAuditEntry(tx, systemActor, { type: 'login', success: false, errorCode: 'UNKNOWN_EMAIL' }))
    }
  })
  await writeFile(join(dataDir, 'public.pem'), generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }))
}, 60_000)

afterAll(async () => {
  await database?.drop()
  await rm(dataDir, { recursive: true, force: true })
})

const withDatabase: CliDatabase['withDatabase'] = (work) => database.withDatabase(work)
const custos = (args: string[], extra: Record<string, string> = {}) => runCustos(args, { ...database.environment, ...extra })

describe('custos verify', () => {
  it('reports a whole chain with exit code 0', async () => {
    const result = await custos(['verify', '--public-key', join(dataDir, 'public.pem')])
    expect(result).toMatchObject({ code: 0 })
    expect(result.stdout).toContain('Audit log verified: ok')
    expect(result.stdout).toMatch(/entries checked: +5 \(from the beginning through 5\)/)
  })

  it('prints JSON with --json, and verifies a range', async () => {
    const result = await custos(['verify', '--json', '--from', '2', '--to', '4', '--public-key', join(dataDir, 'public.pem')])
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: true, entriesChecked: 4, lastSequence: '4', firstBroken: null })
  })

  it('names the first broken entry and exits 1', async () => {
    const [victim] = await withDatabase(async (db) => {
      await tamper(db, "UPDATE person_auth_log SET error_code = 'FORGED' WHERE sequence = 3")
      return db.session((session) => session.query<{ id: string }>('SELECT id FROM person_auth_log WHERE sequence = 3'))
    })
    const result = await custos(['verify', '--public-key', join(dataDir, 'public.pem')])
    await withDatabase((db) => tamper(db, "UPDATE person_auth_log SET error_code = 'UNKNOWN_EMAIL' WHERE sequence = 3"))

    expect(result.code).toBe(1)
    expect(result.stdout).toContain('Audit log verification FAILED')
    expect(result.stdout).toContain(`first broken entry:  sequence 3 (id ${victim!.id}): CONTENT_CHANGED`)
  })

  it('takes the key from CUSTOS_SIGNING_KEY', async () => {
    expect((await custos(['verify'], { CUSTOS_SIGNING_KEY: privatePem })).code).toBe(0)
  })

  it.each([
    [['verify', '--from', 'zero'], '--from must be a sequence number'],
    [['verify', '--colour'], "Unknown option '--colour'"],
    [['verify', '--public-key', '/missing.pub'], '--public-key /missing.pub: no such file\n'],
  ])('refuses %j with exit code 2', async (args, message) => {
    const result = await custos(args, { CUSTOS_SIGNING_KEY: privatePem })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain(message)
  })

  // The rules of verifyAuthLog(from, to): a range that names entries the log does not hold is not verified.
  it.each([
    [['--from', '10', '--to', '5'], '--to must not be less than --from'],
    [['--from', '99999999999999999999'], '--from must be a sequence number from 1 to 9223372036854775807, not 99999999999999999999'],
    [['--from', '6'], '--from is past the last entry, 5'],
    [['--from', '9999'], '--from is past the last entry, 5'],
    [['--to', '6'], '--to is past the last entry, 5'],
  ])('refuses the range %j with exit code 2', async (range, message) => {
    const result = await custos(['verify', ...range], { CUSTOS_SIGNING_KEY: privatePem })
    expect(result).toEqual({ code: 2, stdout: '', stderr: `${message}\n` })
  })

  it('verifies a range through the last entry', async () => {
    const result = await custos(['verify', '--from', '5', '--to', '5'], { CUSTOS_SIGNING_KEY: privatePem })
    expect(result.stdout).toMatch(/verified: ok\n {2}entries checked: +5 \(from the beginning through 5\)/)
    expect(result.code).toBe(0)
  })

  it('asks for a public key when it has none', async () => {
    const result = await custos(['verify'])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('No audit public key: pass --public-key FILE')
  })
})

// Each test runs the command line several times: seconds each.
describe('custos verify of a log longer than one batch', () => {
  it('reports the first broken entry and nothing else: the batch read ahead is not left to fail at exit', { timeout: 120_000 }, async () => {
    const longLogDir = await mkdtemp(join(tmpdir(), 'custos-cli-'))
    const longLog = await cliDatabase(longLogDir)
    try {
      await longLog.withDatabase(async (db) => {
        // Chained by the trigger, row after row; the walk reads 5,000 entries a batch.
        await db.session((session) => session.exec("INSERT INTO person_auth_log (id, type, success, error_code) SELECT gen_random_uuid(), 'login', false, 'UNKNOWN_EMAIL' FROM generate_series(1, 5100)"))
        await tamper(db, "UPDATE person_auth_log SET error_code = 'FORGED' WHERE sequence = 11")
      })
      const result = await runCustos(['verify', '--json', '--public-key', join(dataDir, 'public.pem')], longLog.environment)
      expect(result.stderr).toBe('')
      expect(result.code).toBe(1)
      expect(JSON.parse(result.stdout)).toMatchObject({ ok: false, entriesChecked: 10, firstBroken: { sequence: '11', reason: 'CONTENT_CHANGED' } })
    } finally {
      await longLog.drop()
      await rm(longLogDir, { recursive: true, force: true })
    }
  })
})

describe('custos verify against a server (--url, --token)', { timeout: 120_000 }, () => {
  let app: TestApp
  let server: string[]

  beforeAll(async () => {
    app = await startTestApp()
    await addLogEntries(app, 3)
    server = ['--url', app.url, '--token', app.rootToken]
  })

  afterAll(async () => {
    await app?.stop()
  })

  // No database in its environment: everything comes from the server's verifyAuthLog.
  it('prints what verifyAuthLog reports, as on the database', async () => {
    const { lastSequence, checkpointsChecked } = await verifyLog(app)
    const whole = await runCustos(['verify', ...server])
    expect(whole).toEqual({
      code: 0,
      stdout: `Audit log verified: ok\n  entries checked:     ${lastSequence} (from the beginning through ${lastSequence})\n  checkpoints checked: ${checkpointsChecked}\n`,
      stderr: '',
    })
    const range = await runCustos(['verify', '--json', '--from', '2', '--to', '3', ...server])
    expect(JSON.parse(range.stdout)).toMatchObject({ ok: true, entriesChecked: 3, lastSequence: '3', anchor: { sequence: '0' }, firstBroken: null })
    expect(range.code).toBe(0)
  })

  it('names the first broken entry and exits 1', async () => {
    const db = app.app.services.db
    const kept = await snapshotLogRows(db, 'sequence = 2')
    await tamper(db, "UPDATE person_auth_log SET user_agent = 'forged' WHERE sequence = 2")
    try {
      const result = await runCustos(['verify', ...server])
      expect(result.stdout).toContain('Audit log verification FAILED')
      expect(result.stdout).toContain(`first broken entry:  sequence 2 (id ${kept[0]!.id}): CONTENT_CHANGED`)
      expect(result.code).toBe(1)
    } finally {
      await restoreLogRows(db, kept)
    }
  })

  it('answers a range the server refuses with its message and exit code 2', async () => {
    const { lastSequence } = await verifyLog(app)
    for (const [range, message] of [
      [['--from', String(lastSequence + 1)], `--from is past the last entry, ${lastSequence}`],
      [['--to', String(lastSequence + 1)], `--to is past the last entry, ${lastSequence}`],
      [['--from', '10', '--to', '5'], '--to must not be less than --from'],
    ] as const) {
      expect(await runCustos(['verify', ...range, ...server]), range.join(' ')).toEqual({ code: 2, stdout: '', stderr: `${message}\n` })
    }
  })

  it('reports a refused token, or one without system:viewAuthLog, with exit code 1', async () => {
    const unknown = await runCustos(['verify', '--url', app.url, '--token', 'not-the-right-token'])
    expect(unknown).toMatchObject({ code: 1, stdout: '', stderr: expect.stringMatching(/^custos verify: 401 .*bearer token is not valid/) })
    const person = await signedInPerson(app)
    const forbidden = await runCustos(['verify', '--url', app.url, '--token', person.token])
    expect(forbidden).toEqual({ code: 1, stdout: '', stderr: 'custos verify: You are not allowed to view the audit log.\n' })
  })

  it('refuses options that do not go with a server, with exit code 2', async () => {
    const publicKey = await runCustos(['verify', ...server, '--public-key', join(dataDir, 'public.pem')])
    expect(publicKey).toMatchObject({ code: 2, stderr: expect.stringContaining('--public-key does not go with --url') })
    const file = await runCustos(['verify', ...server, '--file', 'audit.jsonl', '--checkpoints', 'checkpoints.json'])
    expect(file).toMatchObject({ code: 2, stderr: expect.stringContaining('--file and --url exclude each other') })
  })
})

describe('custos partitions', () => {
  it('keeps partitions ahead and reports what it did', async () => {
    const result = await custos(['partitions'], { CUSTOS_SIGNING_KEY: privatePem, CUSTOS_AUDIT_FORWARD_MONTHS: '6' })
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^Partitions created: person_auth_log_\d{4}_\d\d/)
    expect(result.stdout).toContain('Partitions dropped: none')
  })
})

// The embedded default reads the key it generated; verification never creates one.
it.skipIf(onPostgres)('finds the embedded default key in the data dir', async () => {
  await writeFile(join(dataDir, SIGNING_KEY_FILE), privatePem)
  expect((await custos(['verify'])).code).toBe(0)
  await rm(join(dataDir, SIGNING_KEY_FILE))
})

// Last: the checkpoint signed here makes every verification above need its key.
describe('custos verify after the signing key was rotated', () => {
  const retiredPem = createPublicKey(privateKey).export({ format: 'pem', type: 'spki' }).toString()
  const current = generateKeyPairSync('ed25519')
  const currentPrivatePem = current.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
  const currentPem = current.publicKey.export({ format: 'pem', type: 'spki' }).toString()

  /** `--public-key` with a file in the data dir, which exists only once the tests run. */
  const publicKeyFile = (file: string | undefined) => (file ? ['--public-key', join(dataDir, file)] : [])

  beforeAll(async () => {
    const signed = await withDatabase((db) => createCheckpoint(db, auditSigner(privateKey), { reason: 'interval' }))
    expect(signed.ok).toBe(true)
    await writeFile(join(dataDir, 'current-and-retired.pem'), `${currentPem}${retiredPem}`)
  })

  it('fails on the old checkpoint without the retired key', async () => {
    const result = await custos(['verify'], { CUSTOS_SIGNING_KEY: currentPrivatePem })
    expect(result.code).toBe(1)
    expect(result.stdout).toMatch(/first broken entry: +sequence 5: CHECKPOINT_SIGNATURE_INVALID/)
  })

  it.each([
    ['CUSTOS_SIGNING_KEY_RETIRED', undefined, { CUSTOS_SIGNING_KEY: currentPrivatePem, CUSTOS_SIGNING_KEY_RETIRED: retiredPem }],
    ['a --public-key file holding both keys', 'current-and-retired.pem', {}],
  ])('verifies with the retired key from %s', async (_source, file, extra: Record<string, string>) => {
    const result = await custos(['verify', ...publicKeyFile(file)], extra)
    expect(result.stdout).toContain('Audit log verified: ok')
    expect(result.stdout).toContain('checkpoints checked: 1')
    expect(result.code).toBe(0)
  })

  it.each([
    ['CUSTOS_SIGNING_KEY_RETIRED', undefined, { CUSTOS_SIGNING_KEY_RETIRED: privatePem }, 'CUSTOS_SIGNING_KEY_RETIRED: the key is a private key'],
    ['--public-key', 'private.pem', {}, 'private.pem: the key is a private key'],
  ])('refuses a private key in %s with exit code 2', async (_where, file, extra: Record<string, string>, message) => {
    await writeFile(join(dataDir, 'private.pem'), privatePem)
    const result = await custos(['verify', ...publicKeyFile(file)], { CUSTOS_SIGNING_KEY: currentPrivatePem, ...extra })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain(message)
  })
})
