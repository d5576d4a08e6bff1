import type { PrismaClient } from '../../generated/prisma/client.js'
import { closeSessions } from '../apiKeys/sessions.js'
import { runCommand } from '../command.js'
import { lockRow } from '../rowLock.js'
import type { TenantContext } from '../context.js'
import { isUuid } from '../ids.js'
import { requireTextWithinLimit } from '../invalidInput.js'
import { fail, succeed } from '../outcome.js'
import { findPersonById, personIdOfIdentity } from '../persons/persons.js'


/** An identity's live sessions, newest first. */
export function liveSessions(prisma: PrismaClient, identityId: string) {
  return prisma.apiKey.findMany({
    where: { identityId, type: 'session', disabledAt: null, OR: [{ expiresAt: null }, { expiresAt: { gt: new Date() } }] },
    orderBy: { createdAt: 'desc' },
  })
}

export type RevokeSessionErrorCode = 'SESSION_NOT_FOUND' | 'NOT_A_PERSON'

/**
 * Ends one session. A person may end their own sessions; ending someone
 * else's needs session:revokeAny (and then names them as target).
 */
export function revokeSession(context: TenantContext, sessionId: string) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    const caller = context.caller
    const mayRevokeAny = context.permissions.has('session:revokeAny')
    if (!caller?.personId && !mayRevokeAny) return fail('NOT_A_PERSON' as RevokeSessionErrorCode, 'Only a person can revoke their sessions.')
    if (isUuid(sessionId)) await lockRow(tx, 'apiKey', { id: sessionId })
    const session = isUuid(sessionId)
      ? await tx.apiKey.findFirst({ where: { id: sessionId, type: 'session', disabledAt: null } })
      : null
    const own = session?.identityId === caller?.identityId
    // Someone else's session is reported as missing, so its id reveals nothing.
    if (!session || (!own && !mayRevokeAny)) return fail('SESSION_NOT_FOUND' as RevokeSessionErrorCode, `Session ${sessionId} not found.`)
    await tx.apiKey.update({ where: { id: session.id }, data: { disabledAt: new Date() } })
    audit({
      type: 'session_revoked_by_user',
      success: true,
      targetPersonId: own ? null : await personIdOfIdentity(tx, session.identityId),
      metadata: { sessionId: session.id },
    })
    return succeed(null)
  })
}

/** Ends every session of a person and mails them why. */
export async function forceSignOutPerson(context: TenantContext, personId: string, reason: string | null | undefined) {
  requireTextWithinLimit(reason, 'reason')
  const outcome = await runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    const person = await findPersonById(tx, personId)
    if (!person) return fail('PERSON_NOT_FOUND' as const, `Person ${personId} not found.`)
    await closeSessions(tx, person.identityId)
    audit({ type: 'forced_sign_out', success: true, targetPersonId: person.id, metadata: reason != null ? { reason } : {} })
    return succeed({ email: person.email })
  })
  if (outcome.ok && outcome.result.email) {
    await context.mailer.deliver({ to: outcome.result.email, type: 'FORCED_SIGN_OUT', variables: { reason } })
  }
  return outcome.ok ? succeed(null) : outcome
}

/** Disables a person: their sessions end now and authentication refuses them from here on. */
export function disablePerson(context: TenantContext, personId: string) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    const person = await findPersonById(tx, personId)
    if (!person) return fail('PERSON_NOT_FOUND' as const, `Person ${personId} not found.`)
    if (person.disabledAt) return fail('PERSON_ALREADY_DISABLED' as const, `Person ${personId} is already disabled.`)
    await tx.person.update({ where: { id: person.id }, data: { disabledAt: new Date() } })
    await closeSessions(tx, person.identityId)
    audit({ type: 'person_disabled', success: true, targetPersonId: person.id })
    return succeed(null)
  })
}
