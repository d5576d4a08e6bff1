import type { AuditEntry } from '../../audit/recorder.js'
import { closeSessions } from '../apiKeys/sessions.js'
import { runCommand } from '../command.js'
import { lockRow } from '../rowLock.js'
import { loadTenantConfig } from '../config/tenantConfig.js'
import type { TenantContext } from '../context.js'
import { InvalidInputError } from '../invalidInput.js'
import { fail, succeed } from '../outcome.js'
import { findPersonByEmail, findPersonById } from '../persons/persons.js'
import { type SessionRequest, openPersonSession } from './sessionLifetime.js'

export interface CreateSessionTokenInput extends SessionRequest {
  readonly email?: string | null
  readonly personId?: string | null
}

/**
 * A privileged caller mints a session for a person (for example a backend that signed the person in
 * itself), named by exactly one of email and personId: with both, the entry's typed identifier
 * could name someone other than the person the session is for.
 */
export function createSessionToken(context: TenantContext, input: CreateSessionTokenInput) {
  if ((input.email == null) === (input.personId == null)) {
    throw new InvalidInputError('Name the person by email or by personId: one of them, not both.', input.email == null ? 'email' : 'personId')
  }
  return runCommand(context.prisma, context.actor, async ({ tx, audit, attempting }) => {
    const entry: Omit<AuditEntry<'create_session_token'>, 'success'> = {
      type: 'create_session_token',
      personInputIdentifier: input.email ?? input.personId ?? null,
    }
    attempting(entry)
    const refuse = <Code extends 'UNKNOWN_EMAIL' | 'UNKNOWN_PERSON_ID' | 'PERSON_DISABLED'>(code: Code, message: string, targetPersonId?: string) => {
      audit({ ...entry, success: false, errorCode: code, targetPersonId: targetPersonId ?? null })
      return fail(code, message)
    }
    const person = input.personId != null ? await findPersonById(tx, input.personId) : await findPersonByEmail(tx, input.email!)
    if (!person) {
      return input.personId != null
        ? refuse('UNKNOWN_PERSON_ID', 'No person has this id.')
        : refuse('UNKNOWN_EMAIL', 'No person has this email.')
    }
    if (person.disabledAt) return refuse('PERSON_DISABLED', 'This person is disabled.', person.id)
    const config = await loadTenantConfig(tx)
    const session = await openPersonSession(context, tx, config.login, person.identityId, input)
    audit({ ...entry, success: true, targetPersonId: person.id, metadata: { sessionId: session.id } })
    return succeed({ token: session.token, person })
  })
}

export type SignOutErrorCode = 'NOT_A_PERSON' | 'NOT_POSSIBLE_SIGN_OUT_WITH_PERMANENT_API_KEY'

/** Ends the caller's session, or every session of the caller's person with `all`. */
export function signOut(context: TenantContext, all: boolean) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    const caller = context.caller
    if (!caller?.personId) return fail('NOT_A_PERSON' as SignOutErrorCode, 'Only a person can sign out.')
    if (caller.apiKeyType !== 'session') {
      return fail('NOT_POSSIBLE_SIGN_OUT_WITH_PERMANENT_API_KEY' as SignOutErrorCode, 'A permanent API key cannot sign out.')
    }
    // Sign-outs with one session take turns: the second finds it ended, changes nothing and records nothing.
    await lockRow(tx, 'apiKey', { id: caller.apiKeyId })
    const session = await tx.apiKey.findUniqueOrThrow({ where: { id: caller.apiKeyId }, select: { disabledAt: true } })
    if (session.disabledAt) return succeed(null)
    if (all) await closeSessions(tx, caller.identityId)
    else await tx.apiKey.update({ where: { id: caller.apiKeyId }, data: { disabledAt: new Date() } })
    audit({ type: 'logout', success: true, metadata: { sessionId: caller.apiKeyId }, eventData: { all } })
    return succeed(null)
  })
}
