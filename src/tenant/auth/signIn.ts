import type { AuditEntry } from '../../audit/recorder.js'
import { openSession } from '../apiKeys/sessions.js'
import { runCommand } from '../command.js'
import { type TenantConfig, loadTenantConfig } from '../config/tenantConfig.js'
import type { TenantContext } from '../context.js'
import { fail, succeed } from '../outcome.js'
import { findPersonByEmail } from '../persons/persons.js'
import { verifyPassword } from './passwords.js'
import { sessionMinutes } from './sessionLifetime.js'

export type SignInErrorCode =
  | 'INVALID_CREDENTIALS'
  | 'UNKNOWN_EMAIL'
  | 'INVALID_PASSWORD'
  | 'PERSON_DISABLED'
  | 'NO_PASSWORD_SET'
  | 'OTP_REQUIRED'
  | 'INVALID_OTP_TOKEN'
  | 'RATE_LIMIT_EXCEEDED'

export interface SignInInput {
  readonly email: string
  readonly password: string
  /** Minutes of idle lifetime. */
  readonly expiration?: number | null
  readonly otpToken?: string | null
  readonly trustForwardedClientInfo?: boolean | null
}

/** What the client is told: the real reason, unless the configuration says not to reveal it. */
function visibleCode(code: SignInErrorCode, login: TenantConfig['login']): SignInErrorCode {
  if (code === 'UNKNOWN_EMAIL' && !login.revealUserExists) return 'INVALID_CREDENTIALS'
  if ((code === 'INVALID_PASSWORD' || code === 'NO_PASSWORD_SET') && !login.revealLoginMethod) return 'INVALID_CREDENTIALS'
  return code
}

const messages: Record<SignInErrorCode, string> = {
  INVALID_CREDENTIALS: 'The email or password is not correct.',
  UNKNOWN_EMAIL: 'No person has this email.',
  INVALID_PASSWORD: 'The password is not correct.',
  NO_PASSWORD_SET: 'This person has no password; use another sign-in method.',
  PERSON_DISABLED: 'This person is disabled.',
  OTP_REQUIRED: 'A one-time code is required.',
  INVALID_OTP_TOKEN: 'The one-time code is not valid.',
  RATE_LIMIT_EXCEEDED: 'Too many attempts; try again later.',
}

/**
 * Password sign-in. Every attempt is recorded as `login`, failures with the
 * real reason in error_code even when the client sees INVALID_CREDENTIALS.
 * An unknown email costs the same password work as a known one.
 */
export function signIn(context: TenantContext, input: SignInInput) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit, actor }) => {
    const config = await loadTenantConfig(tx)
    const person = await findPersonByEmail(tx, input.email)
    const entry: Omit<AuditEntry<'login'>, 'success'> = {
      type: 'login',
      personInputIdentifier: input.email,
      personId: person?.id ?? null,
    }
    const refuse = (code: SignInErrorCode) => {
      audit({ ...entry, success: false, errorCode: code })
      const shown = visibleCode(code, config.login)
      return fail(shown, messages[shown])
    }

    const passwordMatches = await verifyPassword(person?.passwordHash, input.password)
    if (!person) return refuse('UNKNOWN_EMAIL')
    if (!person.passwordHash) return refuse('NO_PASSWORD_SET')
    if (!passwordMatches) return refuse('INVALID_PASSWORD')
    if (person.disabledAt) return refuse('PERSON_DISABLED')

    const trustForwarded = Boolean(input.trustForwardedClientInfo && context.caller?.trustForwardedInfo)
    const session = await openSession(
      tx,
      person.identityId,
      sessionMinutes(config.login, input.expiration),
      actor.client,
      trustForwarded,
    )
    audit({ ...entry, success: true, metadata: { sessionId: session.id } })
    return succeed({ token: session.token, person })
  })
}
