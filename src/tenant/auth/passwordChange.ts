import type { AuditEntry } from '../../audit/recorder.js'
import type { Person } from '../../generated/prisma/client.js'
import { closeSessions } from '../apiKeys/sessions.js'
import { type CommandScope, runCommand } from '../command.js'
import { loadTenantConfig } from '../config/tenantConfig.js'
import type { TenantContext } from '../context.js'
import { fail, succeed } from '../outcome.js'
import { findPersonById } from '../persons/persons.js'
import { hashPassword, verifyPassword } from './passwords.js'
import { weakPasswordReasons } from './passwordPolicy.js'

type Refuse<Code extends string> = (code: Code, message: string, extra?: Record<string, unknown>) => ReturnType<typeof fail<Code>>

/**
 * Applies the password policy, stores the new hash and ends the person's
 * other sessions (all of them, except `keepSessionId`).
 */
async function setPassword<Code extends string>(
  { tx, audit }: CommandScope,
  person: Person,
  password: string,
  entry: Omit<AuditEntry<'password_change'>, 'success'>,
  refuse: Refuse<Code | 'TOO_WEAK'>,
  keepSessionId?: string,
) {
  const reasons = weakPasswordReasons(password, (await loadTenantConfig(tx)).password)
  if (reasons.length > 0) return refuse('TOO_WEAK', 'The password does not meet the password policy.', { weakPasswordReasons: reasons })
  await tx.person.update({ where: { id: person.id }, data: { passwordHash: await hashPassword(password) } })
  await closeSessions(tx, person.identityId, keepSessionId)
  audit({ ...entry, success: true })
  return succeed(null)
}

export type ChangePasswordErrorCode = 'PERSON_NOT_FOUND' | 'TOO_WEAK'

/** An admin sets a person's password (`password_change`); the person's sessions end. */
export function changePassword(context: TenantContext, personId: string, password: string) {
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
    return setPassword(scope, person, password, entry, refuse)
  })
}

export type ChangeMyPasswordErrorCode = 'TOO_WEAK' | 'NOT_A_PERSON' | 'INVALID_PASSWORD' | 'NO_PASSWORD_SET'

/** A person changes their own password (`password_change`); their other sessions end. */
export function changeMyPassword(context: TenantContext, currentPassword: string, newPassword: string) {
  return runCommand(context.prisma, context.actor, async (scope) => {
    const caller = context.caller
    const person = caller?.personId ? await scope.tx.person.findUnique({ where: { id: caller.personId } }) : null
    const entry: Omit<AuditEntry<'password_change'>, 'success'> = { type: 'password_change' }
    const refuse: Refuse<ChangeMyPasswordErrorCode> = (code, message, extra) => {
      scope.audit({ ...entry, success: false, errorCode: code })
      return fail(code, message, extra)
    }
    if (!person) return refuse('NOT_A_PERSON', 'Only a person has a password.')
    const currentMatches = await verifyPassword(person.passwordHash, currentPassword)
    if (!person.passwordHash) return refuse('NO_PASSWORD_SET', 'This person has no password yet.')
    if (!currentMatches) return refuse('INVALID_PASSWORD', 'The current password is not correct.')
    return setPassword(scope, person, newPassword, entry, refuse, caller?.apiKeyId)
  })
}
