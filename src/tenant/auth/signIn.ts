import type { AuditEntry } from '../../audit/recorder.js'
import { runCommand } from '../command.js'
import { type TenantConfig, loadTenantConfig } from '../config/tenantConfig.js'
import type { TenantContext } from '../context.js'
import { fail, succeed } from '../outcome.js'
import { findPersonByEmail, normalizeEmail } from '../persons/persons.js'
import { type SecondFactorProof, checkSecondFactor, visibleSecondFactorProblem } from './otp.js'
import { type HoldTurn, inTurn } from './inTurn.js'
import { verifyPassword } from './passwords.js'
import { type SessionRequest, openPersonSession } from './sessionLifetime.js'
import { ipLimitFromLog, ipLimitInTurn, signInBackoff } from './throttle.js'

export type SignInErrorCode =
  | 'INVALID_CREDENTIALS'
  | 'UNKNOWN_EMAIL'
  | 'INVALID_PASSWORD'
  | 'PERSON_DISABLED'
  | 'NO_PASSWORD_SET'
  | 'OTP_REQUIRED'
  | 'INVALID_OTP_TOKEN'
  | 'RATE_LIMIT_EXCEEDED'

/** Why a sign-in was refused, as recorded; the client may be told less (visibleCode). */
type SignInProblem = SignInErrorCode | 'INVALID_BACKUP_CODE'

export interface SignInInput extends SessionRequest, SecondFactorProof {
  readonly email: string
  readonly password: string
}

/** What the client is told: the real reason, unless the configuration says not to reveal it. */
function visibleCode(code: SignInProblem, login: TenantConfig['login']): SignInErrorCode {
  // A disabled person is refused before their password is checked, and told apart from a wrong
  // password only when unknown emails are too: PERSON_DISABLED for the right password alone told
  // whether a guess was right.
  if ((code === 'UNKNOWN_EMAIL' || code === 'PERSON_DISABLED') && !login.revealUserExists) return 'INVALID_CREDENTIALS'
  if ((code === 'INVALID_PASSWORD' || code === 'NO_PASSWORD_SET') && !login.revealLoginMethod) return 'INVALID_CREDENTIALS'
  if (code === 'INVALID_BACKUP_CODE') return visibleSecondFactorProblem(code)
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
 * An unknown email costs the same password work as a known one; an attempt
 * refused by the per-IP limit or the backoff costs none (unless the failure
 * refusing it was recorded by another instance while its password was checked).
 */
export async function signIn(context: TenantContext, input: SignInInput) {
  const config = await loadTenantConfig(context.prisma)
  const person = await findPersonByEmail(context.prisma, input.email)
  // Attempts for one person (or one typed identifier) take turns, so each reads the failures before it.
  return inTurn(`sign-in:${person?.id ?? normalizeEmail(input.email)}`, (holdTurn) => attempt(context, input, config, person, holdTurn))
}

async function attempt(
  context: TenantContext,
  input: SignInInput,
  config: TenantConfig,
  person: Awaited<ReturnType<typeof findPersonByEmail>>,
  holdTurn: HoldTurn,
) {
  const { prisma, actor } = context
  const who = { identifier: input.email, personId: person?.id ?? null }
  // Read and verified before the transaction opens, so the password work holds no connection.
  const ipWait = await ipLimitFromLog(prisma, 'login', config.rateLimits.loginPerIp, actor.client.ip)
  const earlyWait = ipWait ?? (await signInBackoff(prisma, config.login, who))
  const passwordMatches = earlyWait === null && (await verifyPassword(person?.passwordHash, input.password))
  return runCommand(prisma, actor, async ({ tx, audit, commitRefusal, attempting }) => {
    await holdTurn(tx)
    // Read again holding the turns (the person's, then the address's): attempts elsewhere may have failed meanwhile.
    const ipWaitNow = ipWait ?? (await ipLimitInTurn(tx, 'login', config.rateLimits.loginPerIp, actor.client.ip))
    const retryAfter = ipWaitNow ?? earlyWait ?? (await signInBackoff(tx, config.login, who))
    const entry: Omit<AuditEntry<'login'>, 'success'> = {
      type: 'login',
      personInputIdentifier: input.email,
      personId: person?.id ?? null,
    }
    attempting(entry)
    // Nothing has changed before a refusal: it commits with its entry while the turn is held, for the next attempt to count.
    const refuse = (code: SignInProblem) => {
      commitRefusal()
      audit({ ...entry, success: false, errorCode: code })
      const shown = visibleCode(code, config.login)
      return fail(shown, messages[shown])
    }

    if (retryAfter !== null) {
      audit({ ...entry, success: false, errorCode: 'RATE_LIMIT_EXCEEDED', metadata: { retryAfter, reason: ipWaitNow !== null ? 'ip' : 'backoff' } })
      return fail('RATE_LIMIT_EXCEEDED' as SignInErrorCode, messages.RATE_LIMIT_EXCEEDED, { retryAfter })
    }
    if (!person) return refuse('UNKNOWN_EMAIL')
    if (person.disabledAt) return refuse('PERSON_DISABLED')
    if (!person.passwordHash) return refuse('NO_PASSWORD_SET')
    if (!passwordMatches) return refuse('INVALID_PASSWORD')
    const secondFactor = await checkSecondFactor(tx, context.encryptionKey, person, input)
    if (secondFactor.problem) return refuse(secondFactor.problem)

    const session = await openPersonSession(context, tx, config.login, person.identityId, input)
    audit({ ...entry, success: true, metadata: { sessionId: session.id, ...(secondFactor.backupCodeUsed ? { backupCodeUsed: true } : {}) } })
    return succeed({ token: session.token, person })
  })
}
