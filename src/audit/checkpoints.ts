import type { AuditSigner } from '../crypto/signingKey.js'
import type { Database } from '../db/database.js'
import type { AuthLogCheckpointReason, PrismaClient } from '../generated/prisma/client.js'
import { type Outcome, fail, succeed } from '../tenant/outcome.js'
import { MAX_SEQUENCE } from './canonical.js'
import { checkpointPayload } from './checkpointFormat.js'
import { InvalidInputError } from '../tenant/invalidInput.js'
import { VerificationRangeError, verifyAuthLog } from './integrity.js'
import { type AuditActor, recordAuditEntry } from './recorder.js'

/**
 * Signed checkpoints: (sequence, hash, time) signed with the server's Ed25519
 * key after the chain up to that sequence was verified, so a checkpoint never
 * blesses a log that was already broken.
 */

export interface AuthLogCheckpoint {
  readonly id: string
  readonly sequence: bigint
  readonly hash: Uint8Array
  readonly createdAt: Date
  readonly signature: Uint8Array
  readonly reason: AuthLogCheckpointReason
}

export type CreateCheckpointCode = 'EMPTY_LOG' | 'CHAIN_BROKEN'

async function headSequence(db: Database): Promise<bigint> {
  const [head] = await db.session((session) => session.query<{ sequence: string }>('SELECT sequence::text AS sequence FROM person_auth_log_head'))
  return BigInt(head!.sequence)
}

/**
 * Why a checkpoint is signed. One made on request is an administrative action,
 * recorded as its actor's auth_log_checkpoint entry in the checkpoint's own
 * transaction. The server's own are not: an entry per interval checkpoint
 * would itself be the new entry that makes the next one due, on an idle log
 * too; a retention checkpoint is recorded in its auth_log_retention entry.
 */
export type CheckpointOccasion =
  | { readonly reason: 'on_demand'; readonly actor: AuditActor; readonly at?: bigint }
  | { readonly reason: 'interval' }
  | { readonly reason: 'retention'; readonly at: bigint }

/**
 * Verifies the chain from the last checkpoint up to `at` (default: the head),
 * then signs and stores a checkpoint of it. An `at` that names no entry (past the head, dropped by
 * retention, not a sequence number) is refused as InvalidInputError naming `sequence`.
 */
export async function createCheckpoint(
  db: Database,
  signer: AuditSigner,
  occasion: CheckpointOccasion,
): Promise<Outcome<AuthLogCheckpoint, CreateCheckpointCode>> {
  const at = 'at' in occasion ? occasion.at : undefined
  if (at !== undefined && (at < 1n || at > MAX_SEQUENCE)) throw new InvalidInputError(`sequence must be a sequence number from 1 to ${MAX_SEQUENCE}, not ${at}`, 'sequence')
  const sequence = at ?? (await headSequence(db))
  if (sequence === 0n) return fail('EMPTY_LOG', 'The audit log has no entries yet; there is nothing to sign.')
  const previous = await db.prisma.authLogCheckpoint.findFirst({
    where: { sequence: { lte: sequence } },
    orderBy: [{ sequence: 'desc' }, { createdAt: 'desc' }],
    select: { sequence: true },
  })
  const verification = await verifyAuthLog(db, {
    // A checkpoint at `sequence` already (retention signing again after a drop that failed): from the one before it.
    from: previous ? (previous.sequence < sequence ? previous.sequence + 1n : sequence) : undefined,
    to: sequence,
    publicKey: signer.verificationKeys,
  }).catch((error: unknown) => {
    throw error instanceof VerificationRangeError ? new InvalidInputError(error.messageNaming(() => 'sequence'), 'sequence') : error
  })
  if (!verification.ok) {
    const { reason: breakReason, message } = verification.firstBroken!
    return fail('CHAIN_BROKEN', `Not signed: the chain is broken (${breakReason}). ${message}`, { firstBroken: verification.firstBroken })
  }
  const unsigned = { sequence, hash: verification.lastHash, createdAt: new Date() }
  const data = {
    ...unsigned,
    hash: new Uint8Array(unsigned.hash),
    signature: new Uint8Array(signer.sign(checkpointPayload(unsigned))),
    reason: occasion.reason,
  }
  if (occasion.reason !== 'on_demand') return succeed(await db.prisma.authLogCheckpoint.create({ data }))
  const checkpoint = await db.prisma.$transaction(async (tx) => {
    const row = await tx.authLogCheckpoint.create({ data })
    await recordAuditEntry(tx, occasion.actor, {
      type: 'auth_log_checkpoint',
      success: true,
      eventData: { checkpointId: row.id, checkpointSequence: String(sequence), checkpointHash: unsigned.hash.toString('hex'), reason: occasion.reason },
    })
    return row
  })
  return succeed(checkpoint)
}

/** A checkpoint as authLogCheckpoints returns it, and as `custos export --checkpoints` writes it. */
export interface CheckpointJson {
  readonly id: string
  readonly sequence: number
  /** Lowercase hex. */
  readonly hash: string
  readonly createdAt: string
  readonly payload: string
  /** Base64. */
  readonly signature: string
  readonly reason: string
}

export const checkpointJson = (checkpoint: AuthLogCheckpoint): CheckpointJson => ({
  id: checkpoint.id,
  sequence: Number(checkpoint.sequence),
  hash: Buffer.from(checkpoint.hash).toString('hex'),
  createdAt: checkpoint.createdAt.toISOString(),
  payload: checkpointPayload(checkpoint),
  signature: Buffer.from(checkpoint.signature).toString('base64'),
  reason: checkpoint.reason.toUpperCase(),
})

/** Checkpoints, newest first. */
export async function listCheckpoints(prisma: PrismaClient, page: { limit: number; offset: number }): Promise<AuthLogCheckpoint[]> {
  return prisma.authLogCheckpoint.findMany({
    orderBy: [{ sequence: 'desc' }, { createdAt: 'desc' }, { id: 'desc' }],
    skip: page.offset,
    take: page.limit,
  })
}

/**
 * True when an interval checkpoint is due: `entries` new entries since the
 * last one, or `seconds` passed since it (or since `since` when there is none)
 * with at least one new entry. A 0 turns that trigger off.
 */
export async function intervalCheckpointDue(
  db: Database,
  policy: { entries: number; seconds: number; since: Date; now: Date },
): Promise<boolean> {
  const head = await headSequence(db)
  // One past the head signs nothing there is (verification reports it) and must not hold off the next.
  const last = await db.prisma.authLogCheckpoint.findFirst({
    where: { sequence: { lte: head } },
    orderBy: [{ sequence: 'desc' }, { createdAt: 'desc' }],
    select: { sequence: true, createdAt: true },
  })
  const added = head - (last?.sequence ?? 0n)
  if (added <= 0n) return false
  const byCount = policy.entries > 0 && added >= BigInt(policy.entries)
  const byTime = policy.seconds > 0 && policy.now.getTime() - (last?.createdAt ?? policy.since).getTime() >= policy.seconds * 1000
  return byCount || byTime
}
