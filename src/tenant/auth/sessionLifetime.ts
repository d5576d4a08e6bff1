import { type TenantConfig, intervalMs } from '../config/tenantConfig.js'

/** A session's idle lifetime in minutes: what was asked for, else the default, never above the maximum. */
export function sessionMinutes(login: TenantConfig['login'], requestedMinutes: number | null | undefined): number {
  const fallback = intervalMs(login.defaultTokenExpiration) / 60_000
  const maximum = login.maxTokenExpiration ? intervalMs(login.maxTokenExpiration) / 60_000 : Number.POSITIVE_INFINITY
  const wanted = requestedMinutes != null && requestedMinutes > 0 ? requestedMinutes : fallback
  return Math.max(1, Math.min(wanted, maximum))
}
