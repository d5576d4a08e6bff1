import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

/**
 * AES-256-GCM for secrets at rest. A sealed value is iv (12 bytes) ||
 * ciphertext || tag (16 bytes); the tag makes tampering or a wrong key fail
 * loudly instead of yielding garbage.
 */

const KEY_BYTES = 32
const IV_BYTES = 12
const TAG_BYTES = 16

export function encrypt(key: Buffer, plaintext: string): Buffer {
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
  return Buffer.concat([iv, ciphertext, cipher.getAuthTag()])
}

export function decrypt(key: Buffer, sealed: Uint8Array): string {
  const data = Buffer.from(sealed)
  if (data.length < IV_BYTES + TAG_BYTES) throw new Error('sealed value is too short')
  const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES))
  decipher.setAuthTag(data.subarray(data.length - TAG_BYTES))
  return Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]).toString('utf8')
}

export const generateEncryptionKey = () => randomBytes(KEY_BYTES).toString('base64')

/** A 32-byte key written as 64 hex digits or base64; null for anything else. */
export function parseEncryptionKey(text: string): Buffer | null {
  const trimmed = text.trim()
  const key = /^[0-9a-f]{64}$/i.test(trimmed)
    ? Buffer.from(trimmed, 'hex')
    : /^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)
      ? Buffer.from(trimmed, 'base64')
      : null
  return key?.length === KEY_BYTES ? key : null
}
