import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

/** AES-256-GCM. A sealed value is iv (12 bytes) || ciphertext || tag (16 bytes). */
const IV_BYTES = 12
const TAG_BYTES = 16
export const KEY_BYTES = 32

/**
 * Encrypts `plaintext`. `associatedData` (for example the owning row's id) is
 * authenticated but not stored: a value copied to another row will not decrypt.
 */
export function encrypt(key: Buffer, plaintext: string | Buffer, associatedData?: string): Buffer {
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  if (associatedData !== undefined) cipher.setAAD(Buffer.from(associatedData, 'utf8'))
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()])
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

/** Text columns hold sealed values as base64. */
export const encryptText = (key: Buffer, plaintext: string, associatedData?: string) =>
  encrypt(key, plaintext, associatedData).toString('base64')

export const decryptText = (key: Buffer, sealed: string, associatedData?: string) =>
  decrypt(key, Buffer.from(sealed, 'base64'), associatedData).toString('utf8')

/** A 32-byte key written as 64 hex digits or as base64; undefined when it is neither. */
export function parseEncryptionKey(text: string): Buffer | undefined {
  const trimmed = text.trim()
  if (/^[0-9a-f]{64}$/i.test(trimmed)) return Buffer.from(trimmed, 'hex')
  if (/^[A-Za-z0-9+/]{43}=?$/.test(trimmed)) return Buffer.from(trimmed, 'base64')
  return undefined
}
