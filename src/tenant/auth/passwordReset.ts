import type { AuditEntry } from '../../audit/recorder.js'
import type { OutgoingMail } from '../../mail/mailer.js'
import { closeSessions } from '../apiKeys/sessions.js'
import { runCommand } from '../command.js'
import { loadTenantConfig } from '../config/tenantConfig.js'
import type { TenantContext } from '../context.js'
import { fail, succeed } from '../outcome.js'
import type { PrismaClient } from '../../generated/prisma/client.js'
import { findPersonByEmail } from '../persons/persons.js'
import { type MailOptions, mailTemplateChoice } from './mailOptions.js'
import { hashPassword } from './passwords.js'
import { weakPasswordReasons } from './passwordPolicy.js'
import { consumePersonToken, findTokenByValue, findTokenRequest, issuePersonToken, matchesHash, spentProblem } from './personTokens.js'
import { ipLimitFromLog } from './throttle.js'

/** How long a reset token works. */
export const RESET_TOKEN_LIFETIME_MS = 60 * 60_000

/**
 * Mails a reset token (`password_reset_init`). Unknown and disabled emails get
 * the same answer and no mail, unless login.revealUserExists is on; their
 * attempt is recorded all the same, with the real reason.
 */
export async function createResetPasswordRequest(context: TenantContext, email: string, options: MailOptions | null | undefined) {
  const outcome = await runCommand(context.prisma, context.actor, async ({ tx, audit, actor }) => {
    const config = await loadTenantConfig(tx)
    const entry: Omit<AuditEntry<'password_reset_init'>, 'success'> = { type: 'password_reset_init', personInputIdentifier: email }
    const retryAfter = await ipLimitFromLog(tx, 'password_reset_init', config.rateLimits.passwordResetPerIp, actor.client.ip)
    if (retryAfter !== null) {
      audit({ ...entry, success: false, errorCode: 'RATE_LIMIT_EXCEEDED', metadata: { retryAfter, reason: 'ip' } })
      return fail('RATE_LIMIT_EXCEEDED' as const, 'Too many reset requests from this address; try again later.', { retryAfter })
    }
    const person = await findPersonByEmail(tx, email)
    if (!person || person.disabledAt || !person.email) {
      audit({ ...entry, personId: person?.id ?? null, success: false, errorCode: person ? 'PERSON_DISABLED' : 'PERSON_NOT_FOUND' })
      if (!person && config.login.revealUserExists) return fail('PERSON_NOT_FOUND' as const, 'No person has this email.')
      return succeed(null)
    }
    const issued = await issuePersonToken(tx, person.id, 'password_reset', RESET_TOKEN_LIFETIME_MS)
    audit({ ...entry, personId: person.id, success: true, metadata: { requestId: issued.requestId } })
    const mail: OutgoingMail = {
      to: person.email,
      type: 'RESET_PASSWORD_REQUEST',
      variables: { requestId: issued.requestId, token: issued.token, expiresAt: issued.expiresAt.toISOString() },
      ...(await mailTemplateChoice(tx, options)),
    }
    return succeed(mail)
  })
  if (!outcome.ok) return outcome
  if (outcome.result) context.mailer.sendInBackground(outcome.result)
  return succeed(null)
}

export type CheckResetPasswordTokenCode = 'VALID' | 'REQUEST_NOT_FOUND' | 'TOKEN_NOT_FOUND' | 'TOKEN_INVALID' | 'TOKEN_USED' | 'TOKEN_EXPIRED'

/** Whether a reset link still works, without using it. */
export async function checkResetPasswordToken(prisma: PrismaClient, requestId: string, token: string): Promise<CheckResetPasswordTokenCode> {
  const request = await findTokenRequest(prisma, requestId, 'password_reset')
  if (!request) return 'REQUEST_NOT_FOUND'
  if (!matchesHash(token, request.tokenHash)) return 'TOKEN_INVALID'
  return spentProblem(request) ?? 'VALID'
}

export type ResetPasswordErrorCode = 'TOKEN_NOT_FOUND' | 'TOKEN_INVALID' | 'TOKEN_USED' | 'TOKEN_EXPIRED' | 'PASSWORD_TOO_WEAK'

const resetMessages: Record<ResetPasswordErrorCode, string> = {
  TOKEN_NOT_FOUND: 'No reset request has this token.',
  TOKEN_INVALID: 'This token cannot reset a password.',
  TOKEN_USED: 'This token was used already.',
  TOKEN_EXPIRED: 'This token has expired.',
  PASSWORD_TOO_WEAK: 'The password does not meet the password policy.',
}

/**
 * Sets a new password with a reset token (`password_reset`): the token is
 * used up, every session of the person ends, and a running sign-in backoff
 * for the person is over.
 */
export function resetPassword(context: TenantContext, token: string, password: string) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    const request = await findTokenByValue(tx, token)
    const entry: Omit<AuditEntry<'password_reset'>, 'success'> = {
      type: 'password_reset',
      personId: request?.personId ?? null,
      metadata: request ? { requestId: request.id } : {},
    }
    /** `reason` is recorded when it says more than the answer. */
    const refuse = (code: ResetPasswordErrorCode, extra: Record<string, unknown> = {}, reason: string = code) => {
      audit({ ...entry, success: false, errorCode: reason })
      return fail(code, resetMessages[code], extra)
    }
    if (!request) return refuse('TOKEN_NOT_FOUND')
    if (request.type !== 'password_reset') return refuse('TOKEN_INVALID')
    const spent = spentProblem(request)
    if (spent) return refuse(spent)
    const reasons = weakPasswordReasons(password, (await loadTenantConfig(tx)).password)
    if (reasons.length > 0) return refuse('PASSWORD_TOO_WEAK', { weakPasswordReasons: reasons })
    const person = await tx.person.findUniqueOrThrow({ where: { id: request.personId } })
    if (person.disabledAt) return refuse('TOKEN_INVALID', {}, 'PERSON_DISABLED')
    if (!(await consumePersonToken(tx, request))) return refuse('TOKEN_USED')

    await tx.person.update({ where: { id: person.id }, data: { passwordHash: await hashPassword(password) } })
    await closeSessions(tx, person.identityId)
    audit({ ...entry, success: true })
    return succeed(null)
  })
}
