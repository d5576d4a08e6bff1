import { Prisma, type PrismaClient } from '../../generated/prisma/client.js'
import type { Transaction } from '../command.js'
import { type RateLimitWindow, type TenantConfig, intervalMs } from '../config/tenantConfig.js'
import { holdTurnInDatabase } from './inTurn.js'

/**
 * Brute-force protection. Sign-in backoff, the per-email backoff of the mailing
 * flows and the per-IP limits of flows that have an event are counted from
 * person_auth_log itself; sign-up, which has no event, is counted in the
 * rate_limit_hit table. Refused attempts (RATE_LIMIT_EXCEEDED) never count, so
 * waiting out the delay always helps.
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
  who: { readonly identifier: string | null; readonly personId: string | null },
  now = Date.now(),
): Promise<number | null> {
  const history = await tx.$queryRaw<{ success: boolean; createdAt: Date }[]>(signInHistorySql(who, new Date(now - intervalMs(login.attemptWindow)), failuresToMax(login) + 1))
  const failures = history.findIndex((entry) => entry.success)
  return backoffWait(login, history.slice(0, failures === -1 ? history.length : failures), now)
}

/** Failed passwordless sign-ins that were a wrong second-factor code: guesses like a wrong password. */
const secondFactorGuesses = ['INVALID_OTP_TOKEN', 'INVALID_BACKUP_CODE']

/**
 * The newest counted sign-in attempts for a typed email in any spelling (case, surrounding spaces:
 * matched as typed, an unknown email's backoff carried over to another spelling only for a known
 * person, which told the two apart), and for the person it names, with the person's successful
 * password resets, their own password changes (a wrong current password is a guess too) and their
 * passwordless sign-ins (a wrong TOTP or backup code is a guess, a success ends the run).
 * Served by the folded identifier index and the person index.
 */
export const signInHistorySql = (who: { readonly identifier: string | null; readonly personId: string | null }, since: Date, limit: number) => Prisma.sql`
  SELECT success, created_at AS "createdAt" FROM person_auth_log
   WHERE created_at >= ${since.toISOString()}::timestamptz
     AND (error_code IS NULL OR error_code <> ALL(${notAGuess}::text[]))
     AND ((type = 'login' AND lower(btrim(person_input_identifier)) = lower(btrim(${who.identifier})))
          ${who.personId ? Prisma.sql`OR (person_id = ${who.personId}::uuid AND (type = 'login' OR (type = 'password_reset' AND success)
               OR (type = 'password_change' AND target_person_id IS NULL AND (success OR error_code = 'INVALID_PASSWORD'))
               OR (type = 'passwordless_login' AND (success OR error_code = ANY(${secondFactorGuesses}::text[])))))` : Prisma.empty})
   ORDER BY created_at DESC LIMIT ${limit}`

/** After n attempts (newest first), the next waits baseBackoff * 2^(n-1) from the newest, capped at maxBackoff; null when not blocked. */
function backoffWait(login: TenantConfig['login'], attempts: readonly { createdAt: Date }[], now: number): number | null {
  if (attempts.length === 0) return null
  const delay = Math.min(intervalMs(login.baseBackoff) * 2 ** (attempts.length - 1), intervalMs(login.maxBackoff))
  const allowedAt = attempts[0]!.createdAt.getTime() + delay
  return allowedAt > now ? secondsUntil(allowedAt, now) : null
}

/** Refusals that mail nothing, so they are no attempt to count against an email. */
const mailedNothing = ['RATE_LIMIT_EXCEEDED', 'INVALID_CAPTCHA']

/**
 * The newest counted `type` entries for a typed identifier within the window,
 * however it was spelled (case, surrounding spaces), served by the index on
 * (lower(btrim(person_input_identifier)), created_at DESC).
 */
export const identifierAttemptsSql = (type: string, identifier: string, since: Date, limit: number) => Prisma.sql`
  SELECT created_at AS "createdAt" FROM person_auth_log
   WHERE lower(btrim(person_input_identifier)) = lower(btrim(${identifier})) AND type = ${type}
     AND created_at >= ${since.toISOString()}::timestamptz
     AND (error_code IS NULL OR error_code <> ALL(${mailedNothing}::text[]))
   ORDER BY created_at DESC LIMIT ${limit}`

/**
 * Per-email backoff of the flows that mail (password_reset_init,
 * passwordless_login_init), with the sign-in backoff's settings: every request
 * for the email, in any spelling, within attemptWindow is an attempt, whatever
 * came of it, so an unknown email is throttled exactly like a known one (the
 * log's success and person say whether the email exists; this does not look).
 * Only refusals that mailed nothing (mailedNothing) do not count.
 */
