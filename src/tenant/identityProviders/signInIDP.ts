import type { AuditEntry } from '../../audit/recorder.js'
import type { IdentityProvider, Person } from '../../generated/prisma/client.js'
import { closeSessions } from '../apiKeys/sessions.js'
import { removeSecondFactor } from '../auth/otp.js'
import { openPersonSession, type SessionRequest } from '../auth/sessionLifetime.js'
import { type Transaction, runCommand } from '../command.js'
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

/**
 * Links a person to the provider's subject, unless the person is linked to another
 * subject of that provider. ON CONFLICT DO NOTHING: a concurrent sign-in that made the
 * same link counts as linked, not as a unique violation.
 */
async function linkSubject(tx: Transaction, link: { personId: string; identityProviderId: string; externalIdentifier: string }) {
  const { count } = await tx.personIdentityProvider.createMany({ data: [link], skipDuplicates: true })
  if (count > 0) return true
  const existing = await tx.personIdentityProvider.findUnique({
    where: { personId_identityProviderId: { personId: link.personId, identityProviderId: link.identityProviderId } },
  })
  return existing?.externalIdentifier === link.externalIdentifier
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
 * the one linked to the provider's subject (`sub`), whatever either email is now.
 * Without a link, the person is found by the email the provider vouches for
 * (with the provider's autoSignUp an unknown email becomes a new person) and
 * linked in the same transaction; a person linked to another subject of the
 * provider is refused, so an email taken over at the provider takes over nothing.
 * The code is redeemed before the transaction starts, so no database
 * transaction waits on the network.
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

  return runCommand(context.prisma, context.actor, async ({ tx, audit, attempting }) => {
    const entry: Omit<AuditEntry<'idp_login'>, 'success'> = {
      type: 'idp_login',
      eventData: { identityProvider: input.identityProvider },
      metadata: { identityProvider: input.identityProvider },
    }
    attempting(entry)
    if (!exchange.ok) {
      audit({ ...entry, success: false, errorCode: (exchange.error.reason as string | undefined) ?? exchange.error.code })
      return fail(exchange.error.code, exchange.error.developerMessage)
    }
    const { identity, provider } = exchange
    const answered = { ...entry, personInputIdentifier: identity.email, metadata: { ...entry.metadata, externalIdentifier: identity.subject } }
    const refuse = <Code extends 'INVALID_IDP_RESPONSE' | 'PERSON_NOT_FOUND' | 'PERSON_DISABLED'>(
      code: Code,
      message: string,
      details: Partial<AuditEntry> & { errorCode?: string } = {},
    ) => {
      audit({ ...answered, success: false, errorCode: code, ...details })
      return fail(code, message)
    }
    const link = { identityProviderId: provider.id, externalIdentifier: identity.subject }
    const linked = await tx.personIdentityProvider.findUnique({
      where: { identityProviderId_externalIdentifier: link },
      include: { person: { include: { identity: true } } },
    })
    let person = linked?.person ?? null
    let credentialsCleared = false
    if (!person) {
      if (!identity.email) return refuse('INVALID_IDP_RESPONSE', 'The provider did not tell the email address.', { errorCode: 'EMAIL_MISSING' })
      if (identity.emailVerified === false) {
        return refuse('INVALID_IDP_RESPONSE', 'The provider has not verified this email address.', { errorCode: 'EMAIL_NOT_VERIFIED' })
      }
      person = await findPersonByEmail(tx, identity.email)
      const matchedByEmail = person !== null
      if (!person && provider.autoSignUp) {
        const created = await tx.identity.create({ data: { roles: ['person'] } })
        person = await tx.person.create({
          data: { email: normalizeEmail(identity.email), name: identity.name, identityId: created.id },
          include: { identity: true },
        })
      }
      if (!person) return refuse('PERSON_NOT_FOUND', 'No person has the email the provider returned.')
      if (!(await linkSubject(tx, { ...link, personId: person.id }))) {
        return refuse('INVALID_IDP_RESPONSE', 'The person with this email signs in with another account of this provider.', {
          personId: person.id,
          errorCode: 'SUBJECT_MISMATCH',
        })
      }
      // A refusal below (a disabled person) rolls this back with the link.
      if (matchedByEmail) credentialsCleared = await clearCredentialsBeforeLink(tx, person)
    }
    if (person.disabledAt) return refuse('PERSON_DISABLED', 'This person is disabled.', { personId: person.id })

    const config = await loadTenantConfig(tx)
    const session = await openPersonSession(context, tx, config.login, person.identityId, input)
    audit({
      ...answered,
      personId: person.id,
      success: true,
      metadata: { ...answered.metadata, sessionId: session.id, ...(credentialsCleared ? { credentialsCleared } : {}) },
    })
    return succeed({ token: session.token, person })
  })
}

/**
 * Nothing in Custos proves that whoever set a person's password or second factor controls the
 * person's email: anyone may sign up with an address. The first sign-in through a provider that
 * vouches for the address is that proof, so what was set before it (password, TOTP and backup
 * codes, open sessions) is cleared, or an account made in advance with someone else's address
 * would stay open to its maker once its owner signs in (pre-account takeover). True when there
 * was anything to clear.
 */
async function clearCredentialsBeforeLink(tx: Transaction, person: Person) {
  const heldCredentials = person.passwordHash !== null || person.otpActivatedAt !== null || person.otpPendingSecret !== null
  if (heldCredentials) {
    await tx.person.update({ where: { id: person.id }, data: { passwordHash: null } })
    await removeSecondFactor(tx, person.id)
  }
  const closed = await closeSessions(tx, person.identityId)
  return heldCredentials || closed > 0
}
