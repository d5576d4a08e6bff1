import { runCommand } from '../command.js'
import type { TenantContext } from '../context.js'
import { isUuid } from '../ids.js'
import { fail, succeed } from '../outcome.js'
import { personIdOfIdentity } from '../persons/persons.js'
import { type GlobalRole, type Permissions, isGlobalRole } from '../permissions.js'
import { lockRow } from '../rowLock.js'

export type GlobalRolesErrorCode = 'IDENTITY_NOT_FOUND' | 'INVALID_ROLE'

/**
 * Why the caller may not hand out or take away `roles`, if it may not: a role that is not global,
 * or one that gives more than the caller holds (Permissions.mayConfer; super_admin only a super admin).
 */
export function globalRoleChangeProblem(permissions: Permissions, roles: readonly string[]) {
  const invalid = roles.filter((role) => !isGlobalRole(role))
  if (invalid.length > 0) return { kind: 'unknown' as const, message: `Unknown global roles: ${invalid.join(', ')}` }
  const beyond = roles.filter((role) => !permissions.mayConfer(role as GlobalRole))
  if (beyond.length > 0) {
    return { kind: 'notHeld' as const, message: `You cannot grant or revoke ${beyond.join(', ')}: it gives privileges you do not hold.` }
  }
  return null
}

/**
 * Adds or removes global roles of an identity, recording the roles before and
 * after (nothing when nothing changes). A caller hands out or takes away only roles that give no
 * more than it holds.
 */
export function changeGlobalRoles(context: TenantContext, change: 'grant' | 'revoke', identityId: string, roles: readonly string[]) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    const problem = globalRoleChangeProblem(context.permissions, roles)
    if (problem) return fail('INVALID_ROLE' as const, problem.message)
    if (isUuid(identityId)) await lockRow(tx, 'identity', { id: identityId })
    const identity = isUuid(identityId) ? await tx.identity.findUnique({ where: { id: identityId } }) : null
    if (!identity) return fail('IDENTITY_NOT_FOUND' as const, `Identity ${identityId} not found.`)

    const before = identity.roles
    const after =
      change === 'grant' ? [...new Set([...before, ...roles])] : before.filter((role) => !roles.includes(role))
    // Granting held roles or revoking absent ones changes nothing, and is no grant or revocation in the log.
    if (after.length === before.length) return succeed({ identity })
    const updated = await tx.identity.update({ where: { id: identity.id }, data: { roles: after } })
    audit({
      type: change === 'grant' ? 'global_role_grant' : 'global_role_revoke',
      success: true,
      targetPersonId: await personIdOfIdentity(tx, identity.id),
      eventData: { before: { roles: before }, after: { roles: after } },
    })
    return succeed({ identity: updated })
  })
}
