import type { Logger } from 'pino'
import type { AuditActor } from '../audit/recorder.js'
import type { ApiKeyType, PrismaClient } from '../generated/prisma/client.js'
import type { Mailer } from '../mail/mailer.js'
import type { Permissions } from './permissions.js'

/** The authenticated caller: whoever holds the bearer token. */
export interface Caller {
  readonly identityId: string
  readonly personId: string | null
  readonly roles: readonly string[]
  readonly apiKeyId: string
  readonly apiKeyType: ApiKeyType
  readonly trustForwardedInfo: boolean
}

/** What every tenant operation gets: the database, the caller, and the audit actor. */
export interface TenantContext {
  readonly prisma: PrismaClient
  readonly mailer: Mailer
  /** Seals secrets at rest (src/crypto/encryption.ts). */
  readonly encryptionKey: Buffer
  /** Where captcha tokens are verified instead of the provider's endpoint (CUSTOS_CAPTCHA_VERIFY_URL). */
  readonly captchaVerifyUrl: string | undefined
  readonly caller: Caller | null
  readonly permissions: Permissions
  readonly actor: AuditActor
  readonly logger: Logger
}
