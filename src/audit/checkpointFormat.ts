import { type AuditPublicKeys, verifySignature } from '../crypto/signingKey.js'

/** A signed statement that the chain had `hash` at `sequence`. */
export interface SignedCheckpoint {
  readonly id?: string
  readonly sequence: bigint
  readonly hash: Uint8Array
  readonly createdAt: Date
  readonly signature: Uint8Array
}

export const CHECKPOINT_PAYLOAD_VERSION = 'custos-audit/v1'

/** The exact bytes signed (as UTF-8): `custos-audit/v1\n<sequence>\n<hash hex>\n<time ISO 8601 UTC ms>\n`. */
export function checkpointPayload(checkpoint: Pick<SignedCheckpoint, 'sequence' | 'hash' | 'createdAt'>): string {
  const hash = Buffer.from(checkpoint.hash).toString('hex')
  return `${CHECKPOINT_PAYLOAD_VERSION}\n${checkpoint.sequence}\n${hash}\n${checkpoint.createdAt.toISOString()}\n`
}

export function checkpointSignatureValid(checkpoint: SignedCheckpoint, publicKeys: AuditPublicKeys): boolean {
  return verifySignature(publicKeys, checkpointPayload(checkpoint), checkpoint.signature)
}
