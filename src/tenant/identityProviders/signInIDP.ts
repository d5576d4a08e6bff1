import type { AuditEntry } from '../../audit/recorder.js'
import type { IdentityProvider } from '../../generated/prisma/client.js'
import { openPersonSession, type SessionRequest } from '../auth/sessionLifetime.js'
import { runCommand } from '../command.js'
import { loadTenantConfig } from '../config/tenantConfig.js'
import type { TenantContext } from '../context.js'
import { type Failure, fail, succeed } from '../outcome.js'
import { findPersonByEmail, normalizeEmail } from '../persons/persons.js'
import { UnreadableSecretError, isKnownIdentityProviderType, openConfiguration, withoutSecrets } from './configuration.js'
import {
  IdpResponseError,
  IdpUnavailableError,
  IdpValidationError,
  type OidcConfiguration,
  type OidcIdentity,
  completeOidcSignIn,
  initOidcSignIn,
  parseOidcConfiguration,
} from './oidc.js'

type ProviderLookup = { ok: true; provider: IdentityProvider; configuration: OidcConfiguration } | Failure<'PROVIDER_NOT_FOUND' | 'IDP_VALIDATION_FAILED'>

/** An enabled provider of a supported type with a valid configuration, its secrets opened. */
async function findProvider(context: TenantContext, slug: string): Promise<ProviderLookup> {
  const provider = await context.prisma.identityProvider.findUnique({ where: { slug } })
  if (!provider || provider.disabledAt) return fail('PROVIDER_NOT_FOUND', `Identity provider ${slug} not found or disabled.`)
  if (!isKnownIdentityProviderType(provider.type)) return fail('PROVIDER_NOT_FOUND', `Identity provider type ${provider.type} is not supported.`)
  try {
    const configuration = openConfiguration(context.encryptionKey, provider.slug, provider.type, provider.configuration)
    return { ok: true, provider, configuration: parseOidcConfiguration(configuration) }
  } catch (error) {
    if (!(error instanceof IdpValidationError || error instanceof UnreadableSecretError)) throw error
    return fail('IDP_VALIDATION_FAILED', `Identity provider ${slug} is misconfigured: ${error.message}`)
  }
}

/** Bad client data, or a provider that cannot be reached, as a response code. */
function validationFailure(error: unknown) {
  if (error instanceof IdpValidationError) return fail('IDP_VALIDATION_FAILED' as const, error.message)
  if (error instanceof IdpUnavailableError) return fail('IDP_VALIDATION_FAILED' as const, error.message, { reason: 'IDP_UNAVAILABLE' })
  throw error
}

/** The provider-facing errors of a sign-in, as response codes. */
function idpFailure(error: unknown) {
  if (error instanceof IdpResponseError) return fail('INVALID_IDP_RESPONSE' as const, error.message)
  return validationFailure(error)
}

/** Starts a sign-in: the authorization URL to send the browser to, and the session data to keep. */
export async function initSignInIDP(context: TenantContext, slug: string, data: unknown) {
  const lookup = await findProvider(context, slug)
  if (!lookup.ok) return lookup
  try {
    const { authUrl, sessionData } = await initOidcSignIn(lookup.configuration, data)
    const idpConfiguration = lookup.provider.initReturnsConfig ? withoutSecrets(lookup.provider.type, lookup.configuration) : null
    return succeed({ authUrl, sessionData, idpConfiguration })
  } catch (error) {
    return validationFailure(error)
  }
}

export interface SignInIDPInput extends SessionRequest {
  readonly identityProvider: string
  readonly data: unknown
}

type Exchange =
  | { ok: true; identity: OidcIdentity; provider: IdentityProvider }
  | Failure<'PROVIDER_NOT_FOUND' | 'IDP_VALIDATION_FAILED' | 'INVALID_IDP_RESPONSE'>

/**
 * Completes a sign-in with the provider's redirect (`idp_login`). The person is
 * found by the email the provider vouches for; with the provider's autoSignUp
 * an unknown email becomes a new person. The code is redeemed before the
 * transaction starts, so no database transaction waits on the network.
 */
export async function signInIDP(context: TenantContext, input: SignInIDPInput) {
  const lookup = await findProvider(context, input.identityProvider)
  let exchange: Exchange
  if (!lookup.ok) exchange = lookup
  else {
    try {
      exchange = { ok: true, identity: await completeOidcSignIn(lookup.configuration, input.data), provider: lookup.provider }
    } catch (error) {
      exchange = idpFailure(error)
    }
  }

  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    const entry: Omit<AuditEntry<'idp_login'>, 'success'> = {
      type: 'idp_login',
      eventData: { identityProvider: input.identityProvider },
      metadata: { identityProvider: input.identityProvider },
    }
    if (!exchange.ok) {
      audit({ ...entry, success: false, errorCode: (exchange.error.reason as string | undefined) ?? exchange.error.code })
      return fail(exchange.error.code, exchange.error.developerMessage)
    }
    const { identity, provider } = exchange
    const refuse = <Code extends 'INVALID_IDP_RESPONSE' | 'PERSON_NOT_FOUND' | 'PERSON_DISABLED'>(
      code: Code,
      message: string,
      details: Partial<AuditEntry> & { errorCode?: string } = {},
    ) => {
      audit({ ...entry, personInputIdentifier: identity.email, success: false, errorCode: code, ...details })
      return fail(code, message)
    }
    if (!identity.email) return refuse('INVALID_IDP_RESPONSE', 'The provider did not tell the email address.', { errorCode: 'EMAIL_MISSING' })
    if (identity.emailVerified === false) {
      return refuse('INVALID_IDP_RESPONSE', 'The provider has not verified this email address.', { errorCode: 'EMAIL_NOT_VERIFIED' })
    }

    let person = await findPersonByEmail(tx, identity.email)
    if (!person && provider.autoSignUp) {
      const created = await tx.identity.create({ data: { roles: ['person'] } })
      person = await tx.person.create({
        data: { email: normalizeEmail(identity.email), name: identity.name, identityId: created.id },
        include: { identity: true },
      })
    }
    if (!person) return refuse('PERSON_NOT_FOUND', 'No person has the email the provider returned.')
    if (person.disabledAt) return refuse('PERSON_DISABLED', 'This person is disabled.', { personId: person.id })

    const config = await loadTenantConfig(tx)
    const session = await openPersonSession(context, tx, config.login, person.identityId, input)
    audit({
      ...entry,
      personInputIdentifier: identity.email,
      personId: person.id,
      success: true,
      metadata: { ...entry.metadata, sessionId: session.id },
    })
    return succeed({ token: session.token, person })
  })
}
