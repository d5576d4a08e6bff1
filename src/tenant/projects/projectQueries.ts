import type { Identity, Prisma, Project } from '../../generated/prisma/client.js'
import type { TenantContext } from '../context.js'
import { isUuid } from '../ids.js'
import { normalizeEmail } from '../persons/persons.js'
import { type Membership, membershipsOf } from './memberships.js'

/** The projects the caller may see: all with a global project:view, else those it is a member of. */
export function visibleProjectsWhere(context: TenantContext): Prisma.ProjectWhereInput {
  if (context.permissions.has('project:view')) return {}
  return { memberships: { some: { identityId: context.caller?.identityId ?? '' } } }
}

export interface ProjectMembersQuery {
  readonly memberType?: 'API_KEY' | 'PERSON' | null
  readonly email?: readonly string[] | null
  readonly identityId?: readonly string[] | null
  readonly personId?: readonly string[] | null
  readonly limit?: number | null
  readonly offset?: number | null
}

export const MAX_MEMBERS_PAGE = 500

/** A project's member identities with their memberships, oldest identity first; filters AND-combined. */
export async function projectMembers(context: TenantContext, projectId: string, query: ProjectMembersQuery) {
  const conditions: Prisma.IdentityWhereInput[] = [{ memberships: { some: { projectId } } }]
  if (query.memberType === 'PERSON') conditions.push({ person: { isNot: null } })
  if (query.memberType === 'API_KEY') conditions.push({ person: { is: null } })
  if (query.identityId) conditions.push({ id: { in: query.identityId.filter(isUuid) } })
  if (query.personId) conditions.push({ person: { id: { in: query.personId.filter(isUuid) } } })
  if (query.email) conditions.push({ person: { email: { in: query.email.map(normalizeEmail) } } })
  const identities = await context.prisma.identity.findMany({
    where: { AND: conditions },
    orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
    skip: Math.max(0, query.offset ?? 0),
    take: Math.min(Math.max(1, query.limit ?? MAX_MEMBERS_PAGE), MAX_MEMBERS_PAGE),
  })
  return Promise.all(identities.map(async (identity: Identity) => ({ identity, memberships: await membershipsOf(context.prisma, projectId, identity.id) })))
}

/**
 * An identity's memberships by project: all of them for the caller's own
 * identity or with a global project:view, else those in projects where the
 * caller holds member:view.
 */
export async function visibleMembershipsOf(context: TenantContext, identityId: string) {
  const rows = await context.prisma.projectMembership.findMany({
    where: { identityId },
    include: { project: true },
    orderBy: [{ project: { slug: 'asc' } }, { role: 'asc' }],
  })
  const everything = identityId === context.caller?.identityId || context.permissions.has('project:view')
  const relations = new Map<string, { project: Project; memberships: Membership[] }>()
  for (const row of rows) {
    if (!relations.has(row.projectId)) {
      if (!everything && !(await context.permissions.hasInProject('member:view', row.project.slug))) continue
      relations.set(row.projectId, { project: row.project, memberships: [] })
    }
    relations.get(row.projectId)?.memberships.push({ role: row.role, variables: row.variables as unknown as Membership['variables'] })
  }
  return [...relations.values()]
}
