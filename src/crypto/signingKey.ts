import { type KeyObject, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto'
import { loadOrCreateKeyFile } from './keyFiles.js'

/** The Ed25519 key that signs audit log checkpoints. */
export interface AuditSigner {
  /** SubjectPublicKeyInfo, PEM: what /.well-known/custos-audit-key serves. */
  readonly publicKeyPem: string
  sign(payload: string): Buffer
}

/** File in the data dir holding the embedded default's generated key. */
export const SIGNING_KEY_FILE = 'audit-signing-key.pem'

/**
 * Reads an Ed25519 private key given as PEM or as base64 of its PKCS#8 DER;
 * throws with a message fit for a configuration error otherwise.
 */
export function parseSigningKey(value: string): KeyObject {
  const trimmed = value.trim()
  let key: KeyObject
  try {
    key = trimmed.startsWith('-----BEGIN')
      ? createPrivateKey({ key: trimmed, format: 'pem' })
      : createPrivateKey({ key: Buffer.from(trimmed, 'base64'), format: 'der', type: 'pkcs8' })
  } catch {
    throw new Error('must be an Ed25519 private key: PEM, or base64 of PKCS#8 DER (openssl genpkey -algorithm ed25519)')
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new Error(`must be an Ed25519 private key, not ${key.asymmetricKeyType ?? 'a symmetric key'}`)
  }
  return key
}

export function auditSigner(privateKey: KeyObject): AuditSigner {
  return {
    publicKeyPem: createPublicKey(privateKey).export({ format: 'pem', type: 'spki' }).toString(),
    sign: (payload) => sign(null, Buffer.from(payload, 'utf8'), privateKey),
  }
}

/** The embedded default's key: read from the data dir, or generated there on first start. */
export async function loadOrCreateSigningKey(dataDir: string): Promise<KeyObject> {
  const pem = await loadOrCreateKeyFile(dataDir, SIGNING_KEY_FILE, () =>
    generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString().trim(),
  )
  return parseSigningKey(pem)
}

/** True when `signature` is `payload` signed by the key whose public half is `publicKeyPem`. */
export function verifySignature(publicKeyPem: string | KeyObject, payload: string, signature: Uint8Array): boolean {
  const publicKey = typeof publicKeyPem === 'string' ? createPublicKey(publicKeyPem) : publicKeyPem
  try {
    return verify(null, Buffer.from(payload, 'utf8'), publicKey, signature)
  } catch {
    return false
  }
}
