import type { AuditEntry } from '../../audit/recorder.js'
import type { OutgoingMail } from '../../mail/mailer.js'
import { closeSessions } from '../apiKeys/sessions.js'
import { runCommand } from '../command.js'
import type { TenantContext } from '../context.js'
import { fail, succeed } from '../outcome.js'
import type { Person, PersonToken, PrismaClient } from '../../generated/prisma/client.js'
import { findPersonByEmail } from '../persons/persons.js'
import { type MailOptions, mailTemplateChoice } from './mailOptions.js'
import { prepareNewPassword } from './passwords.js'
import { consumePersonToken, findTokenByValue, findTokenRequest, issuePersonToken, matchesHash, spentProblem } from './personTokens.js'
import { throughMailingRequestGate } from './mailingRequestGate.js'

/** How long a reset token works. */
export const RESET_TOKEN_LIFETIME_MS = 60 * 60_000

/**
 * Mails a reset token (`password_reset_init`). Unknown and disabled emails get
 * the same answer and no mail, unless login.revealUserExists is on; their
 * attempt is recorded all the same, with the real reason. Requests pass the
 * mailing-request gate first (throttles, captcha).
 */
export function createResetPasswordRequest(context: TenantContext, email: string, options: MailOptions | null | undefined, captchaToken?: string | null) {
  return throughMailingRequestGate(context, 'password_reset_init', email, captchaToken, async (config, passGate) => {
    const outcome = await runCommand(context.prisma, context.actor, async ({ tx, audit, commitRefusal }) => {
      const refusal = await passGate({ tx, commitRefusal })
      // Looked up first, so a refused request names the person too.
      const person = await findPersonByEmail(tx, email)
      const entry: Omit<AuditEntry<'password_reset_init'>, 'success'> = { type: 'password_reset_init', personInputIdentifier: email, personId: person?.id ?? null }
      if (refusal) {
        audit({ ...entry, success: false, errorCode: refusal.code, metadata: refusal.wait })
        return fail(refusal.code, refusal.message, { retryAfter: refusal.wait?.retryAfter })
      }
      if (!person || person.disabledAt || !person.email) {
        audit({ ...entry, success: false, errorCode: person ? 'PERSON_DISABLED' : 'PERSON_NOT_FOUND' })
        if (!person && config.login.revealUserExists) return fail('PERSON_NOT_FOUND' as const, 'No person has this email.')
        return succeed(null)
      }
      const issued = await issuePersonToken(tx, person.id, 'password_reset', RESET_TOKEN_LIFETIME_MS)
      const { template, recorded } = await mailTemplateChoice(tx, options, person.identityId)
      audit({ ...entry, success: true, metadata: { requestId: issued.requestId, ...recorded } })
      const mail: OutgoingMail = {
        to: person.email,
        type: 'RESET_PASSWORD_REQUEST',
        variables: { requestId: issued.requestId, token: issued.token, expiresAt: issued.expiresAt.toISOString() },
        ...template,
      }
      return succeed(mail)
    })
    if (!outcome.ok) return outcome
    if (outcome.result) context.mailer.sendInBackground(outcome.result)
    return succeed(null)
  })
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

interface Refusal {
  readonly code: ResetPasswordErrorCode
  readonly extra?: Record<string, unknown>
  /** Recorded instead of the code when it says more than the answer. */
  readonly reason?: string
}

/**
 * Why a reset cannot go ahead, or the person and the new password's hash. Decided
 * before the transaction opens, so the hash holds no connection, and a bad
 * token or a weak password costs none.
 */
async function prepareReset(
  prisma: PrismaClient,
  request: PersonToken | null,
  password: string,
): Promise<Refusal | { request: PersonToken; person: Person; passwordHash: string }> {
  if (!request) return { code: 'TOKEN_NOT_FOUND' }
  if (request.type !== 'password_reset') return { code: 'TOKEN_INVALID' }
  const spent = spentProblem(request)
  if (spent) return { code: spent }
  const newPassword = await prepareNewPassword(prisma, password)
  if (newPassword.weakReasons) return { code: 'PASSWORD_TOO_WEAK', extra: { weakPasswordReasons: newPassword.weakReasons } }
  const person = await prisma.person.findUniqueOrThrow({ where: { id: request.personId } })
  if (person.disabledAt) return { code: 'TOKEN_INVALID', reason: 'PERSON_DISABLED' }
  return { request, person, passwordHash: newPassword.hash }
}

/**
 * Sets a new password with a reset token (`password_reset`): the token is
 * used up, every session of the person ends, and a running sign-in backoff
 * for the person is over.
 */
export async function resetPassword(context: TenantContext, token: string, password: string) {
  const request = await findTokenByValue(context.prisma, token)
  const reset = await prepareReset(context.prisma, request, password)
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    const entry: Omit<AuditEntry<'password_reset'>, 'success'> = {
      type: 'password_reset',
      personId: request?.personId ?? null,
      metadata: request ? { requestId: request.id } : {},
    }
    const refuse = ({ code, extra = {}, reason = code }: Refusal) => {
      audit({ ...entry, success: false, errorCode: reason })
      return fail(code, resetMessages[code], extra)
    }
    if ('code' in reset) return refuse(reset)
    if (!(await consumePersonToken(tx, reset.request))) return refuse({ code: 'TOKEN_USED' })

    await tx.person.update({ where: { id: reset.person.id }, data: { passwordHash: reset.passwordHash } })
    await closeSessions(tx, reset.person.identityId)
    audit({ ...entry, success: true })
    return succeed(null)
  })
}
