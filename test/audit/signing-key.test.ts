import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { startApp } from '../../src/app.js'
import { ConfigError, loadConfig } from '../../src/config.js'
import { SIGNING_KEY_FILE } from '../../src/crypto/signingKey.js'
import { createLogger } from '../../src/logger.js'
import { startTestApp } from '../testkit/app.js'
import { onPostgres } from '../testkit/database.js'

const ed25519 = generateKeyPairSync('ed25519').privateKey

describe('CUSTOS_SIGNING_KEY', () => {
  it.each([
    ['PEM', ed25519.export({ format: 'pem', type: 'pkcs8' }).toString()],
    ['base64 of PKCS#8 DER', ed25519.export({ format: 'der', type: 'pkcs8' }).toString('base64')],
  ])('accepts an Ed25519 key as %s', (_form, value) => {
    const config = loadConfig({ CUSTOS_SIGNING_KEY: value })
    expect(config.signingKey?.asymmetricKeyType).toBe('ed25519')
  })

  it.each([
    ['garbage', 'not a key', 'must be an Ed25519 private key: PEM, or base64'],
    ['another kind of key', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), 'not ec'],
  ])('refuses %s, naming the variable', (_case, value, message) => {
    expect(() => loadConfig({ CUSTOS_SIGNING_KEY: value })).toThrow(ConfigError)
    expect(() => loadConfig({ CUSTOS_SIGNING_KEY: value })).toThrow(new RegExp(`CUSTOS_SIGNING_KEY: .*${message}`))
  })

  it('is required with DATABASE_URL: the start stops with a clear error before touching the database', async () => {
    const config = loadConfig({
      DATABASE_URL: 'postgresql://nobody@127.0.0.1:1/nowhere',
      PORT: '0',
      // Given, so that the signing key is the one missing.
      CUSTOS_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
    })
    const start = startApp(config, createLogger('silent'))
    await expect(start).rejects.toBeInstanceOf(ConfigError)
    await expect(start).rejects.toThrow('CUSTOS_SIGNING_KEY: required with DATABASE_URL')
  })
})

describe('CUSTOS_SIGNING_KEY_RETIRED', () => {
  const publicPem = () => generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString()

  it('is empty unless given, and takes one or more concatenated PEM public keys', () => {
    expect(loadConfig({}).retiredSigningKeys).toEqual([])
    const [first, second] = [publicPem(), publicPem()]
    const keys = loadConfig({ CUSTOS_SIGNING_KEY_RETIRED: `${first}${second}` }).retiredSigningKeys
    expect(keys.map((key) => key.export({ format: 'pem', type: 'spki' }).toString())).toEqual([first, second])
  })

  it.each([
    ['garbage', 'not a key', 'must be Ed25519 public keys as PEM blocks'],
    ['a key followed by garbage', `${publicPem()}and more`, 'must be Ed25519 public keys as PEM blocks'],
    ['a private key', ed25519.export({ format: 'pem', type: 'pkcs8' }).toString(), 'the key is a private key; give its public key'],
    ['a private key after a public one', `${publicPem()}${ed25519.export({ format: 'pem', type: 'pkcs8' })}`, 'key 2 is a private key'],
    ['another kind of key', generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }).toString(), 'the key is ec, not Ed25519'],
    ['a damaged block', '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n', 'the key is not a readable public key'],
  ])('refuses %s: the start stops with a message naming the variable', (_case, value, message) => {
    expect(() => loadConfig({ CUSTOS_SIGNING_KEY_RETIRED: value })).toThrow(ConfigError)
    expect(() => loadConfig({ CUSTOS_SIGNING_KEY_RETIRED: value })).toThrow(`Invalid configuration:\n  CUSTOS_SIGNING_KEY_RETIRED: ${message}`)
  })
})

describe('the embedded default', () => {
  const dirs: string[] = []
  afterAll(async () => {
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })))
  })

  it.skipIf(onPostgres)('generates a key into the data dir once (mode 0600) and keeps signing with it', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'custos-key-'))
    dirs.push(dataDir)
    const published: string[] = []
    for (let start = 0; start < 2; start++) {
      const app = await startTestApp({ CUSTOS_DATA_DIR: dataDir })
      published.push(await (await fetch(`${app.url}/.well-known/custos-audit-key`)).text())
      await app.stop()
    }
    expect(published[0]).toMatch(/^-----BEGIN PUBLIC KEY-----/)
    expect(published[1]).toBe(published[0])
    expect((await stat(join(dataDir, SIGNING_KEY_FILE))).mode & 0o777).toBe(0o600)
  })
})

describe('audit log settings', () => {
  it('default to 3 forward months, no retention, a checkpoint every 10000 entries or hour', () => {
    expect(loadConfig({}).auditLog).toEqual({ forwardMonths: 3, retentionMonths: undefined, checkpointEntries: 10_000, checkpointSeconds: 3600 })
  })

  it('take numbers', () => {
    const config = loadConfig({ CUSTOS_AUDIT_RETENTION_MONTHS: '12', CUSTOS_AUDIT_FORWARD_MONTHS: '2', CUSTOS_AUDIT_CHECKPOINT_ENTRIES: '0' })
    expect(config.auditLog).toMatchObject({ retentionMonths: 12, forwardMonths: 2, checkpointEntries: 0 })
  })

  it.each([
    ['CUSTOS_AUDIT_RETENTION_MONTHS', '0'],
    ['CUSTOS_AUDIT_RETENTION_MONTHS', 'forever'],
    ['CUSTOS_AUDIT_FORWARD_MONTHS', '0'],
    ['CUSTOS_AUDIT_CHECKPOINT_SECONDS', '-1'],
  ])('refuse %s=%s', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(name))
  })

  it.each(['abc', '-1', '1.5', '0'])('refuse CUSTOS_AUDIT_RETENTION_MONTHS=%s saying what it takes', (value) => {
    expect(() => loadConfig({ CUSTOS_AUDIT_RETENTION_MONTHS: value })).toThrow(
      'Invalid configuration:\n  CUSTOS_AUDIT_RETENTION_MONTHS: must be a whole number of months, at least 1',
    )
  })

  it('keep everything when CUSTOS_AUDIT_RETENTION_MONTHS is empty', () => {
    expect(loadConfig({ CUSTOS_AUDIT_RETENTION_MONTHS: '' }).auditLog.retentionMonths).toBeUndefined()
  })
})
