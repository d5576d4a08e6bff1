import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadEncryptionKey } from '../../src/app.js'
import { ConfigError, loadConfig } from '../../src/config.js'
import { decrypt, decryptText, encrypt, encryptText, parseEncryptionKey } from '../../src/crypto/encryption.js'

const key = randomBytes(32)

describe('AES-256-GCM', () => {
  it('round-trips, with a fresh IV each time', () => {
    const first = encrypt(key, 'a secret value')
    expect(first).not.toEqual(encrypt(key, 'a secret value'))
    expect(first.length).toBe(12 + 'a secret value'.length + 16)
    expect(decrypt(key, first).toString()).toBe('a secret value')
    expect(decryptText(key, encryptText(key, 'text', 'row-1'), 'row-1')).toBe('text')
  })

  it('refuses another key, other associated data, and a changed byte', () => {
    const sealed = encrypt(key, 'value', 'row-1')
    expect(() => decrypt(randomBytes(32), sealed, 'row-1')).toThrow()
    expect(() => decrypt(key, sealed, 'row-2')).toThrow()
    const tampered = Buffer.from(sealed)
    tampered[14] = tampered[14]! ^ 1
    expect(() => decrypt(key, tampered, 'row-1')).toThrow()
  })

  it('reads keys as 64 hex digits or base64 of 32 bytes', () => {
    expect(parseEncryptionKey(key.toString('hex'))).toEqual(key)
    expect(parseEncryptionKey(key.toString('base64'))).toEqual(key)
    expect(parseEncryptionKey(randomBytes(16).toString('base64'))).toBeUndefined()
    expect(parseEncryptionKey('not a key')).toBeUndefined()
  })
})

describe('encryption key loading', () => {
  it('rejects a malformed CUSTOS_ENCRYPTION_KEY at configuration', () => {
    expect(() => loadConfig({ CUSTOS_ENCRYPTION_KEY: 'short' })).toThrow(/CUSTOS_ENCRYPTION_KEY: must be 32 bytes/)
  })

  it('refuses to start with DATABASE_URL and no key', async () => {
    const config = loadConfig({ DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/none' })
    await expect(loadEncryptionKey(config)).rejects.toThrow(ConfigError)
    await expect(loadEncryptionKey(config)).rejects.toThrow(/CUSTOS_ENCRYPTION_KEY: required with DATABASE_URL/)
  })

  it('creates a key file for the embedded database and reuses it', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'custos-key-'))
    try {
      const config = loadConfig({ CUSTOS_DATA_DIR: dataDir })
      const first = await loadEncryptionKey(config)
      expect(first.length).toBe(32)
      expect(await loadEncryptionKey(config)).toEqual(first)
      expect(parseEncryptionKey(await readFile(join(dataDir, 'encryption.key'), 'utf8'))).toEqual(first)
    } finally {
      await rm(dataDir, { recursive: true, force: true })
    }
  })

  it('prefers CUSTOS_ENCRYPTION_KEY', async () => {
    expect(await loadEncryptionKey(loadConfig({ CUSTOS_ENCRYPTION_KEY: key.toString('hex'), DATABASE_URL: 'postgresql://x@y/z' }))).toEqual(key)
  })
})
