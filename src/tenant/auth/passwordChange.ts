import type { AuditEntry } from '../../audit/recorder.js'
import type { Person } from '../../generated/prisma/client.js'
import { closeSessions } from '../apiKeys/sessions.js'
import { type CommandScope, runCommand } from '../command.js'
import type { TenantContext } from '../context.js'
import { fail, succeed } from '../outcome.js'
import { findPersonById } from '../persons/persons.js'
import { loadTenantConfig } from '../config/tenantConfig.js'
import { inTurn } from './inTurn.js'
import { type NewPassword, prepareNewPassword, verifyPassword } from './passwords.js'
import { signInBackoff } from './throttle.js'

type Refuse<Code extends string> = (code: Code, message: string, extra?: Record<string, unknown>) => ReturnType<typeof fail<Code>>

/**
 * Refuses a password the policy rejects; otherwise stores its hash and ends
 * the person's other sessions (all of them, except `keepSessionId`).
 */
async function setPassword<Code extends string>(
  { tx, audit }: CommandScope,
  person: Person,
  password: NewPassword,
  entry: Omit<AuditEntry<'password_change'>, 'success'>,
  refuse: Refuse<Code | 'TOO_WEAK'>,
  keepSessionId?: string,
) {
  if (password.weakReasons) return refuse('TOO_WEAK', 'The password does not meet the password policy.', { weakPasswordReasons: password.weakReasons })
  await tx.person.update({ where: { id: person.id }, data: { passwordHash: password.hash } })
  await closeSessions(tx, person.identityId, keepSessionId)
  audit({ ...entry, success: true })
  return succeed(null)
}

export type ChangePasswordErrorCode = 'PERSON_NOT_FOUND' | 'TOO_WEAK'

/** An admin sets a person's password (`password_change`); the person's sessions end. */
export async function changePassword(context: TenantContext, personId: string, password: string) {
  const newPassword = await prepareNewPassword(context.prisma, password)
  return runCommand(context.prisma, context.actor, async (scope) => {
    const person = await findPersonById(scope.tx, personId)
    const entry: Omit<AuditEntry<'password_change'>, 'success'> = {
      type: 'password_change',
      targetPersonId: person?.id ?? null,
      personInputIdentifier: person ? null : personId,
    }
    const refuse: Refuse<ChangePasswordErrorCode> = (code, message, extra) => {
      scope.audit({ ...entry, success: false, errorCode: code })
      return fail(code, message, extra)
    }
    if (!person) return refuse('PERSON_NOT_FOUND', `Person ${personId} not found.`)
    return setPassword(scope, person, newPassword, entry, refuse)
  })
}

export type ChangeMyPasswordErrorCode = 'TOO_WEAK' | 'NOT_A_PERSON' | 'INVALID_PASSWORD' | 'NO_PASSWORD_SET' | 'RATE_LIMIT_EXCEEDED'

/**
 * A person changes their own password (`password_change`); their other sessions end. The current
 * password is a guess like a sign-in's: a wrong one counts towards the person's sign-in backoff,
 * which also holds this operation back, and attempts take the person's sign-in turn, so whoever
 * holds a session cannot try passwords faster than anyone can sign in.
 */
export async function changeMyPassword(context: TenantContext, currentPassword: string, newPassword: string) {
  // Read before any transaction, so unlocked (callerPerson locks the row for a command that changes it): the person's sign-in turn below orders the attempts.
  const person = context.caller?.personId ? await context.prisma.person.findUnique({ where: { id: context.caller.personId } }) : null
  if (!person) return runCommand(context.prisma, context.actor, async ({ audit }) => refusal(audit, 'NOT_A_PERSON', 'Only a person has a password.'))
  return inTurn(`sign-in:${person.id}`, async (holdTurn) => {
    const config = await loadTenantConfig(context.prisma)
    // A person without an email is matched by id alone (NULL matches no typed identifier).
    const who = { identifier: person.email, personId: person.id }
    // Read and verified before the transaction opens, so the password work holds no connection.
    const earlyWait = await signInBackoff(context.prisma, config.login, who)
    // Only a caller who knows the current password gets the new one hashed.
    const currentMatches = earlyWait === null && (await verifyPassword(person.passwordHash, currentPassword))
    const prepared = currentMatches ? await prepareNewPassword(context.prisma, newPassword) : null
    return runCommand(context.prisma, context.actor, async (scope) => {
      await holdTurn(scope.tx)
      // Read again holding the turn: a sign-in elsewhere may have failed meanwhile.
      const retryAfter = earlyWait ?? (await signInBackoff(scope.tx, config.login, who))
      const refuse: Refuse<ChangeMyPasswordErrorCode> = (code, message, extra) => refusal(scope.audit, code, message, extra)
      if (retryAfter !== null) {
        scope.audit({ type: 'password_change', success: false, errorCode: 'RATE_LIMIT_EXCEEDED', metadata: { retryAfter, reason: 'backoff' } })
        return fail('RATE_LIMIT_EXCEEDED' as ChangeMyPasswordErrorCode, 'Too many wrong passwords; try again later.', { retryAfter })
      }
      if (!person.passwordHash) return refuse('NO_PASSWORD_SET', 'This person has no password yet.')
      if (!prepared) {
        // Nothing has changed: the refusal commits with its entry while the turn is held, for the next attempt to count.
        scope.commitRefusal()
        return refuse('INVALID_PASSWORD', 'The current password is not correct.')
      }
      return setPassword(scope, person, prepared, { type: 'password_change' }, refuse, context.caller?.apiKeyId)
    })
  })
}

const refusal = <Code extends string>(audit: CommandScope['audit'], code: Code, message: string, extra?: Record<string, unknown>) => {
  audit({ type: 'password_change', success: false, errorCode: code })
  return fail(code, message, extra)
}
