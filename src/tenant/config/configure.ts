import { isDeepStrictEqual } from 'node:util'
import safeRegex from 'safe-regex2'
import { z } from 'zod'
import { encryptText } from '../../crypto/encryption.js'
import type { Prisma } from '../../generated/prisma/client.js'
import { runCommand } from '../command.js'
import type { TenantContext } from '../context.js'
import { describeIssues, isJsonObject } from '../invalidInput.js'
import { fail, succeed } from '../outcome.js'
import { type TenantConfig, defaultTenantConfig, intervalMs, mergeConfig } from './tenantConfig.js'

/**
 * ConfigInput as the client sent it. An omitted field (or null on a field
 * that cannot be empty) leaves the stored value; null on a nullable field
 * (passwordless.url, password.pattern, login.maxTokenExpiration, captcha
 * provider/threshold) clears it; an empty captcha secret clears the secret.
 */
export interface ConfigInput {
  readonly signup?: { readonly requireEmailVerification?: boolean | null } | null
  readonly passwordless?: { readonly enabled?: string | null; readonly url?: string | null; readonly expiration?: string | null } | null
  readonly password?: {
    readonly minLength?: number | null
    readonly requireUppercase?: number | null
    readonly requireLowercase?: number | null
    readonly requireDigit?: number | null
    readonly requireSpecial?: number | null
    readonly pattern?: string | null
    readonly checkBlacklist?: boolean | null
    readonly checkHibp?: boolean | null
  } | null
  readonly login?: {
    readonly baseBackoff?: string | null
    readonly maxBackoff?: string | null
    readonly attemptWindow?: string | null
    readonly revealUserExists?: boolean | null
    readonly revealLoginMethod?: boolean | null
    readonly defaultTokenExpiration?: string | null
    readonly maxTokenExpiration?: string | null
  } | null
  readonly captcha?: { readonly provider?: string | null; readonly secret?: string | null; readonly threshold?: number | null } | null
  readonly rateLimits?: Partial<Record<RateLimitName, { readonly limit?: number | null; readonly window?: string | null } | null>> | null
}

export type RateLimitName = keyof TenantConfig['rateLimits']
export const passwordlessPolicies = ['always', 'never', 'optIn', 'optOut'] as const
export const captchaProviders = ['turnstile', 'hcaptcha', 'recaptchaV3'] as const

const YEAR_MS = 366 * 86_400_000

/** An ISO 8601 duration longer than zero and at most a year. */
const interval = z.string().superRefine((value, context) => {
  let ms: number
  try {
    ms = intervalMs(value)
  } catch {
    context.addIssue({ code: 'custom', message: `"${value}" is not an ISO 8601 duration such as PT15M` })
    return
  }
  if (ms <= 0 || ms > YEAR_MS) context.addIssue({ code: 'custom', message: `"${value}" must be longer than zero and at most a year` })
})
const count = (max: number) => z.number().int().min(0).max(max)
const pattern = z
  .string()
  .max(1_000)
  .superRefine((value, context) => {
    try {
      new RegExp(value, 'u')
    } catch {
      context.addIssue({ code: 'custom', message: 'is not a valid regular expression' })
      return
    }
    // Every sign-up and password change runs it on a password anyone may choose: a pattern that
    // backtracks exponentially, such as (a+)+$, would let one request hold the server for seconds.
    if (!safeRegex(value)) context.addIssue({ code: 'custom', message: 'nests repetitions (such as (a+)+), which can take exponential time; rewrite it' })
  })
const url = z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' })

/** Null on a field that cannot be empty means "leave as is", like omitting it. */
const keep = <T extends z.ZodType>(schema: T) => schema.nullish().transform((value) => value ?? undefined)

const section = <T extends z.ZodRawShape>(shape: T) => z.strictObject(shape).nullish().transform((value) => value ?? undefined)

const rateLimitWindow = section({ limit: keep(count(1_000_000)), window: keep(interval) })