export async function emailBackoff(tx: Transaction, login: TenantConfig['login'], type: string, email: string, now = Date.now()) {
  const sql = identifierAttemptsSql(type, email, new Date(now - intervalMs(login.attemptWindow)), failuresToMax(login))
  return backoffWait(login, await tx.$queryRaw<{ createdAt: Date }[]>(sql), now)
}

/**
 * The seconds until the `limit`-th most recent counted attempt leaves the
 * window, read by `nthMostRecent(skip, since)`; null when fewer attempts are in it.
 */
async function ipWait(
  limit: RateLimitWindow,
  ip: string | null,
  now: number,
  nthMostRecent: (ip: string, skip: number, since: Date) => Promise<{ createdAt: Date } | null>,
): Promise<number | null> {
  if (!ip || limit.limit === 0) return null
  const windowMs = intervalMs(limit.window)
  const boundary = await nthMostRecent(ip, limit.limit - 1, new Date(now - windowMs))
  return boundary ? secondsUntil(boundary.createdAt.getTime() + windowMs, now) : null
}

/** Per-IP limit counted from the log: at most `limit` entries of `type` from `ip` within the window (limit 0: no limit). */
export function ipLimitFromLog(tx: Transaction, type: string, limit: RateLimitWindow, ip: string | null, now = Date.now()) {
  return ipWait(limit, ip, now, (clientIp, skip, since) =>
    tx.personAuthLog.findFirst({
      where: { type, clientIp, createdAt: { gte: since }, OR: [{ errorCode: null }, { errorCode: { not: 'RATE_LIMIT_EXCEEDED' } }] },
      orderBy: { createdAt: 'desc' },
      skip,
      select: { createdAt: true },
    }),
  )
}

/**
 * ipLimitFromLog for an attempt that takes the address's turn first, until `tx` ends: attempts
 * from one address (for different emails, which take no turns together) would all count the same
 * past and pass (20 sign-ins at once under a limit of 3: 14 checked). Each counts what those before
 * it committed; taken after any email's or person's turn, so waits never go round in a circle.
 */
export async function ipLimitInTurn(tx: Transaction, type: string, limit: RateLimitWindow, ip: string | null, now = Date.now()) {
  if (ip && limit.limit !== 0) await holdTurnInDatabase(tx, `ip-limit:${type}:${ip}`)
  return ipLimitFromLog(tx, type, limit, ip, now)
}

/**
 * Per-IP limit for flows without a log event, counted in rate_limit_hit.
 * An allowed attempt is counted (in a transaction of its own, committed before the attempt runs,
 * so a failed attempt still counts; holding the address's turn, as ipLimitInTurn does); a refused
 * one is not. Rows past the window are pruned.
 */
export async function ipLimitFromCounter(prisma: PrismaClient, bucket: string, limit: RateLimitWindow, ip: string | null, now = Date.now()) {
  if (!ip || limit.limit === 0) return null
  return prisma.$transaction(async (tx) => {
    await holdTurnInDatabase(tx, `ip-limit:${bucket}:${ip}`)
    const wait = await ipWait(limit, ip, now, async (clientIp, skip, since) => {
      await tx.rateLimitHit.deleteMany({ where: { bucket, clientIp, createdAt: { lt: since } } })
      return tx.rateLimitHit.findFirst({ where: { bucket, clientIp }, orderBy: { createdAt: 'desc' }, skip, select: { createdAt: true } })
    })
    if (wait === null) await tx.rateLimitHit.create({ data: { bucket, clientIp: ip, createdAt: new Date(now) } })
    return wait
  })
}

/** The per-address limit of a mailing flow. */
export const mailingIpLimit = (config: TenantConfig, type: 'password_reset_init' | 'passwordless_login_init') =>
  type === 'password_reset_init' ? config.rateLimits.passwordResetPerIp : config.rateLimits.passwordlessInitPerIp

/** Why a mailing request waits, and how long (seconds); null when it may go ahead. */
export async function mailingRequestWait(
  tx: Transaction,
  config: TenantConfig,
  type: 'password_reset_init' | 'passwordless_login_init',
  email: string,
  ip: string | null,
): Promise<{ retryAfter: number; reason: 'ip' | 'email' } | null> {
  const ipRetry = await ipLimitFromLog(tx, type, mailingIpLimit(config, type), ip)
  if (ipRetry !== null) return { retryAfter: ipRetry, reason: 'ip' }
  const emailRetry = await emailBackoff(tx, config.login, type, email)
  return emailRetry === null ? null : { retryAfter: emailRetry, reason: 'email' }
}

export const tooManyRequests = {
  ip: 'Too many requests from this address; try again later.',
  email: 'Too many requests for this email; try again later.',
} as const
