import { isDeepStrictEqual } from 'node:util'
import type { IdentityProvider, Prisma } from '../../generated/prisma/client.js'
import { runCommand } from '../command.js'
import { lockRow } from '../rowLock.js'
import type { TenantContext } from '../context.js'
import { InvalidInputError, isJsonObject } from '../invalidInput.js'
import { fail, succeed } from '../outcome.js'
import {
  UnreadableSecretError,
  configurationProblem,
  identityProviderTypes,
  isKnownIdentityProviderType,
  openConfiguration,
  sealConfiguration,
} from './configuration.js'

export interface IdpOptions {
  readonly autoSignUp?: boolean | null
  readonly exclusive?: boolean | null
  readonly initReturnsConfig?: boolean | null
}

const slugPattern = /^[A-Za-z0-9_-]{1,64}$/

/** The option flags that were given, as the log records them. */
const givenOptions = (options: IdpOptions | null | undefined) =>
  Object.fromEntries(Object.entries(options ?? {}).filter((entry): entry is [string, boolean] => typeof entry[1] === 'boolean'))

function checkSlug(slug: string) {
  if (!slugPattern.test(slug)) throw new InvalidInputError('identityProvider must be 1-64 characters of A-Z a-z 0-9 _ -', 'identityProvider')
}

export function addIdentityProvider(
  context: TenantContext,
  input: { identityProvider: string; type: string; configuration: unknown; options?: IdpOptions | null },
) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    checkSlug(input.identityProvider)
    if (!isKnownIdentityProviderType(input.type)) {
      return fail('UNKNOWN_TYPE' as const, `Unknown identity provider type ${input.type}; known: ${Object.keys(identityProviderTypes).join(', ')}`)
    }
    const problem = configurationProblem(input.type, input.configuration)
    if (problem) return fail('INVALID_CONFIGURATION' as const, problem)
    const configuration = input.configuration as Prisma.JsonObject
    const created = {
      slug: input.identityProvider,
      type: input.type,
      configuration: sealConfiguration(context.encryptionKey, input.identityProvider, input.type, configuration) as Prisma.InputJsonObject,
      autoSignUp: input.options?.autoSignUp ?? false,
      exclusive: input.options?.exclusive ?? false,
      initReturnsConfig: input.options?.initReturnsConfig ?? false,
    }
    // ON CONFLICT DO NOTHING: a concurrent add of the same slug answers ALREADY_EXISTS, not a unique violation.
    const { count } = await tx.identityProvider.createMany({ data: [created], skipDuplicates: true })
    if (count === 0) return fail('ALREADY_EXISTS' as const, `Identity provider ${input.identityProvider} already exists.`)
    audit({
      type: 'idp_create',
      success: true,
      eventData: {
        identityProvider: created.slug,
        type: created.type,
        configurationKeys: Object.keys(configuration).sort(),
        options: { autoSignUp: created.autoSignUp, exclusive: created.exclusive, initReturnsConfig: created.initReturnsConfig },
      },
    })
    return succeed(null)
  })
}

/**
 * Changes a provider's type, configuration (replaced, or merged key by key
 * with `mergeConfiguration`, which keeps stored secrets that are not given)
 * and options; the result must be valid for its type.
 */
export function updateIdentityProvider(
  context: TenantContext,
  input: { identityProvider: string; type?: string | null; configuration?: unknown; options?: IdpOptions | null; mergeConfiguration?: boolean | null },
) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    await lockRow(tx, 'identityProvider', { slug: input.identityProvider })
    const existing = await tx.identityProvider.findUnique({ where: { slug: input.identityProvider } })
    if (!existing) return fail('NOT_FOUND' as const, `Identity provider ${input.identityProvider} not found.`)
    const type = input.type ?? existing.type
    if (!isKnownIdentityProviderType(type)) return fail('INVALID_CONFIGURATION' as const, `Unknown identity provider type ${type}.`)
    if (input.configuration != null && !isJsonObject(input.configuration)) {
      return fail('INVALID_CONFIGURATION' as const, 'configuration must be a JSON object')
    }
    const given = input.configuration as Prisma.JsonObject | null | undefined
    // The stored keys that stay (all, or those a merge does not replace) are opened; the result is checked and sealed again.
    const stored = Object.entries(existing.configuration as Prisma.JsonObject)
    const kept = !given ? stored : input.mergeConfiguration ? stored.filter(([key]) => !Object.hasOwn(given, key)) : []
    let configuration: Prisma.JsonObject
    try {
      const opened = openConfiguration(context.encryptionKey, existing.slug, existing.type, Object.fromEntries(kept)) as Prisma.JsonObject
      configuration = { ...opened, ...given }
    } catch (error) {
      if (!(error instanceof UnreadableSecretError)) throw error
      return fail('INVALID_CONFIGURATION' as const, `${error.message}; give it again`)
    }
    const problem = configurationProblem(type, configuration)
    if (problem) return fail('INVALID_CONFIGURATION' as const, problem)
    const options = givenOptions(input.options)
    // What it is already: no change, and no idp_update in the log.
    if (alreadyIs(context, existing, { type, configuration, options })) return succeed(null)
    await tx.identityProvider.update({
      where: { id: existing.id },
      data: { type, configuration: sealConfiguration(context.encryptionKey, existing.slug, type, configuration) as Prisma.InputJsonObject, ...options },
    })
    audit({
      type: 'idp_update',
      success: true,
      eventData: {
        identityProvider: existing.slug,
        ...(input.type != null ? { type } : {}),
        ...(given ? { configurationKeys: Object.keys(given).sort() } : {}),
        ...(Object.keys(options).length > 0 ? { options } : {}),
      },
    })
    return succeed(null)
  })
}

/** Whether a stored provider has this type, configuration (its secrets compared opened: each sealing differs) and options. */
function alreadyIs(
  context: TenantContext,
  existing: IdentityProvider,
  wanted: { type: string; configuration: Prisma.JsonObject; options: Record<string, boolean> },
): boolean {
  if (wanted.type !== existing.type) return false
  if (Object.entries(wanted.options).some(([name, value]) => existing[name as keyof IdpOptions] !== value)) return false
  try {
    return isDeepStrictEqual(openConfiguration(context.encryptionKey, existing.slug, existing.type, existing.configuration as Prisma.JsonObject), wanted.configuration)
  } catch (error) {
    // A secret sealed under a key no longer held: the new configuration replaces it, a change.
    if (error instanceof UnreadableSecretError) return false
    throw error
  }
}

/**
 * disableIDP / enableIDP: sign-in through a disabled provider is refused. Repeating either is
 * harmless: ok, and no second entry.
 */
export function setIdentityProviderEnabled(context: TenantContext, identityProvider: string, enabled: boolean) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    await lockRow(tx, 'identityProvider', { slug: identityProvider })
    const existing = await tx.identityProvider.findUnique({ where: { slug: identityProvider } })
    if (!existing) return fail('NOT_FOUND' as const, `Identity provider ${identityProvider} not found.`)
    if (enabled === (existing.disabledAt === null)) return succeed(null)
    await tx.identityProvider.update({ where: { id: existing.id }, data: { disabledAt: enabled ? null : new Date() } })
    audit({ type: enabled ? 'idp_enable' : 'idp_disable', success: true, eventData: { identityProvider: existing.slug } })
    return succeed(null)
  })
}
