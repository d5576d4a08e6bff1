import { openSession } from '../apiKeys/sessions.js'
import type { Transaction } from '../command.js'
import { type TenantConfig, intervalMs } from '../config/tenantConfig.js'
import type { TenantContext } from '../context.js'

/** The longest idle lifetime a session can hold: api_key.expiration is a 32-bit count of seconds (about 68 years). */
const LONGEST_SESSION_MINUTES = Math.floor((2 ** 31 - 1) / 60)

/**
 * A session's idle lifetime in minutes: what was asked for, else the default, never above the
 * configured maximum nor LONGEST_SESSION_MINUTES.
 */
export function sessionMinutes(login: TenantConfig['login'], requestedMinutes: number | null | undefined): number {
  const fallback = intervalMs(login.defaultTokenExpiration) / 60_000
  const maximum = login.maxTokenExpiration ? intervalMs(login.maxTokenExpiration) / 60_000 : Number.POSITIVE_INFINITY
  const wanted = requestedMinutes != null && requestedMinutes > 0 ? requestedMinutes : fallback
  return Math.max(1, Math.min(wanted, maximum, LONGEST_SESSION_MINUTES))
}

export interface SessionRequest {
  /** Minutes of idle lifetime. */
  readonly expiration?: number | null
  readonly trustForwardedClientInfo?: boolean | null
}

/**
 * Opens the session a sign-in hands out. Forwarded client info is trusted only
 * when asked for and the calling key itself is trusted with it.
 */
export function openPersonSession(
  context: TenantContext,
  tx: Transaction,
  login: TenantConfig['login'],
  identityId: string,
  request: SessionRequest,
) {
  const trustForwarded = Boolean(request.trustForwardedClientInfo && context.caller?.trustForwardedInfo)
  return openSession(tx, identityId, sessionMinutes(login, request.expiration), context.actor.client, trustForwarded)
}
