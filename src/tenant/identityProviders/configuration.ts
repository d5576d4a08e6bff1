import { z } from 'zod'
import { decryptText, encryptText } from '../../crypto/encryption.js'
import type { Prisma } from '../../generated/prisma/client.js'
import { describeIssues, isJsonObject } from '../invalidInput.js'
import { oidcConfigurationSchema } from './oidc.js'

/**
 * What each identity provider type needs in its configuration, and which of
 * its values are secrets. addIDP/updateIDP and the sign-in flow check a
 * configuration with the same schema; keys a schema does not declare pass through.
 */
export const identityProviderTypes = {
  oidc: { schema: oidcConfigurationSchema, secretKeys: ['clientSecret'] },
} as const satisfies Record<string, { schema: z.ZodObject; secretKeys: readonly string[] }>

export type IdentityProviderType = keyof typeof identityProviderTypes
export const isKnownIdentityProviderType = (type: string): type is IdentityProviderType => Object.hasOwn(identityProviderTypes, type)

type Json = Prisma.JsonValue
type JsonObject = Prisma.JsonObject

/** Names that hold secrets where a type does not say otherwise (a pass-through `privateKey`, `refreshToken`, ...). */
const secretLookingName = /secret|password|private|token/i

/**
 * Whether the value at `path` is a secret: a type's declared secret key, or
 * an undeclared key (at any depth) whose name looks like one. Declared keys
 * such as `tokenEndpointAuthMethod` are not secrets whatever their names say.
 */
function isSecretKey(type: string, path: readonly string[]): boolean {
  const key = path[path.length - 1]!
  if (path.length === 1 && isKnownIdentityProviderType(type)) {
    const { schema, secretKeys } = identityProviderTypes[type]
    if (Object.hasOwn(schema.shape, key)) return (secretKeys as readonly string[]).includes(key)
  }
  return secretLookingName.test(key)
}


/** Rebuilds `value` with `onSecret` applied to every secret key's value (dropped when it returns undefined). */
function mapSecrets(type: string, value: Json, onSecret: (secret: Json, path: readonly string[]) => Json | undefined, path: readonly string[] = []): Json {
  if (Array.isArray(value)) return value.map((item, index) => mapSecrets(type, item, onSecret, [...path, String(index)]))
  if (!isJsonObject(value)) return value
  const entries: [string, Json][] = []
  for (const [key, item = null] of Object.entries(value)) {
    const itemPath = [...path, key]
    const mapped = isSecretKey(type, itemPath) ? onSecret(item, itemPath) : mapSecrets(type, item, onSecret, itemPath)
    if (mapped !== undefined) entries.push([key, mapped])
  }
  return Object.fromEntries(entries)
}

/** The configuration without its secrets, as queries and initSignInIDP show it. */
export const withoutSecrets = (type: string, configuration: Json): Json => mapSecrets(type, configuration, () => undefined)

/** A stored secret: AES-256-GCM (src/crypto/encryption.ts) of its JSON, bound to the provider and key. */
const sealedSecret = z.strictObject({ sealed: z.string() })
const binding = (slug: string, path: readonly string[]) => `identity_provider:${slug}:${path.join('.')}`

/** The configuration as stored: every secret value sealed with the tenant's encryption key. */
export const sealConfiguration = (key: Buffer, slug: string, type: string, configuration: JsonObject): JsonObject =>
  mapSecrets(type, configuration, (secret, path) => ({ sealed: encryptText(key, JSON.stringify(secret), binding(slug, path)) })) as JsonObject

/** A stored secret that does not open (another key, a value copied from elsewhere, or not sealed at all). */
export class UnreadableSecretError extends Error {}

/** The stored configuration with its secrets opened again. */
export function openConfiguration(key: Buffer, slug: string, type: string, stored: Json): Json {
  return mapSecrets(type, stored, (secret, path) => {
    const parsed = sealedSecret.safeParse(secret)
    try {
      if (!parsed.success) throw new Error('not sealed')
      return JSON.parse(decryptText(key, parsed.data.sealed, binding(slug, path))) as Json
    } catch {
      throw new UnreadableSecretError(`the secret ${path.join('.')} cannot be read`)
    }
  })
}

/** Why a configuration is not valid for its type, naming keys and rules but never values; null when it is. */
export function configurationProblem(type: IdentityProviderType, configuration: unknown): string | null {
  if (!isJsonObject(configuration)) return 'configuration must be a JSON object'
  const parsed = identityProviderTypes[type].schema.safeParse(configuration)
  return parsed.success ? null : describeIssues(parsed.error, 'configuration')
}
