import { runCommand, type Transaction } from '../command.js'
import { lockRow } from '../rowLock.js'
import type { TenantContext } from '../context.js'
import { isUuid } from '../ids.js'
import { InvalidInputError, requireTextWithinLimit } from '../invalidInput.js'
import { fail, succeed } from '../outcome.js'
import { personIdOfIdentity } from '../persons/persons.js'
import { globalRoleChangeProblem } from '../identity/globalRoles.js'
import { isGlobalRole } from '../permissions.js'
import { findProjectBySlug, invalidMemberships, type Membership, repeatedRoles, writeMemberships } from '../projects/memberships.js'
import { generateToken, hashToken, requireTokenHash } from './tokens.js'

interface ApiKeyOptions {
  readonly description: string
  /** A sha256 hex the caller computed itself; then no token is returned. */
  readonly tokenHash?: string | null
  readonly trustForwardedClientInfo?: boolean | null
}

export interface CreateGlobalApiKeyInput extends ApiKeyOptions {
  readonly roles: readonly string[]
}

export interface CreateProjectApiKeyInput extends ApiKeyOptions {
  readonly projectSlug: string
  readonly memberships: readonly Membership[]
}

/**
 * A permanent API key with an identity of its own. The token is generated
 * (and shown once) unless the caller brought its hash.
 */
export async function issueApiKey(
  context: TenantContext,
  tx: Transaction,
  options: ApiKeyOptions & { roles?: readonly string[]; tokenHashArgument?: string },
) {
  requireTextWithinLimit(options.description, 'description')
  const token = options.tokenHash == null ? generateToken() : null
  const tokenHash = token ? hashToken(token) : (options.tokenHash as string)
  // The argument the caller's hash came in, as bad input names it.
  const argument = options.tokenHashArgument ?? 'tokenHash'
  requireTokenHash(tokenHash, argument)
  if (await tx.apiKey.findUnique({ where: { tokenHash }, select: { id: true } })) {
    throw new InvalidInputError(`This ${argument} is already in use.`, argument)
  }
  const identity = await tx.identity.create({ data: { description: options.description, roles: [...(options.roles ?? [])] } })
  const apiKey = await tx.apiKey.create({
    data: {
      tokenHash,
      type: 'permanent',
      identityId: identity.id,
      trustForwardedInfo: options.trustForwardedClientInfo ?? false,
      createdIp: context.actor.client.ip,
      createdUserAgent: context.actor.client.userAgent,
    },
  })
  // What its api_key_create entry says of it; a key that may set the client address it is recorded with says so.
  const recorded = { apiKeyId: apiKey.id, identityId: identity.id, description: options.description, ...(apiKey.trustForwardedInfo ? { trustForwardedClientInfo: true } : {}) }
  return { id: apiKey.id, token, identity, recorded }
}

/** A permanent API key whose identity holds global `roles`. */
export function createGlobalApiKey(context: TenantContext, input: CreateGlobalApiKeyInput) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    const invalid = input.roles.filter((role) => !isGlobalRole(role))
    if (invalid.length > 0) {
      return fail('INVALID_MEMBERSHIP' as const, `Unknown global roles: ${invalid.join(', ')}`, {
        membershipValidation: invalid.map((role) => ({ code: 'ROLE_NOT_FOUND', role, variable: null })),
      })
    }
    const repeated = repeatedRoles(input.roles)
    if (repeated) return repeated
    // A key gets no role that gives more than its creator holds.
    const beyond = globalRoleChangeProblem(context.permissions, input.roles)
    if (beyond) return fail('INVALID_MEMBERSHIP' as const, beyond.message)
    const apiKey = await issueApiKey(context, tx, input)
    audit({
      type: 'api_key_create',
      success: true,
      eventData: { ...apiKey.recorded, roles: [...input.roles] },
    })
    return succeed({ apiKey })
  })
}

/** A permanent API key that is a member of one project (createApiKey). */
export function createProjectApiKey(context: TenantContext, input: CreateProjectApiKeyInput) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    const project = await findProjectBySlug(tx, input.projectSlug)
    if (!project) return fail('PROJECT_NOT_FOUND' as const, `Project ${input.projectSlug} not found.`)
    const invalid = invalidMemberships(input.memberships)
    if (invalid) return invalid
    const apiKey = await issueApiKey(context, tx, input)
    const memberships = await writeMemberships(tx, project.id, apiKey.identity.id, input.memberships)
    audit({
      type: 'api_key_create',
      success: true,
      eventData: { ...apiKey.recorded, memberships },
    })
    return succeed({ apiKey })
  })
}

export function disableApiKey(context: TenantContext, apiKeyId: string) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    if (isUuid(apiKeyId)) await lockRow(tx, 'apiKey', { id: apiKeyId })
    const apiKey = isUuid(apiKeyId) ? await tx.apiKey.findUnique({ where: { id: apiKeyId } }) : null
    if (!apiKey || apiKey.disabledAt) return fail('KEY_NOT_FOUND' as const, `API key ${apiKeyId} not found or already disabled.`)
    await tx.apiKey.update({ where: { id: apiKey.id }, data: { disabledAt: new Date() } })
    audit({
      type: 'api_key_disable',
      success: true,
      targetPersonId: await personIdOfIdentity(tx, apiKey.identityId),
      eventData: { apiKeyId: apiKey.id },
    })
    return succeed(null)
  })
}
