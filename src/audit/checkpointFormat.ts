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

/**
 * What retention signs when it drops the oldest entries up to a checkpoint, kept in the
 * auth_log_retention entry: anyone who may insert into the log can write such an entry, but only
 * the key holder can say that entries up to `sequence` are gone on purpose. The checkpoint's own
 * payload (above) stays as it is, so it says nothing about why it was taken.
 */
export interface RetentionStatement {
  readonly partition: string
  readonly checkpointSequence: bigint
  readonly checkpointHash: Uint8Array
}

export const RETENTION_PAYLOAD_VERSION = 'custos-audit-retention/v1'

/** The exact bytes signed (as UTF-8): `custos-audit-retention/v1\n<checkpoint sequence>\n<checkpoint hash hex>\n<partition>\n`. */
export function retentionPayload(statement: RetentionStatement): string {
  const hash = Buffer.from(statement.checkpointHash).toString('hex')
  return `${RETENTION_PAYLOAD_VERSION}\n${statement.checkpointSequence}\n${hash}\n${statement.partition}\n`
}

export function retentionSignatureValid(statement: RetentionStatement, signature: Uint8Array, publicKeys: AuditPublicKeys): boolean {
  return verifySignature(publicKeys, retentionPayload(statement), signature)
}
