import { createPublicKey, generateKeyPairSync } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { recordAuditEntry, systemActor } from '../../src/audit/recorder.js'
import { createCheckpoint } from '../../src/audit/checkpoints.js'
import { SIGNING_KEY_FILE, auditSigner } from '../../src/crypto/signingKey.js'
import { type CliDatabase, cliDatabase, custos as runCustos } from '../testkit/cli.js'
import { onPostgres } from '../testkit/database.js'
import { tamper } from '../testkit/fixtures.js'

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
  ])('refuses %j with exit code 2', async (args, message) => {
    const result = await custos(args, { CUSTOS_SIGNING_KEY: privatePem })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain(message)
  })

  it('asks for a public key when it has none', async () => {
    const result = await custos(['verify'])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('No audit public key: pass --public-key FILE')
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
