import { parse as parseDuration } from 'tinyduration'
import type { PrismaClient } from '../../generated/prisma/client.js'
import type { Transaction } from '../command.js'
import { isJsonObject } from '../invalidInput.js'

/** Intervals are ISO 8601 durations such as PT15M. */
export type Interval = string

export interface RateLimitWindow {
  readonly limit: number
  readonly window: Interval
}

/** Tenant configuration in Contember's `configure` shape. Stored as JSON over these defaults. */
export interface TenantConfig {
  readonly signup: { readonly requireEmailVerification: boolean }
  readonly passwordless: { readonly enabled: 'always' | 'never' | 'optIn' | 'optOut'; readonly url: string | null; readonly expiration: Interval }
  readonly password: {
    readonly minLength: number
    readonly requireUppercase: number
    readonly requireLowercase: number
    readonly requireDigit: number
    readonly requireSpecial: number
    readonly pattern: string | null
    readonly checkBlacklist: boolean
    readonly checkHibp: boolean
  }
  readonly login: {
    readonly baseBackoff: Interval
    readonly maxBackoff: Interval
    readonly attemptWindow: Interval
    /** Off by default: unknown emails and wrong passwords answer alike. */
    readonly revealUserExists: boolean
    readonly revealLoginMethod: boolean
    readonly defaultTokenExpiration: Interval
    readonly maxTokenExpiration: Interval | null
  }
  readonly captcha: { readonly provider: string | null; readonly secret: string | null; readonly threshold: number | null }
  readonly rateLimits: {
    readonly signUpPerIp: RateLimitWindow
    readonly loginPerIp: RateLimitWindow
    readonly passwordResetPerIp: RateLimitWindow
    readonly passwordlessInitPerIp: RateLimitWindow
  }
}

export const defaultTenantConfig: TenantConfig = {
  signup: { requireEmailVerification: false },
  passwordless: { enabled: 'never', url: null, expiration: 'PT5M' },
  password: {
    minLength: 8,
    requireUppercase: 0,
    requireLowercase: 0,
    requireDigit: 0,
    requireSpecial: 0,
    pattern: null,
    checkBlacklist: false,
    checkHibp: false,
  },
  login: {
    baseBackoff: 'PT1S',
    maxBackoff: 'PT5M',
    attemptWindow: 'PT5M',
    revealUserExists: false,
    revealLoginMethod: false,
    defaultTokenExpiration: 'PT30M',
    maxTokenExpiration: null,
  },
  captcha: { provider: null, secret: null, threshold: null },
  rateLimits: {
    signUpPerIp: { limit: 20, window: 'PT1H' },
    loginPerIp: { limit: 100, window: 'PT1M' },
    passwordResetPerIp: { limit: 10, window: 'PT1H' },
    passwordlessInitPerIp: { limit: 20, window: 'PT1H' },
  },
}

/** Deep-merges `patch` over `base`; `undefined` leaves a value as it is. */
export function mergeConfig<T>(base: T, patch: unknown): T {
  if (!isJsonObject(base) || !isJsonObject(patch)) return (patch === undefined ? base : patch) as T
  const merged: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(patch)) merged[key] = mergeConfig(merged[key], value)
  return merged as T
}

export async function loadTenantConfig(db: PrismaClient | Transaction): Promise<TenantConfig> {
  const stored = await db.config.findUnique({ where: { id: 1 } })
  return mergeConfig(defaultTenantConfig, stored?.data ?? {})
}

const secondsPer = { years: 365 * 86_400, months: 30 * 86_400, weeks: 7 * 86_400, days: 86_400, hours: 3_600, minutes: 60, seconds: 1 }

/** Length of an ISO 8601 duration in milliseconds; throws on a malformed one. */
export function intervalMs(interval: Interval): number {
  const parsed = parseDuration(interval)
  if (parsed.negative) throw new Error(`negative interval ${interval}`)
  let seconds = 0
  for (const [unit, factor] of Object.entries(secondsPer)) seconds += (parsed[unit as keyof typeof secondsPer] ?? 0) * factor
  return Math.round(seconds * 1000)
}
