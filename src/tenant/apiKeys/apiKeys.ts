import { runCommand } from '../command.js'
import type { TenantContext } from '../context.js'
import { isUuid } from '../ids.js'
import { fail, succeed } from '../outcome.js'
import { personIdOfIdentity } from '../persons/persons.js'
import { isGlobalRole } from '../permissions.js'
import { generateToken, hashToken } from './tokens.js'

export interface CreateGlobalApiKeyInput {
  readonly description: string
  readonly roles: readonly string[]
  /** A sha256 hex the caller computed itself; then no token is returned. */
  readonly tokenHash?: string | null
  readonly trustForwardedClientInfo?: boolean | null
}

const sha256Hex = /^[0-9a-f]{64}$/

/** A permanent API key with its own identity holding `roles`. The token is shown once. */
export function createGlobalApiKey(context: TenantContext, input: CreateGlobalApiKeyInput) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    const invalid = input.roles.filter((role) => !isGlobalRole(role))
    if (invalid.length > 0) {
      return fail('INVALID_MEMBERSHIP' as const, `Unknown global roles: ${invalid.join(', ')}`, {
        membershipValidation: invalid.map((role) => ({ code: 'ROLE_NOT_FOUND', role, variable: null })),
      })
    }
    if (input.roles.includes('super_admin') && !context.caller?.roles.includes('super_admin')) {
      return fail('INVALID_MEMBERSHIP' as const, 'Only a super admin can create a super_admin key.')
    }
    if (input.tokenHash != null && !sha256Hex.test(input.tokenHash)) {
      return fail('INVALID_MEMBERSHIP' as const, 'tokenHash must be a lowercase hex sha256.')
    }
    const token = input.tokenHash == null ? generateToken() : null
    const identity = await tx.identity.create({ data: { description: input.description, roles: [...input.roles] } })
    const apiKey = await tx.apiKey.create({
      data: {
        tokenHash: token ? hashToken(token) : (input.tokenHash as string),
        type: 'permanent',
        identityId: identity.id,
        trustForwardedInfo: input.trustForwardedClientInfo ?? false,
        createdIp: context.actor.client.ip,
        createdUserAgent: context.actor.client.userAgent,
      },
    })
    audit({
      type: 'api_key_create',
      success: true,
      eventData: { apiKeyId: apiKey.id, identityId: identity.id, description: input.description, roles: [...input.roles] },
    })
    return succeed({ apiKey: { id: apiKey.id, token, identity } })
  })
}

export function disableApiKey(context: TenantContext, apiKeyId: string) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
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
