import type { Prisma, PrismaClient } from '../../generated/prisma/client.js'
import type { Transaction } from '../command.js'
import { type RateLimitWindow, type TenantConfig, intervalMs } from '../config/tenantConfig.js'

/**
 * Brute-force protection. Sign-in backoff and the per-IP limits of flows that
 * have an event are counted from person_auth_log itself; sign-up, which has no
 * event, is counted in the rate_limit_hit table. Refused attempts
 * (RATE_LIMIT_EXCEEDED) never count, so waiting out the delay always helps.
 */

/** Seconds to wait; at least one. */
const secondsUntil = (moment: number, now: number) => Math.max(1, Math.ceil((moment - now) / 1000))

/** Failed sign-ins that say nothing about a guessed secret: neither counted nor a reset. */
const notAGuess = ['RATE_LIMIT_EXCEEDED', 'OTP_REQUIRED']

/** How many consecutive failures reach maxBackoff; more are never needed. */
function failuresToMax(login: TenantConfig['login']): number {
  const ratio = intervalMs(login.maxBackoff) / Math.max(1, intervalMs(login.baseBackoff))
  return Math.min(64, Math.ceil(Math.log2(Math.max(1, ratio))) + 1)
}

/**
 * The wait before the next sign-in for an identifier: after n consecutive
 * failed `login` entries within attemptWindow, baseBackoff * 2^(n-1) from the
 * last failure, capped at maxBackoff. A successful login, or a successful
 * password_reset of the person, ends the run. Returns null when not blocked.
 */
export async function signInBackoff(
  tx: Transaction,
  login: TenantConfig['login'],
  who: { readonly identifier: string; readonly personId: string | null },
  now = Date.now(),
): Promise<number | null> {
  const history = await tx.personAuthLog.findMany({
    where: {
      createdAt: { gte: new Date(now - intervalMs(login.attemptWindow)) },
      OR: [
        { type: 'login', personInputIdentifier: who.identifier },
        ...(who.personId
          ? [{ type: 'login', personId: who.personId }, { type: 'password_reset', success: true, personId: who.personId }]
          : []),
      ],
      AND: { OR: [{ errorCode: null }, { errorCode: { notIn: notAGuess } }] },
    },
    orderBy: { createdAt: 'desc' },
    select: { success: true, createdAt: true },
    take: failuresToMax(login) + 1,
  })
  const failures = history.findIndex((entry) => entry.success)
  const consecutive = failures === -1 ? history.length : failures
  if (consecutive === 0) return null
  const delay = Math.min(intervalMs(login.baseBackoff) * 2 ** (consecutive - 1), intervalMs(login.maxBackoff))
  const allowedAt = history[0]!.createdAt.getTime() + delay
  return allowedAt > now ? secondsUntil(allowedAt, now) : null
}

/**
 * Per-IP limit counted from the log: at most `limit` entries of `type` from
 * `ip` within the window (limit 0 turns the limit off). Returns the seconds
 * until the oldest counted entry leaves the window, or null when not blocked.
 */
export async function ipLimitFromLog(
  tx: Transaction,
  type: string,
  limit: RateLimitWindow,
  ip: string | null,
  now = Date.now(),
): Promise<number | null> {
  if (!ip || limit.limit === 0) return null
  const windowMs = intervalMs(limit.window)
  const where: Prisma.PersonAuthLogWhereInput = {
    type,
    clientIp: ip,
    createdAt: { gte: new Date(now - windowMs) },
    OR: [{ errorCode: null }, { errorCode: { not: 'RATE_LIMIT_EXCEEDED' } }],
  }
  if ((await tx.personAuthLog.count({ where })) < limit.limit) return null
  const oldestCounted = await tx.personAuthLog.findFirst({
    where,
    orderBy: { createdAt: 'desc' },
    skip: limit.limit - 1,
    select: { createdAt: true },
  })
  return secondsUntil((oldestCounted?.createdAt.getTime() ?? now) + windowMs, now)
}

/**
 * Per-IP limit for flows without a log event, counted in rate_limit_hit.
 * An allowed attempt is counted (outside any transaction, so a failed
 * attempt still counts); a refused one is not. Rows past the window are pruned.
 */
export async function ipLimitFromCounter(
  prisma: PrismaClient,
  bucket: string,
  limit: RateLimitWindow,
  ip: string | null,
  now = Date.now(),
): Promise<number | null> {
  if (!ip || limit.limit === 0) return null
  const windowMs = intervalMs(limit.window)
  const since = new Date(now - windowMs)
  await prisma.rateLimitHit.deleteMany({ where: { bucket, clientIp: ip, createdAt: { lt: since } } })
  const recent = await prisma.rateLimitHit.findMany({
    where: { bucket, clientIp: ip },
    orderBy: { createdAt: 'desc' },
    skip: limit.limit - 1,
    take: 1,
    select: { createdAt: true },
  })
  if (recent[0]) return secondsUntil(recent[0].createdAt.getTime() + windowMs, now)
  await prisma.rateLimitHit.create({ data: { bucket, clientIp: ip, createdAt: new Date(now) } })
  return null
}
