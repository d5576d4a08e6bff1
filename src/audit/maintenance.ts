import type { Logger } from 'pino'
import type { AuditLogConfig } from '../config.js'
import type { AuditSigner } from '../crypto/signingKey.js'
import type { Database } from '../db/database.js'
import { createCheckpoint, intervalCheckpointDue } from './checkpoints.js'
import { type PartitionReport, createForwardPartitions, maintainPartitions } from './partitions.js'

const PARTITION_INTERVAL_MS = 24 * 60 * 60 * 1000
const CHECKPOINT_POLL_MS = 60 * 1000

/** The log's background work while the server runs: partitions and interval checkpoints. */
export interface AuditMaintenance {
  /** Keeps partitions ahead and applies retention; runs at start (in the background) and every 24 h. */
  maintainPartitions(): Promise<PartitionReport>
  /** Signs an interval checkpoint if one is due; runs every minute (or every CUSTOS_AUDIT_CHECKPOINT_SECONDS if shorter). */
  checkpointIfDue(): Promise<void>
  /** Stops the timers and waits for work in progress. */
  stop(): Promise<void>
}

export async function startAuditMaintenance(db: Database, signer: AuditSigner, config: AuditLogConfig, logger: Logger): Promise<AuditMaintenance> {
  const log = logger.child({ component: 'audit-maintenance' })
  const startedAt = new Date()
  const running = new Set<Promise<unknown>>()
  // One run of each job at a time; the timers never keep the process alive.
  const exclusive = <T>(job: () => Promise<T>) => {
    let current: Promise<T> | undefined
    return () => {
      current ??= job().finally(() => {
        running.delete(current!)
        current = undefined
      })
      running.add(current)
      return current
    }
  }
  const partitions = exclusive(() =>
    maintainPartitions(db, signer, log, { forwardMonths: config.forwardMonths, retentionMonths: config.retentionMonths }),
  )
  const checkpoint = exclusive(async () => {
    const policy = { entries: config.checkpointEntries, seconds: config.checkpointSeconds, since: startedAt, now: new Date() }
    if (!(await intervalCheckpointDue(db, policy))) return
    const signed = await createCheckpoint(db, signer, { reason: 'interval' })
    if (signed.ok) log.info({ sequence: signed.result.sequence.toString() }, 'audit log checkpoint signed')
    else log.error({ code: signed.error.code, reason: signed.error.developerMessage }, 'audit log checkpoint refused')
  })
  const logFailure = (job: string) => (error: unknown) => log.error({ err: error, job }, 'audit log maintenance failed')

  // Inserts need this month's partition now; retention, which may have a backlog to verify, need not hold up the start.
  await createForwardPartitions(db, new Date(), config.forwardMonths).catch(logFailure('partitions'))
  void partitions().catch(logFailure('partitions'))
  const timers = [setInterval(() => void partitions().catch(logFailure('partitions')), PARTITION_INTERVAL_MS)]
  if (config.checkpointEntries > 0 || config.checkpointSeconds > 0) {
    const poll = config.checkpointSeconds > 0 ? Math.min(CHECKPOINT_POLL_MS, config.checkpointSeconds * 1000) : CHECKPOINT_POLL_MS
    timers.push(setInterval(() => void checkpoint().catch(logFailure('checkpoint')), poll))
  }
  for (const timer of timers) timer.unref()

  return {
    maintainPartitions: partitions,
    checkpointIfDue: checkpoint,
    async stop() {
      for (const timer of timers) clearInterval(timer)
      await Promise.allSettled([...running])
    },
  }
}
