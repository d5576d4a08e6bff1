import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { loadEncryptionKey } from '../../src/installation.js'
import { ConfigError, loadConfig } from '../../src/config.js'
import { decrypt, decryptText, encrypt, encryptText, parseEncryptionKey } from '../../src/crypto/encryption.js'

const key = randomBytes(32)

describe('AES-256-GCM', () => {
  it('round-trips any text, with a fresh IV each time', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        const sealed = encrypt(key, text)
        expect(sealed.length).toBe(12 + Buffer.byteLength(text) + 16)
        expect(String(decrypt(key, sealed))).toBe(text)
        expect(encrypt(key, text).equals(sealed)).toBe(false)
      }),
    )
    expect(decryptText(key, encryptText(key, 'text', 'row-1'), 'row-1')).toBe('text')
  })

  it('binds a value to its associated data', () => {
    const sealed = encrypt(key, 'secret', 'project_secret:a:k')
    expect(String(decrypt(key, sealed, 'project_secret:a:k'))).toBe('secret')
    expect(() => decrypt(key, sealed, 'project_secret:b:k')).toThrow()
    expect(() => decrypt(key, sealed)).toThrow()
  })

  it('refuses another key, a changed byte, and a truncated value', () => {
    const sealed = encrypt(key, 'secret')
    const tampered = Buffer.from(sealed)
    tampered[14] = tampered[14]! ^ 1
    expect(() => decrypt(key, tampered)).toThrow()
    expect(() => decrypt(randomBytes(32), sealed)).toThrow()
    expect(() => decrypt(key, sealed.subarray(0, 20))).toThrow()
  })

  it('reads a 32-byte key as 64 hex digits or base64 and nothing else', () => {
    expect(parseEncryptionKey(key.toString('hex'))?.equals(key)).toBe(true)
    expect(parseEncryptionKey(key.toString('base64'))?.equals(key)).toBe(true)
    expect(parseEncryptionKey(randomBytes(16).toString('base64'))).toBeUndefined()
    expect(parseEncryptionKey('not a key at all')).toBeUndefined()
  })
})

describe('encryption key loading', () => {
  it('validates CUSTOS_ENCRYPTION_KEY at configuration', () => {
    expect(loadConfig({ CUSTOS_ENCRYPTION_KEY: key.toString('base64') }).encryptionKey?.equals(key)).toBe(true)
    expect(() => loadConfig({ CUSTOS_ENCRYPTION_KEY: 'short' })).toThrow(/CUSTOS_ENCRYPTION_KEY: must be 32 bytes/)
  })

  it('refuses to start with DATABASE_URL and no key', async () => {
    const config = loadConfig({ DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/unused' })
    await expect(loadEncryptionKey(config)).rejects.toThrow(ConfigError)
    await expect(loadEncryptionKey(config)).rejects.toThrow(/CUSTOS_ENCRYPTION_KEY: required with DATABASE_URL/)
  })

  it('keeps a generated key in the data directory of the embedded default (mode 0600) and reuses it', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'custos-key-'))
    try {
      const config = loadConfig({ CUSTOS_DATA_DIR: dataDir })
      const first = await loadEncryptionKey(config)
      expect(first.length).toBe(32)
      expect((await loadEncryptionKey(config)).equals(first)).toBe(true)
      expect(parseEncryptionKey(await readFile(join(dataDir, 'encryption.key'), 'utf8'))?.equals(first)).toBe(true)
      expect((await stat(join(dataDir, 'encryption.key'))).mode & 0o777).toBe(0o600)
    } finally {
      await rm(dataDir, { recursive: true, force: true })
    }
  })

  it('prefers CUSTOS_ENCRYPTION_KEY', async () => {
    expect((await loadEncryptionKey(loadConfig({ CUSTOS_ENCRYPTION_KEY: key.toString('hex'), DATABASE_URL: 'postgresql://x@y/z' }))).equals(key)).toBe(true)
  })
})
