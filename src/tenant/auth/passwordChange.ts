import type { AuditEntry } from '../../audit/recorder.js'
import type { Person } from '../../generated/prisma/client.js'
import { closeSessions } from '../apiKeys/sessions.js'
import { type CommandScope, runCommand } from '../command.js'
import type { TenantContext } from '../context.js'
import { fail, succeed } from '../outcome.js'
import { callerPerson, findPersonById } from '../persons/persons.js'
import { type NewPassword, prepareNewPassword, verifyPassword } from './passwords.js'

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

export type ChangeMyPasswordErrorCode = 'TOO_WEAK' | 'NOT_A_PERSON' | 'INVALID_PASSWORD' | 'NO_PASSWORD_SET'

/** A person changes their own password (`password_change`); their other sessions end. */
export async function changeMyPassword(context: TenantContext, currentPassword: string, newPassword: string) {
  const caller = context.caller
  const person = await callerPerson(context, context.prisma)
  // Only a caller who knows the current password gets the new one hashed.
  const currentMatches = person !== null && (await verifyPassword(person.passwordHash, currentPassword))
  const prepared = currentMatches ? await prepareNewPassword(context.prisma, newPassword) : null
  return runCommand(context.prisma, context.actor, async (scope) => {
    const entry: Omit<AuditEntry<'password_change'>, 'success'> = { type: 'password_change' }
    const refuse: Refuse<ChangeMyPasswordErrorCode> = (code, message, extra) => {
      scope.audit({ ...entry, success: false, errorCode: code })
      return fail(code, message, extra)
    }
    if (!person) return refuse('NOT_A_PERSON', 'Only a person has a password.')
    if (!person.passwordHash) return refuse('NO_PASSWORD_SET', 'This person has no password yet.')
    if (!prepared) return refuse('INVALID_PASSWORD', 'The current password is not correct.')
    return setPassword(scope, person, prepared, entry, refuse, caller?.apiKeyId)
  })
}
