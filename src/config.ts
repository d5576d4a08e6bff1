import { resolve } from 'node:path'
import { z } from 'zod'
import { normalizeIp } from './http/clientInfo.js'

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

const environmentSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65_535).default(4000),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional()
    .or(z.literal('').transform(() => undefined)),
  CUSTOS_DATA_DIR: z.string().min(1).default('./data'),
  CUSTOS_ROOT_TOKEN: z.string().min(20, 'must be at least 20 characters').optional(),
  CUSTOS_LOGIN_TOKEN: z.string().min(20, 'must be at least 20 characters').optional(),
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
  LOG_LEVEL: z.enum(logLevels).default('info'),
  SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL')
    .optional()
    .or(z.literal('').transform(() => undefined)),
  CUSTOS_AUDIT_READS: z
    .enum(['true', 'false'], { message: 'must be true or false' })
    .default('false')
    .transform((value) => value === 'true'),
  CUSTOS_CURSOR_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
})

export interface AppConfig {
  readonly port: number
  /** PostgreSQL URL, or undefined for the embedded database in dataDir. */
  readonly databaseUrl: string | undefined
  readonly dataDir: string
  readonly rootToken: string | undefined
  readonly loginToken: string | undefined
  readonly trustedProxies: ReadonlySet<string>
  readonly logLevel: (typeof logLevels)[number]
  /** Without it, mail goes to the mail_outbox table. */
  readonly smtpUrl: string | undefined
  /** Record every authLog read as an auth_log_read entry. */
  readonly auditReads: boolean
  /** Signs authLog cursors; unset, a key file in dataDir is used (src/audit/cursor.ts). */
  readonly cursorSecret: string | undefined
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
    logLevel: env.LOG_LEVEL,
    smtpUrl: env.SMTP_URL,
    auditReads: env.CUSTOS_AUDIT_READS,
    cursorSecret: env.CUSTOS_CURSOR_SECRET,
  }
}
