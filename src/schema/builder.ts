import SchemaBuilder from '@pothos/core'
import PrismaPlugin from '@pothos/plugin-prisma'
import SimpleObjectsPlugin from '@pothos/plugin-simple-objects'
import ScopeAuthPlugin, { type AuthFailure, AuthScopeFailureType } from '@pothos/plugin-scope-auth'
import { GraphQLError, GraphQLScalarType, Kind } from 'graphql'
import { BigIntResolver, DateTimeResolver, JSONResolver } from 'graphql-scalars'
import { roundedUpToMillisecond } from '../audit/filterParams.js'
import type PrismaTypes from '../generated/pothos-prisma-types.js'
import { getDatamodel } from '../generated/pothos-prisma-types.js'
import type { RequestContext } from '../http/context.js'
import { type Privilege, type ProjectPrivilege, deniedMessage } from '../tenant/permissions.js'
import { badInputError, forbiddenError } from './errors.js'

/** The privilege a failed scope check was about, for the error message. */
function deniedPrivilege(failure: AuthFailure): Privilege | undefined {
  if (failure.kind === AuthScopeFailureType.AuthScope && failure.scope === 'privilege') return failure.parameter as Privilege
  if (failure.kind === AuthScopeFailureType.AuthScope && failure.scope === 'projectPrivilege') {
    return (failure.parameter as ProjectPrivilegeScope).privilege
  }
  if (failure.kind === AuthScopeFailureType.AnyAuthScopes || failure.kind === AuthScopeFailureType.AllAuthScopes) {
    for (const inner of failure.failures) {
      const privilege = deniedPrivilege(inner)
      if (privilege) return privilege
    }
  }
  return undefined
}

/** A project-scoped privilege in one project; `projectSlug: null` checks it globally (e.g. global mail templates). */
export interface ProjectPrivilegeScope {
  readonly privilege: ProjectPrivilege
  readonly projectSlug: string | null
}

export const builder = new SchemaBuilder<{
  Context: RequestContext
  PrismaTypes: PrismaTypes
  DefaultFieldNullability: false
  AuthScopes: {
    /** Held when the caller's roles grant this privilege (src/tenant/permissions.ts). */
    privilege: Privilege
    /** Held in the named project (src/tenant/permissions.ts hasInProject); computed from the arguments. */
    projectPrivilege: ProjectPrivilegeScope
    /** Any valid bearer token. */
    authenticated: boolean
  }
  Scalars: {
    DateTime: { Input: Date; Output: Date | string }
    Json: { Input: unknown; Output: unknown }
    /** An ISO 8601 duration such as PT15M; operations validate it. */
    Interval: { Input: string; Output: string }
    /** Audit log sequence numbers: a JSON number while safe, a string beyond 2^53. */
    BigInt: { Input: bigint | number; Output: bigint }
  }
}>({
  plugins: [ScopeAuthPlugin, PrismaPlugin, SimpleObjectsPlugin],
  defaultFieldNullability: false,
  prisma: {
    client: (context) => context.prisma,
    dmmf: getDatamodel(),
    filterConnectionTotalCount: true,
    onUnusedQuery: null,
  },
  scopeAuth: {
    // scope-auth leaves a field without authScopes open: every root field must name its scope
    // (test/audit/authLog-permission.test.ts fails on one that does not).
    defaultStrategy: 'any',
    authScopes: async (context) => ({
      privilege: (privilege) => context.permissions.has(privilege),
      projectPrivilege: ({ privilege, projectSlug }) =>
        projectSlug === null ? context.permissions.has(privilege) : context.permissions.hasInProject(privilege, projectSlug),
      authenticated: context.caller !== null,
    }),
    unauthorizedError: (_parent, _context, _info, result) => {
      const privilege = deniedPrivilege(result.failure)
      return forbiddenError(privilege ? deniedMessage(privilege) : 'You are not allowed to do this.')
    },
  },
})

/**
 * The scalar, its variables refused as BAD_USER_INPUT whatever its parseValue throws: an error that is
 * not a GraphQLError (BigInt's SyntaxError for "abc") would reach the client masked as an internal
 * one. Literals need nothing: validation reports them whatever they throw.
 */
function refusingBadVariables(scalar: GraphQLScalarType): GraphQLScalarType {
  return new GraphQLScalarType({
    ...scalar.toConfig(),
    parseValue: (value) => {
      try {
        return scalar.parseValue(value)
      } catch (error) {
        if (error instanceof GraphQLError) throw error
        throw badInputError(`${scalar.name} cannot represent ${JSON.stringify(value)}`)
      }
    },
  })
}

/** DateTime arguments are bounds on the log's created_at: finer than a millisecond, they are rounded up (roundedUpToMillisecond). */
function roundingUpToMillisecond(scalar: GraphQLScalarType): GraphQLScalarType {
  const roundedUp = (text: unknown, parsed: unknown) =>
    typeof text === 'string' && parsed instanceof Date ? roundedUpToMillisecond(text, parsed) : parsed
  return new GraphQLScalarType({
    ...scalar.toConfig(),
    parseValue: (value) => roundedUp(value, scalar.parseValue(value)),
    parseLiteral: (literal, variables) => roundedUp(literal.kind === Kind.STRING ? literal.value : undefined, scalar.parseLiteral(literal, variables)),
  })
}

builder.addScalarType('DateTime', refusingBadVariables(roundingUpToMillisecond(DateTimeResolver)))
builder.addScalarType('Json', refusingBadVariables(JSONResolver))
builder.addScalarType('BigInt', refusingBadVariables(BigIntResolver))

builder.queryType({})
builder.mutationType({})