const patchSchema = z.object({
  signup: section({ requireEmailVerification: keep(z.boolean()) }),
  passwordless: section({
    enabled: keep(z.enum(passwordlessPolicies)),
    url: url.nullish(),
    expiration: keep(interval),
  }),
  password: section({
    minLength: keep(z.number().int().min(1).max(1_024)),
    requireUppercase: keep(count(1_024)),
    requireLowercase: keep(count(1_024)),
    requireDigit: keep(count(1_024)),
    requireSpecial: keep(count(1_024)),
    pattern: pattern.nullish(),
    checkBlacklist: keep(z.boolean()),
    checkHibp: keep(z.boolean()),
  }),
  login: section({
    baseBackoff: keep(interval),
    maxBackoff: keep(interval),
    attemptWindow: keep(interval),
    revealUserExists: keep(z.boolean()),
    revealLoginMethod: keep(z.boolean()),
    defaultTokenExpiration: keep(interval),
    maxTokenExpiration: interval.nullish(),
  }),
  captcha: section({
    provider: z.enum(captchaProviders).nullish(),
    secret: keep(z.string().max(4_096)),
    threshold: z.number().min(0).max(1).nullish(),
  }),
  rateLimits: section({
    signUpPerIp: rateLimitWindow,
    loginPerIp: rateLimitWindow,
    passwordResetPerIp: rateLimitWindow,
    passwordlessInitPerIp: rateLimitWindow,
  }),
})

/** Rules that involve more than one field, checked on the configuration that would result. */
function crossFieldProblems(config: TenantConfig): string[] {
  const problems: string[] = []
  if (intervalMs(config.login.baseBackoff) > intervalMs(config.login.maxBackoff)) problems.push('login.baseBackoff must not exceed login.maxBackoff')
  if (config.login.maxTokenExpiration && intervalMs(config.login.defaultTokenExpiration) > intervalMs(config.login.maxTokenExpiration)) {
    problems.push('login.defaultTokenExpiration must not exceed login.maxTokenExpiration')
  }
  return problems
}

/** What the log keeps of the input: sections and windows sent as null carry nothing to record. */
function auditedInput(input: ConfigInput) {
  const { rateLimits, ...sections } = input
  const present = Object.fromEntries(Object.entries(sections).filter(([, value]) => value != null))
  if (!rateLimits) return present
  const windows = Object.entries(rateLimits)
    .filter(([, window]) => window != null)
    .map(([name, window]) => [name, Object.fromEntries(Object.entries(window ?? {}).filter(([, value]) => value != null))])
  return { ...present, rateLimits: Object.fromEntries(windows) }
}

/** The values `config` holds for the settings `shape` names (shape: an audited input; sections nest). */
function settingsAt(config: object, shape: Record<string, unknown>): Record<string, unknown> {
  const values = config as Record<string, unknown>
  return Object.fromEntries(
    Object.entries(shape).map(([key, value]) => [key, isJsonObject(value) ? settingsAt((values[key] ?? {}) as object, value) : (values[key] ?? null)]),
  )
}

/**
 * Changes the tenant configuration (Contember's `configure`). Invalid input
 * changes nothing. The stored row keeps only what was ever set, over the
 * built-in defaults; the captcha secret is stored encrypted and never read back.
 * The entry names the settings given with their values before and after; a
 * request that changes none of them answers ok and records nothing.
 */
export function configure(context: TenantContext, input: ConfigInput) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    const parsed = patchSchema.safeParse(input)
    if (!parsed.success) {
      return fail('INVALID_CONFIG' as const, `Invalid configuration: ${describeIssues(parsed.error, 'config')}`)
    }
    const patch: Record<string, unknown> = { ...parsed.data }
    const secret = parsed.data.captcha?.secret
    if (secret !== undefined) {
      patch.captcha = { ...parsed.data.captcha, secret: secret === '' ? null : encryptText(context.encryptionKey, secret, 'captcha.secret') }
    }

    // The row lock keeps two concurrent changes from overwriting each other.
    await tx.$executeRaw`INSERT INTO "config" ("id") VALUES (1) ON CONFLICT ("id") DO NOTHING`
    const [row] = await tx.$queryRaw<{ data: Prisma.JsonObject }[]>`SELECT "data" FROM "config" WHERE "id" = 1 FOR UPDATE`
    const stored = mergeConfig(row?.data ?? {}, patch)
    const problems = crossFieldProblems(mergeConfig(defaultTenantConfig, stored))
    if (problems.length > 0) return fail('INVALID_CONFIG' as const, `Invalid configuration: ${problems.join('; ')}`)

    const changed = auditedInput(input)
    const before = settingsAt(mergeConfig(defaultTenantConfig, row?.data ?? {}), changed)
    const after = settingsAt(mergeConfig(defaultTenantConfig, stored), changed)
    // A new captcha secret cannot be told from the stored one (sealed, and masked in the log): it always counts as a change.
    if (secret === undefined && isDeepStrictEqual(before, after)) return succeed(null)
    await tx.config.update({ where: { id: 1 }, data: { data: stored as Prisma.InputJsonObject } })
    audit({ type: 'tenant_config_change', success: true, eventData: { input: changed, before, after } })
    return succeed(null)
  })
}
