import type { AuditActor, AuditEntry } from '../audit/recorder.js'
import { recordAuditEntry } from '../audit/recorder.js'
import { Prisma, type PrismaClient } from '../generated/prisma/client.js'
import type { Failure, Outcome } from './outcome.js'

export type Transaction = Prisma.TransactionClient

export interface CommandScope {
  readonly tx: Transaction
  readonly actor: AuditActor
  /** Queues an audit entry: written with the change on success; failure entries outlive the rollback. */
  audit(entry: AuditEntry): void
  /**
   * Lets this attempt's failure commit with its entries instead of rolling back, for a refusal
   * that changed nothing: a later attempt holding the same row lock then sees the failure in the
   * log (written after a rollback, it could arrive after that attempt has counted).
   */
  commitRefusal(): void
  /**
   * Names the authentication attempt this operation is: should it end in an unexpected error
   * with no failure entry queued, it is recorded as failed (INTERNAL_ERROR), so that no attempt
   * goes unlogged, least of all one that got past the password check.
   */
  attempting(entry: Omit<AuditEntry, 'success' | 'errorCode'>): void
}

/** The error code of an attempt that ended in an unexpected error. */
const UNEXPECTED_FAILURE = 'INTERNAL_ERROR'

class RolledBack {
  constructor(readonly outcome: Failure<string>) {}
}

/** How many times an operation runs when its transaction keeps losing a deadlock or serialization conflict. */
const CONFLICT_ATTEMPTS = 3

/**
 * Whether PostgreSQL ended the transaction to break a deadlock (40P01) or a serialization conflict
 * (40001): commands lock rows in the order their work needs them, and two commands of one person
 * (an email change voiding tokens, a sign-in using one) can meet in opposite orders. Nothing of it
 * was kept, so it is run again rather than answered as an internal error.
 */
function isTransientConflict(error: unknown): boolean {
  if (!(error instanceof Prisma.PrismaClientKnownRequestError)) return false
  const cause = (error.meta?.driverAdapterError as { cause?: { originalCode?: string; kind?: string } } | undefined)?.cause
  return error.code === 'P2034' || cause?.kind === 'TransactionWriteConflict' || cause?.originalCode === '40P01' || cause?.originalCode === '40001'
}

/**
 * Runs one tenant operation in a transaction together with its audit entries.
 * A successful outcome commits the change and its entries together.
 * A failed outcome, or an unexpected error, rolls every change back, then records its failure
 * entries on their own, so a refused sign-in is logged even though nothing else stays.
 * A transaction PostgreSQL ends to break a deadlock is run again, up to CONFLICT_ATTEMPTS times.
 */
export async function runCommand<Answer extends Outcome<unknown, string>>(
  prisma: PrismaClient,
  actor: AuditActor,
  work: (scope: CommandScope) => Promise<Answer>,
): Promise<Answer> {
  for (let attempt = 1; ; attempt++) {
    const last = attempt === CONFLICT_ATTEMPTS
    try {
      return await runCommandOnce(prisma, actor, work, last)
    } catch (error) {
      if (last || !isTransientConflict(error)) throw error
    }
  }
}

async function runCommandOnce<Answer extends Outcome<unknown, string>>(
  prisma: PrismaClient,
  actor: AuditActor,
  work: (scope: CommandScope) => Promise<Answer>,
  lastAttempt: boolean,
): Promise<Answer> {
  const entries: AuditEntry[] = []
  let attempt: Omit<AuditEntry, 'success' | 'errorCode'> | undefined
  try {
    return await prisma.$transaction(
      async (tx) => {
        let refusalCommits = false
        const outcome = await work({
          tx,
          actor,
          audit: (entry) => entries.push(entry),
          commitRefusal: () => (refusalCommits = true),
          attempting: (entry) => (attempt = entry),
        })
        if (!outcome.ok && !refusalCommits) throw new RolledBack(outcome)
        // Failure entries queued by a successful answer (one that hides a failure, such as a reset
        // request for an unknown email) are written too.
        for (const entry of entries) await recordAuditEntry(tx, actor, entry)
        return outcome
      },
      { timeout: 30_000, maxWait: 30_000 },
    )
  } catch (error) {
    if (error instanceof RolledBack) {
      await recordFailures(prisma, actor, entries)
      return error.outcome as Answer
    }
    // Run again: its entries are queued afresh then.
    if (!lastAttempt && isTransientConflict(error)) throw error
    const failedAttempt = attempt && !entries.some((entry) => !entry.success) ? [{ ...attempt, success: false, errorCode: UNEXPECTED_FAILURE }] : []
    // The unexpected error is the one to report: if the failures cannot be written either (the
    // database is down), that second error would hide the first.
    await recordFailures(prisma, actor, [...entries, ...failedAttempt]).catch(() => undefined)
    throw error
  }
}

/**
 * Records the failure entries of an attempt that rolled back, in a transaction of their own.
 * Its success entries are dropped: they describe changes that did not happen.
 */
async function recordFailures(prisma: PrismaClient, actor: AuditActor, entries: readonly AuditEntry[]): Promise<void> {
  const failures = entries.filter((entry) => !entry.success)
  if (failures.length === 0) return
  await prisma.$transaction(async (tx) => {
    for (const entry of failures) await recordAuditEntry(tx, actor, entry)
  })
}
