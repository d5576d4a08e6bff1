import type { Prisma, PrismaClient } from '../generated/prisma/client.js'
import { isUuid } from '../tenant/ids.js'
import { isAuditEventType } from './catalog.js'

/** AuthLogFilter: every field AND-combined, `types` OR-combined, omitted = unconstrained. */
export interface AuthLogFilter {
  readonly types?: readonly string[] | null
  readonly success?: boolean | null
  readonly invokedByIdentityId?: string | null
  readonly personId?: string | null
  readonly targetPersonId?: string | null
  readonly personInputIdentifier?: string | null
  /** Inclusive. */
  readonly createdAfter?: Date | null
  /** Exclusive. */
  readonly createdBefore?: Date | null
}

export interface AuthLogPageRequest {
  readonly filter?: AuthLogFilter | null
  readonly limit?: number | null
  readonly offset?: number | null
}

export const DEFAULT_PAGE_SIZE = 100
export const MAX_PAGE_SIZE = 500

/** A request the log cannot answer as asked; `argument` names the culprit. */
export class AuthLogQueryError extends Error {
  constructor(
    message: string,
    readonly argument: string,
  ) {
    super(message)
  }
}

const idFilters = ['invokedByIdentityId', 'personId', 'targetPersonId'] as const

/** Checks a filter and turns it into a Prisma condition; never lets a malformed value reach the database. */
export function authLogWhere(filter: AuthLogFilter = {}): Prisma.PersonAuthLogWhereInput {
  const unknownTypes = (filter.types ?? []).filter((type) => !isAuditEventType(type))
  if (unknownTypes.length > 0) throw new AuthLogQueryError(`Unknown event types: ${unknownTypes.join(', ')}`, 'filter.types')
  for (const field of idFilters) {
    const value = filter[field]
    if (value != null && !isUuid(value)) throw new AuthLogQueryError(`filter.${field} is not a valid id: ${value}`, `filter.${field}`)
  }
  for (const field of ['createdAfter', 'createdBefore'] as const) {
    const value = filter[field]
    if (value != null && Number.isNaN(value.getTime())) throw new AuthLogQueryError(`filter.${field} is not a valid date`, `filter.${field}`)
  }
  return {
    ...(filter.types ? { type: { in: [...filter.types] } } : {}),
    ...(filter.success != null ? { success: filter.success } : {}),
    ...(filter.invokedByIdentityId != null ? { identityId: filter.invokedByIdentityId } : {}),
    ...(filter.personId != null ? { personId: filter.personId } : {}),
    ...(filter.targetPersonId != null ? { targetPersonId: filter.targetPersonId } : {}),
    ...(filter.personInputIdentifier != null ? { personInputIdentifier: filter.personInputIdentifier } : {}),
    ...(filter.createdAfter != null || filter.createdBefore != null
      ? {
          createdAt: {
            ...(filter.createdAfter != null ? { gte: filter.createdAfter } : {}),
            ...(filter.createdBefore != null ? { lt: filter.createdBefore } : {}),
          },
        }
      : {}),
  }
}

/** The page size actually served: default 100, at most 500. */
export function pageSize(limit: number | null | undefined): number {
  if (limit == null) return DEFAULT_PAGE_SIZE
  if (!Number.isInteger(limit) || limit < 1) throw new AuthLogQueryError('limit must be at least 1', 'limit')
  return Math.min(limit, MAX_PAGE_SIZE)
}

/** One page, newest first; `hasMore` comes from reading one row more, never from a COUNT. */
export async function queryAuthLog(prisma: PrismaClient, request: AuthLogPageRequest) {
  const where = authLogWhere(request.filter ?? {})
  const take = pageSize(request.limit)
  const offset = request.offset ?? 0
  if (!Number.isInteger(offset) || offset < 0) throw new AuthLogQueryError('offset must not be negative', 'offset')
  const rows = await prisma.personAuthLog.findMany({
    where,
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    skip: offset,
    take: take + 1,
  })
  return { entries: rows.slice(0, take), hasMore: rows.length > take }
}

export type AuthLogRow = Awaited<ReturnType<typeof queryAuthLog>>['entries'][number]
