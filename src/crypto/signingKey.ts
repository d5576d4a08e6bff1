import { type KeyObject, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto'
import { loadOrCreateKeyFile } from './keyFiles.js'

/** The Ed25519 key that signs audit log checkpoints, and the public keys of those it replaced. */
export interface AuditSigner {
  /** SubjectPublicKeyInfo, PEM: what /.well-known/custos-audit-key serves. */
  readonly publicKeyPem: string
  /** Retired keys that signed earlier checkpoints (CUSTOS_SIGNING_KEY_RETIRED), SPKI PEM. */
  readonly retiredPublicKeyPems: readonly string[]
  /** What a stored checkpoint may verify with: the current key, then the retired ones. */
  readonly verificationKeys: readonly KeyObject[]
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

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g

/**
 * Reads Ed25519 public keys given as one or more concatenated PEM blocks
 * (SPKI, `BEGIN PUBLIC KEY`); throws with a message fit for a configuration
 * error otherwise. A private key is refused, not reduced to its public half:
 * it does not belong where public keys are kept.
 */
export function parsePublicKeys(value: string): KeyObject[] {
  const blocks = [...value.matchAll(PEM_BLOCK)]
  if (blocks.length === 0 || value.replace(PEM_BLOCK, '').trim() !== '') {
    throw new Error('must be Ed25519 public keys as PEM blocks (-----BEGIN PUBLIC KEY-----), nothing else')
  }
  return blocks.map(([pem, label], index) => {
    const which = blocks.length > 1 ? `key ${index + 1}` : 'the key'
    if (label!.includes('PRIVATE KEY')) throw new Error(`${which} is a private key; give its public key (openssl pkey -pubout)`)
    if (label !== 'PUBLIC KEY') throw new Error(`${which} is a ${label} block, not a PUBLIC KEY (SPKI)`)
    let key: KeyObject
    try {
      key = createPublicKey({ key: pem, format: 'pem' })
    } catch {
      throw new Error(`${which} is not a readable public key`)
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${which} is ${key.asymmetricKeyType}, not Ed25519`)
    return key
  })
}

const spkiPem = (key: KeyObject) => key.export({ format: 'pem', type: 'spki' }).toString()

/** Signs with `privateKey`; checkpoints verify with its public key or one of `retiredPublicKeys`. */
export function auditSigner(privateKey: KeyObject, retiredPublicKeys: readonly KeyObject[] = []): AuditSigner {
  const publicKey = createPublicKey(privateKey)
  return {
    publicKeyPem: spkiPem(publicKey),
    retiredPublicKeyPems: retiredPublicKeys.map(spkiPem),
    verificationKeys: [publicKey, ...retiredPublicKeys],
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

/** One audit public key (PEM or KeyObject), or several (the current and retired ones): any one may have signed. */
export type AuditPublicKeys = string | KeyObject | readonly (string | KeyObject)[]

/** The keys as KeyObjects, read once for many verifications. */
export function publicKeyObjects(keys: AuditPublicKeys): KeyObject[] {
  return (Array.isArray(keys) ? keys : [keys]).map((key: string | KeyObject) => (typeof key === 'string' ? createPublicKey(key) : key))
}

/** True when `signature` is `payload` signed by the private half of one of `publicKeys`. */
export function verifySignature(publicKeys: AuditPublicKeys, payload: string, signature: Uint8Array): boolean {
  const data = Buffer.from(payload, 'utf8')
  return publicKeyObjects(publicKeys).some((publicKey) => {
    try {
      return verify(null, data, publicKey, signature)
    } catch {
      return false
    }
  })
}
