import { isDeepStrictEqual } from 'node:util'
import type { PrismaClient } from '../../generated/prisma/client.js'
import { runCommand, type Transaction } from '../command.js'
import { lockRow } from '../rowLock.js'
import type { TenantContext } from '../context.js'
import { isUuid } from '../ids.js'
import { type Failure, fail, succeed } from '../outcome.js'
import { personIdOfIdentity } from '../persons/persons.js'

/** A project membership as Contember writes it: a role and its variables. */
export interface Membership {
  readonly role: string
  readonly variables: readonly { readonly name: string; readonly values: readonly string[] }[]
}

export type MembershipValidationCode = 'ROLE_NOT_FOUND' | 'VARIABLE_NOT_FOUND' | 'VARIABLE_EMPTY' | 'VARIABLE_INVALID'

export interface MembershipValidationError {
  readonly code: MembershipValidationCode
  readonly role: string
  readonly variable: string | null
}

// Custos has no project schema to declare roles: a role is any name of this shape.
const namePattern = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/

/** What is wrong with a list of memberships; empty when it can be stored. */
export function membershipProblems(memberships: readonly Membership[]): MembershipValidationError[] {
  const problems: MembershipValidationError[] = []
  for (const { role, variables } of memberships) {
    if (!namePattern.test(role)) problems.push({ code: 'ROLE_NOT_FOUND', role, variable: null })
    const seen = new Set<string>()
    for (const variable of variables) {
      if (!namePattern.test(variable.name) || seen.has(variable.name)) {
        problems.push({ code: 'VARIABLE_INVALID', role, variable: variable.name })
      } else if (variable.values.length === 0) {
        problems.push({ code: 'VARIABLE_EMPTY', role, variable: variable.name })
      }
      seen.add(variable.name)
    }
  }
  return problems
}

/** INVALID_MEMBERSHIP naming the roles listed more than once; null when each is listed once. */
export function repeatedRoles(roles: readonly string[]): Failure<'INVALID_MEMBERSHIP'> | null {
  const repeated = roles.filter((role, index) => roles.indexOf(role) !== index)
  return repeated.length > 0 ? fail('INVALID_MEMBERSHIP', `Roles listed more than once: ${[...new Set(repeated)].join(', ')}`) : null
}

/** INVALID_MEMBERSHIP for an empty list, a role listed twice, or a malformed role or variable; null when fine. */
export function invalidMemberships(memberships: readonly Membership[]): Failure<'INVALID_MEMBERSHIP'> | null {
  if (memberships.length === 0) return fail('INVALID_MEMBERSHIP', 'At least one membership is required.')
  const repeated = repeatedRoles(memberships.map((membership) => membership.role))
  if (repeated) return repeated
  const problems = membershipProblems(memberships)
  if (problems.length > 0) {
    return fail('INVALID_MEMBERSHIP', 'Some memberships are not valid.', { membershipValidation: problems })
  }
  return null
}

/** Plain copies, so what is stored and what is logged are the same values. */
const normalized = (memberships: readonly Membership[]): Membership[] =>
  memberships.map(({ role, variables }) => ({ role, variables: variables.map(({ name, values }) => ({ name, values: [...values] })) }))

/** Memberships in one order whatever the order they came in (the database's collation may sort roles otherwise). */
const byRole = (memberships: Membership[]) => memberships.toSorted((a, b) => (a.role < b.role ? -1 : a.role > b.role ? 1 : 0))

/** An identity's memberships in a project, ordered by role. */
export async function membershipsOf(db: Transaction | PrismaClient, projectId: string, identityId: string): Promise<Membership[]> {
  const rows = await db.projectMembership.findMany({ where: { projectId, identityId }, orderBy: { role: 'asc' } })
  return rows.map((row) => ({ role: row.role, variables: row.variables as unknown as Membership['variables'] }))
}

/** Replaces an identity's memberships in a project; returns them as stored. */
export async function writeMemberships(tx: Transaction, projectId: string, identityId: string, memberships: readonly Membership[]) {
  await tx.projectMembership.deleteMany({ where: { projectId, identityId } })
  const rows = normalized(memberships)
  await tx.projectMembership.createMany({
    data: rows.map(({ role, variables }) => ({ projectId, identityId, role, variables: variables as never })),
  })
  return membershipsOf(tx, projectId, identityId)
}

/** The caller's membership roles in a project, by slug: what project-scoped permissions are decided on. */
export const membershipRolesLoader = (prisma: PrismaClient, identityId: string) => async (projectSlug: string) => {
  const rows = await prisma.projectMembership.findMany({ where: { identityId, project: { slug: projectSlug } }, select: { role: true } })
  return rows.map((row) => row.role)
}

export const findProjectBySlug = (db: Transaction | PrismaClient, slug: string) => db.project.findUnique({ where: { slug } })

type MembershipChange = 'add' | 'update' | 'remove'
const eventType = {
  add: 'project_membership_create',
  update: 'project_membership_update',
  remove: 'project_membership_remove',
} as const

export type ProjectMemberErrorCode = 'PROJECT_NOT_FOUND' | 'IDENTITY_NOT_FOUND' | 'ALREADY_MEMBER' | 'NOT_MEMBER' | 'INVALID_MEMBERSHIP'

/**
 * addProjectMember (the identity must not be a member yet), updateProjectMember
 * (replaces the identity's memberships; it must be a member) and
 * removeProjectMember (`memberships` null). Each records the memberships before and after.
 */
export function changeProjectMember(
  context: TenantContext,
  change: MembershipChange,
  input: { projectSlug: string; identityId: string; memberships: readonly Membership[] | null },
) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    const project = await findProjectBySlug(tx, input.projectSlug)
    if (!project) return fail('PROJECT_NOT_FOUND' as ProjectMemberErrorCode, `Project ${input.projectSlug} not found.`)
    if (input.memberships) {
      const invalid = invalidMemberships(input.memberships)
      if (invalid) return invalid as Failure<ProjectMemberErrorCode>
    }
    const identity = isUuid(input.identityId) ? await tx.identity.findUnique({ where: { id: input.identityId } }) : null
    if (!identity) {
      // Contember answers NOT_MEMBER for an unknown identity when updating or removing.
      return change === 'add'
        ? fail('IDENTITY_NOT_FOUND' as ProjectMemberErrorCode, `Identity ${input.identityId} not found.`)
        : fail('NOT_MEMBER' as ProjectMemberErrorCode, `Identity ${input.identityId} is not a member of ${project.slug}.`)
    }
    await lockRow(tx, 'identity', { id: identity.id })
    const before = await membershipsOf(tx, project.id, identity.id)
    if (change === 'add' && before.length > 0) {
      return fail('ALREADY_MEMBER' as ProjectMemberErrorCode, `Identity ${identity.id} is already a member of ${project.slug}.`)
    }
    if (change !== 'add' && before.length === 0) {
      return fail('NOT_MEMBER' as ProjectMemberErrorCode, `Identity ${identity.id} is not a member of ${project.slug}.`)
    }
    // The memberships it has already: no change, and no project_membership_update in the log.
    if (change === 'update' && isDeepStrictEqual(byRole(normalized(input.memberships ?? [])), byRole(before))) return succeed(null)
    const after = await writeMemberships(tx, project.id, identity.id, input.memberships ?? [])
    audit({
      type: eventType[change],
      success: true,
      targetPersonId: await personIdOfIdentity(tx, identity.id),
      eventData: { projectId: project.id, identityId: identity.id, before, after },
    })
    return succeed(null)
  })
}
