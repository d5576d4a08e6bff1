import type { KeyObject } from 'node:crypto'
import { resolve } from 'node:path'
import { z } from 'zod'
import { parseEncryptionKey } from './crypto/encryption.js'
import { parsePublicKeys, parseSigningKey } from './crypto/signingKey.js'
import { normalizeIp } from './http/clientInfo.js'
import { type PrivilegePattern, type RoleGrants, isGlobalRole, isKnownPrivilegePattern } from './tenant/permissions.js'

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/**
 * Decimal digits only: z.coerce.number() read '' and ' ' as 0 (PORT= listened on a random
 * port, CUSTOS_AUDIT_CHECKPOINT_ENTRIES= turned checkpoints off) and took 0x50 or 1e1.
 */
const wholeNumber = (min: number, max = Number.MAX_SAFE_INTEGER, message?: string) =>
  z.string().regex(/^\d+$/, message ?? 'must be a whole number').transform(Number).pipe(z.number().min(min, message).max(max, message))

/** Bearer tokens are matched as one run of non-space characters (src/http/context.ts). */
const bearerToken = z.string().min(20, 'must be at least 20 characters').regex(/^\S+$/, 'must not contain spaces').optional()

const environmentSchema = z.object({
  PORT: wholeNumber(0, 65_535).default(4000),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional()
    .or(z.literal('').transform(() => undefined)),
  CUSTOS_DATA_DIR: z.string().min(1).default('./data'),
  CUSTOS_ROOT_TOKEN: bearerToken,
  CUSTOS_LOGIN_TOKEN: bearerToken,
  CUSTOS_TRUSTED_PROXIES: z
    .string()
    .default('')
    .transform((value, context) => {
      const entries = value.split(',').map((entry) => entry.trim()).filter(Boolean)
      const addresses = entries.map((entry) => normalizeIp(entry))
      const invalid = entries.filter((_, index) => !addresses[index])
      if (invalid.length > 0) context.addIssue({ code: 'custom', message: `not IP addresses: ${invalid.join(', ')}` })
      return new Set(addresses.filter((address): address is string => address !== null))
    }),
  CUSTOS_ROLE_GRANTS: z
    .string()
    .default('{}')
    .transform((value, context): RoleGrants => {
      let parsed: unknown
      try {
        parsed = JSON.parse(value)
      } catch {
        context.addIssue({ code: 'custom', message: 'must be a JSON object of role -> ["resource:privilege", ...]' })
        return {}
      }
      const grants = z.record(z.string(), z.array(z.string())).safeParse(parsed)
      if (!grants.success) {
        context.addIssue({ code: 'custom', message: 'must be a JSON object of role -> ["resource:privilege", ...]' })
        return {}
      }
      const unknownRoles = Object.keys(grants.data).filter((role) => !isGlobalRole(role))
      if (unknownRoles.length > 0) context.addIssue({ code: 'custom', message: `unknown roles: ${unknownRoles.join(', ')}` })
      const unknownPrivileges = Object.values(grants.data).flat().filter((pattern) => !isKnownPrivilegePattern(pattern))
      if (unknownPrivileges.length > 0) context.addIssue({ code: 'custom', message: `unknown privileges: ${unknownPrivileges.join(', ')}` })
      return grants.data as Record<string, PrivilegePattern[]>
    }),
  LOG_LEVEL: z.enum(logLevels).default('info'),
  CUSTOS_ENCRYPTION_KEY: z
    .string()
    .optional()
    .transform((value, context) => {
      if (!value) return undefined
      const key = parseEncryptionKey(value)
      if (!key) context.addIssue({ code: 'custom', message: 'must be 32 bytes written as base64 or 64 hex digits' })
      return key
    }),
  SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL')
    .optional()
    .or(z.literal('').transform(() => undefined)),
  CUSTOS_CAPTCHA_VERIFY_URL: z
    .string()
    .regex(/^https?:\/\//, 'must be an http:// or https:// URL')
    .optional()
    .or(z.literal('').transform(() => undefined)),
  CUSTOS_AUDIT_READS: z
    .enum(['true', 'false'], { message: 'must be true or false' })
    .default('false')
    .transform((value) => value === 'true'),
  CUSTOS_CURSOR_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  CUSTOS_SIGNING_KEY: z
    .string()
    .optional()
    .transform((value, context) => {
      if (!value) return undefined
      try {
        return parseSigningKey(value)
      } catch (error) {
        context.addIssue({ code: 'custom', message: (error as Error).message })
        return z.NEVER
      }
    }),
  CUSTOS_SIGNING_KEY_RETIRED: z
    .string()
    .optional()
    .transform((value, context) => {
      if (!value?.trim()) return []
      try {
        return parsePublicKeys(value)
      } catch (error) {
        context.addIssue({ code: 'custom', message: (error as Error).message })
        return z.NEVER
      }
    }),
  CUSTOS_AUDIT_FORWARD_MONTHS: wholeNumber(1, 120).default(3),
  // Empty is unset (everything kept). Not a union with '': a union's failure is only "Invalid input".
  CUSTOS_AUDIT_RETENTION_MONTHS: z
    .string()
    .optional()
    .transform((value) => value || undefined)
    .pipe(wholeNumber(1, undefined, 'must be a whole number of months, at least 1').optional()),
  CUSTOS_AUDIT_CHECKPOINT_ENTRIES: wholeNumber(0).default(10_000),
  CUSTOS_AUDIT_CHECKPOINT_SECONDS: wholeNumber(0).default(3600),
})

export interface AppConfig {
  readonly port: number
  /** PostgreSQL URL, or undefined for the embedded database in dataDir. */
  readonly databaseUrl: string | undefined
  readonly dataDir: string
  readonly rootToken: string | undefined
  readonly loginToken: string | undefined
  readonly trustedProxies: ReadonlySet<string>
  /** Privileges granted to roles beyond the defaults (CUSTOS_ROLE_GRANTS, src/tenant/permissions.ts). */
  readonly roleGrants: RoleGrants
  readonly logLevel: (typeof logLevels)[number]
  /** Without it, mail goes to the mail_outbox table. */
  readonly smtpUrl: string | undefined
  /** Seals secrets at rest (TOTP secrets, the captcha secret, project secrets). Required with DATABASE_URL. */
  readonly encryptionKey: Buffer | undefined
  /** Replaces every captcha provider's siteverify endpoint: for tests and self-hosted proxies only. */
  readonly captchaVerifyUrl: string | undefined
  /** Record every authLog read as an auth_log_read entry. */
  readonly auditReads: boolean
  /** Signs authLog cursors; unset, a key file in dataDir is used (src/audit/cursor.ts). */
  readonly cursorSecret: string | undefined
  /** Ed25519 key signing audit checkpoints; required with databaseUrl, else generated into dataDir. */
  readonly signingKey: KeyObject | undefined
  /** Public keys of signing keys rotated out: checkpoints they signed still verify (CUSTOS_SIGNING_KEY_RETIRED). */
  readonly retiredSigningKeys: readonly KeyObject[]
  readonly auditLog: AuditLogConfig
}

export interface AuditLogConfig {
  /** Month partitions kept ready ahead of the current month. */
  readonly forwardMonths: number
  /** The current month and this many before it are kept, older months dropped; undefined keeps everything. */
  readonly retentionMonths: number | undefined
  /** A checkpoint is signed once this many entries were added since the last (0: never by count). */
  readonly checkpointEntries: number
  /** … or once this many seconds passed with new entries (0: never by time). */
  readonly checkpointSeconds: number
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

/** Reads and validates the environment; every problem is named in one error. */
export function loadConfig(environment: NodeJS.ProcessEnv = process.env): AppConfig {
  const parsed = environmentSchema.safeParse(environment)
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`)
    throw new ConfigError(`Invalid configuration:\n${problems.join('\n')}`)
  }
  const env = parsed.data
  return {
    port: env.PORT,
    databaseUrl: env.DATABASE_URL,
    dataDir: resolve(env.CUSTOS_DATA_DIR),
    rootToken: env.CUSTOS_ROOT_TOKEN,
    loginToken: env.CUSTOS_LOGIN_TOKEN,
    trustedProxies: env.CUSTOS_TRUSTED_PROXIES,
    roleGrants: env.CUSTOS_ROLE_GRANTS,
    logLevel: env.LOG_LEVEL,
    smtpUrl: env.SMTP_URL,
    encryptionKey: env.CUSTOS_ENCRYPTION_KEY,
    captchaVerifyUrl: env.CUSTOS_CAPTCHA_VERIFY_URL,
    auditReads: env.CUSTOS_AUDIT_READS,
    cursorSecret: env.CUSTOS_CURSOR_SECRET,
    signingKey: env.CUSTOS_SIGNING_KEY,
    retiredSigningKeys: env.CUSTOS_SIGNING_KEY_RETIRED,
    auditLog: {
      forwardMonths: env.CUSTOS_AUDIT_FORWARD_MONTHS,
      retentionMonths: env.CUSTOS_AUDIT_RETENTION_MONTHS,
      checkpointEntries: env.CUSTOS_AUDIT_CHECKPOINT_ENTRIES,
      checkpointSeconds: env.CUSTOS_AUDIT_CHECKPOINT_SECONDS,
    },
  }
}
