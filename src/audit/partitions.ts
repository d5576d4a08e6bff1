import type { Logger } from 'pino'
import type { AuditSigner } from '../crypto/signingKey.js'
import type { Database, SqlSession } from '../db/database.js'
import { retentionPayload } from './checkpointFormat.js'
import { createCheckpoint } from './checkpoints.js'
import { recordAuditEntry, systemActor } from './recorder.js'

/**
 * person_auth_log is range-partitioned by month (UTC) of created_at, one
 * partition per month named person_auth_log_YYYY_MM, plus a DEFAULT partition
 * so an insert never fails for want of one. This keeps partitions ready ahead
 * and drops whole months past retention, each after a signed checkpoint of its
 * last entry and with an auth_log_retention entry. Rows are never deleted one by one.
 */

export interface PartitionPolicy {
  /** Months kept ready after the current one. */
  readonly forwardMonths: number
  /** The current month and this many before it are kept, older months dropped; undefined keeps everything. */
  readonly retentionMonths: number | undefined
}

export interface PartitionReport {
  readonly created: string[]
  readonly dropped: string[]
  /** Why retention stopped early, when it did. */
  readonly retentionStopped?: string
}

const DEFAULT_PARTITION = 'person_auth_log_default'
const MONTH_PARTITION = /^person_auth_log_(\d{4})_(\d{2})$/

const monthStart = (year: number, monthIndex: number) => new Date(Date.UTC(year, monthIndex, 1))
const isoDate = (date: Date) => date.toISOString().slice(0, 10)

export async function maintainPartitions(db: Database, signer: AuditSigner, logger: Logger, policy: PartitionPolicy): Promise<PartitionReport> {
  const now = new Date()
  const created = await createForwardPartitions(db, now, policy.forwardMonths)
  for (const name of created) logger.info({ partition: name }, 'audit log partition created')
  if (policy.retentionMonths === undefined) return { created, dropped: [] }
  // The current month and the retentionMonths before it stay; what ended before them goes.
  const cutoff = monthStart(now.getUTCFullYear(), now.getUTCMonth() - policy.retentionMonths)
  const { dropped, stopped } = await dropExpiredPartitions(db, signer, logger, cutoff)
  return { created, dropped, ...(stopped ? { retentionStopped: stopped } : {}) }
}

/** Partitions for this month and the next `forwardMonths`, where missing; returns the names created. */
export async function createForwardPartitions(db: Database, now: Date, forwardMonths: number): Promise<string[]> {
  const created: string[] = []
  await db.session(async (session) => {
    for (let ahead = 0; ahead <= forwardMonths; ahead++) {
      const month = monthStart(now.getUTCFullYear(), now.getUTCMonth() + ahead)
      // A function running as the table's owner, so the least-privilege role can call it too (for these months only).
      const [row] = await session.query<{ name: string | null }>('SELECT person_auth_log_create_partition_ahead($1::date) AS name', [isoDate(month)])
      if (row?.name) created.push(row.name)
    }
  })
  return created
}

interface Candidate {
  readonly name: string
  /** Start and end of what it holds: the month's bounds, or the default partition's oldest and newest entry. */
  readonly rangeStart: Date
  readonly rangeEnd: Date
  readonly firstSequence: bigint | null
  readonly lastSequence: bigint | null
}

async function expiredPartitions(session: SqlSession, cutoff: Date): Promise<Candidate[]> {
  const partitions = await session.query<{ name: string }>(
    `SELECT child.relname AS name FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid
      WHERE pg_inherits.inhparent = 'person_auth_log'::regclass`,
  )
  const candidates: Candidate[] = []
  for (const { name } of partitions) {
    const month = MONTH_PARTITION.exec(name)
    const extent = await partitionExtent(session, name)
    if (month) {
      const rangeStart = monthStart(Number(month[1]), Number(month[2]) - 1)
      const rangeEnd = monthStart(rangeStart.getUTCFullYear(), rangeStart.getUTCMonth() + 1)
      if (rangeEnd <= cutoff) candidates.push({ name, rangeStart, rangeEnd, ...extent })
    } else if (name === DEFAULT_PARTITION && extent.newest && extent.newest < cutoff) {
      candidates.push({ name, rangeStart: extent.oldest!, rangeEnd: extent.newest, ...extent })
    }
  }
  // Oldest entries first: the chain must lose a prefix, never a piece from its middle.
  return candidates.sort((a, b) => (a.firstSequence ?? -1n) < (b.firstSequence ?? -1n) ? -1 : 1)
}

