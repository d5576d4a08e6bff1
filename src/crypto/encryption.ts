import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

/**
 * AES-256-GCM for secrets at rest. A sealed value is iv (12 bytes) ||
 * ciphertext || tag (16 bytes); the tag makes tampering or a wrong key fail
 * loudly instead of yielding garbage.
 */

export const KEY_BYTES = 32
const IV_BYTES = 12
const TAG_BYTES = 16

/**
 * Seals `plaintext`. `associatedData` (what the value belongs to) is
 * authenticated but not stored: a value copied elsewhere will not decrypt.
 */
export function encrypt(key: Buffer, plaintext: string, associatedData?: string): Buffer {
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  if (associatedData !== undefined) cipher.setAAD(Buffer.from(associatedData, 'utf8'))
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
  return Buffer.concat([iv, ciphertext, cipher.getAuthTag()])
}

/** Reverses encrypt; throws when the value, key or associated data do not match. */
export function decrypt(key: Buffer, sealed: Buffer, associatedData?: string): Buffer {
  if (sealed.length < IV_BYTES + TAG_BYTES) throw new Error('sealed value is too short')
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES))
  if (associatedData !== undefined) decipher.setAAD(Buffer.from(associatedData, 'utf8'))
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES))
  return Buffer.concat([decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)), decipher.final()])
}

/** A 32-byte key written as 64 hex digits or base64; undefined for anything else. */
export function parseEncryptionKey(text: string): Buffer | undefined {
  const trimmed = text.trim()
  const key = /^[0-9a-f]{64}$/i.test(trimmed)
    ? Buffer.from(trimmed, 'hex')
    : /^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)
      ? Buffer.from(trimmed, 'base64')
      : undefined
  return key?.length === KEY_BYTES ? key : undefined
}