async function partitionExtent(session: SqlSession, name: string) {
  const [row] = await session.query<{ first: string | null; last: string | null; oldest: Date | null; newest: Date | null }>(
    `SELECT min(sequence)::text AS first, max(sequence)::text AS last, min(created_at) AS oldest, max(created_at) AS newest FROM "${name}"`,
  )
  return {
    firstSequence: row?.first ? BigInt(row.first) : null,
    lastSequence: row?.last ? BigInt(row.last) : null,
    oldest: row?.oldest ? new Date(row.oldest) : null,
    newest: row?.newest ? new Date(row.newest) : null,
  }
}

/** Rolls back a drop: the partition holds entries beyond the checkpoint signed for it. */
class PartitionOutgrown extends Error {
  constructor(readonly lastSequence: string | null) {
    super(`the partition now ends at entry ${lastSequence}`)
  }
}

async function dropExpiredPartitions(
  db: Database,
  signer: AuditSigner,
  logger: Logger,
  cutoff: Date,
): Promise<{ dropped: string[]; stopped?: string }> {
  const dropped: string[] = []
  const stop = (reason: string) => {
    logger.warn({ reason }, 'audit log retention stopped')
    return { dropped, stopped: reason }
  }
  const candidates = await db.session(async (session) => {
    const [owner] = await session.query<{ owns: boolean }>(
      `SELECT pg_has_role(current_user, relowner, 'USAGE') AS owns FROM pg_class WHERE oid = 'person_auth_log'::regclass`,
    )
    return owner?.owns ? expiredPartitions(session, cutoff) : undefined
  })
  if (!candidates) {
    return stop('the database role does not own person_auth_log; run `custos partitions` as the owner to drop expired partitions')
  }
  for (const candidate of candidates) {
    let checkpoint: { sequence: bigint; hash: Uint8Array } | undefined
    if (candidate.lastSequence !== null) {
      const interleaved = await db.session((session) =>
        session.query(`SELECT 1 FROM person_auth_log WHERE sequence <= $1::bigint AND tableoid <> '"${candidate.name}"'::regclass LIMIT 1`, [
          candidate.lastSequence!.toString(),
        ]),
      )
      if (interleaved.length > 0) return stop(`${candidate.name} is not the oldest part of the chain: older entries are elsewhere`)
      const signed = await createCheckpoint(db, signer, { reason: 'retention', at: candidate.lastSequence })
      if (!signed.ok) return stop(`${candidate.name} is kept: ${signed.error.developerMessage}`)
      checkpoint = signed.result
    }
    const outgrown = await db.prisma.$transaction(async (tx) => {
      // Detach first: taking the table lock before the chain head cannot deadlock with writers, who take them the other way round.
      await tx.$executeRawUnsafe(`ALTER TABLE person_auth_log DETACH PARTITION "${candidate.name}"`)
      // The default partition takes the inserts of a month without a partition: entries committed since its extent was read
      // are past the checkpoint and must stay. Detached, it takes no more.
      const [held] = await tx.$queryRawUnsafe<{ last: string | null }[]>(`SELECT max(sequence)::text AS last FROM "${candidate.name}"`)
      if ((held?.last ?? null) !== (candidate.lastSequence?.toString() ?? null)) throw new PartitionOutgrown(held?.last ?? null)
      await tx.$executeRawUnsafe(`DROP TABLE "${candidate.name}"`)
      if (candidate.name === DEFAULT_PARTITION) {
        await tx.$executeRawUnsafe(`CREATE TABLE "${DEFAULT_PARTITION}" PARTITION OF person_auth_log DEFAULT`)
        await tx.$executeRawUnsafe(`SELECT person_auth_log_protect_partition('${DEFAULT_PARTITION}')`)
      }
      await recordAuditEntry(tx, systemActor, {
        type: 'auth_log_retention',
        success: true,
        eventData: {
          partition: candidate.name,
          rangeStart: candidate.rangeStart.toISOString(),
          rangeEnd: candidate.rangeEnd.toISOString(),
          ...(checkpoint
            ? {
                checkpointSequence: checkpoint.sequence.toString(),
                checkpointHash: Buffer.from(checkpoint.hash).toString('hex'),
                retentionSignature: signer
                  .sign(retentionPayload({ partition: candidate.name, checkpointSequence: checkpoint.sequence, checkpointHash: checkpoint.hash }))
                  .toString('base64'),
              }
            : {}),
        },
      })
    }).then(
      () => undefined,
      (error: unknown) => {
        if (error instanceof PartitionOutgrown) return error
        throw error
      },
    )
    if (outgrown) return stop(`${candidate.name} is kept: it took entries up to ${outgrown.lastSequence} after its checkpoint at ${candidate.lastSequence}`)
    logger.info({ partition: candidate.name, checkpointSequence: checkpoint?.sequence.toString() }, 'audit log partition dropped by retention')
    dropped.push(candidate.name)
  }
  return { dropped }
}
