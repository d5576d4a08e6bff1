import * as oidc from 'openid-client'
import { z } from 'zod'
import { describeIssues } from '../invalidInput.js'

/**
 * OpenID Connect sign-in (authorization code flow with PKCE) through
 * openid-client. The flow's state, nonce and PKCE verifier travel in
 * `sessionData`, which the client keeps between initSignInIDP and signInIDP.
 */

/** An identity_provider row's configuration for type `oidc` (addIDP/updateIDP check it too; its clientSecret is sealed at rest). */
export const oidcConfigurationSchema = z.object({
  /** The issuer; its /.well-known/openid-configuration is read. */
  url: z.url(),
  clientId: z.string().min(1),
  clientSecret: z.string().min(1),
  scope: z.string().min(1).default('openid email profile'),
  tokenEndpointAuthMethod: z.enum(['client_secret_basic', 'client_secret_post']).default('client_secret_basic'),
  /** Read the userinfo endpoint when the ID token carries no email (conforming providers put scope claims only there). */
  fetchUserInfo: z.boolean().default(true),
  /** Seconds for each request to the provider. */
  timeout: z.number().positive().max(60).default(5),
})
export type OidcConfiguration = z.infer<typeof oidcConfigurationSchema>

const initDataSchema = z.strictObject({ redirectUrl: z.url() })

const sessionDataSchema = z.object({ state: z.string().min(1), nonce: z.string().min(1), codeVerifier: z.string().min(43) })

const responseDataSchema = z.object({
  /** The URL the provider redirected the browser to, with code and state. */
  url: z.url(),
  /** The redirect URL given to initSignInIDP; by default `url` without its query. */
  redirectUrl: z.url().optional(),
  sessionData: sessionDataSchema,
})

/** The client's data for the flow is malformed. */
export class IdpValidationError extends Error {}
/** The provider's answer failed a check (state, nonce, PKCE, code, ID token). */
export class IdpResponseError extends Error {}
/** The provider's metadata could not be read. */
export class IdpUnavailableError extends Error {}

function parseOrThrow<T>(schema: z.ZodType<T>, data: unknown): T {
  const parsed = schema.safeParse(data ?? {})
  if (!parsed.success) throw new IdpValidationError(describeIssues(parsed.error, 'data'))
  return parsed.data
}

// Plain HTTP only for a provider on this machine (development, tests); anything else must use TLS.
const loopbackHosts = new Set(['127.0.0.1', 'localhost', '[::1]'])

const discovered = new Map<string, Promise<oidc.Configuration>>()

/** The provider's metadata and this client's credentials, discovered once per configuration. */
function clientConfiguration(configuration: OidcConfiguration): Promise<oidc.Configuration> {
  const cacheKey = JSON.stringify([configuration.url, configuration.clientId, configuration.clientSecret, configuration.tokenEndpointAuthMethod])
  let pending = discovered.get(cacheKey)
  if (!pending) {
    const issuer = new URL(configuration.url)
    const authentication =
      configuration.tokenEndpointAuthMethod === 'client_secret_post'
        ? oidc.ClientSecretPost(configuration.clientSecret)
        : oidc.ClientSecretBasic(configuration.clientSecret)
    pending = oidc
      .discovery(issuer, configuration.clientId, undefined, authentication, {
        timeout: configuration.timeout,
        execute: issuer.protocol === 'http:' && loopbackHosts.has(issuer.hostname) ? [oidc.allowInsecureRequests] : [],
      })
      .catch((error: unknown) => {
        throw new IdpUnavailableError(`Discovery at ${issuer.href} failed: ${error instanceof Error ? error.message : String(error)}`)
      })
    // A failed discovery is tried again next time.
    pending.catch(() => discovered.delete(cacheKey))
    discovered.set(cacheKey, pending)
  }
  return pending
}

/** Reads a stored configuration whose secrets are opened, with the defaults filled in. */
export const parseOidcConfiguration = (configuration: unknown) => parseOrThrow(oidcConfigurationSchema, configuration)

/** The URL to send the browser to, and the session data to keep until signInIDP. */
export async function initOidcSignIn(configuration: OidcConfiguration, data: unknown) {
  const { redirectUrl } = parseOrThrow(initDataSchema, data)
  const client = await clientConfiguration(configuration)
  const sessionData = { state: oidc.randomState(), nonce: oidc.randomNonce(), codeVerifier: oidc.randomPKCECodeVerifier() }
  const authUrl = oidc.buildAuthorizationUrl(client, {
    redirect_uri: redirectUrl,
    scope: configuration.scope,
    response_type: 'code',
    state: sessionData.state,
    nonce: sessionData.nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(sessionData.codeVerifier),
    code_challenge_method: 'S256',
  })
  return { authUrl: authUrl.href, sessionData }
}

export interface OidcIdentity {
  /** The ID token's `sub` (required there; userinfo must repeat it): the account's stable identifier at the provider, unlike its email. */
  readonly subject: string
  readonly email: string | null
  readonly emailVerified: boolean | null
  readonly name: string | null
}

/**
 * Redeems the authorization code of the provider's redirect, checking state,
 * nonce, PKCE and the ID token, and returns who signed in.
 */
export async function completeOidcSignIn(configuration: OidcConfiguration, data: unknown): Promise<OidcIdentity> {
  const response = parseOrThrow(responseDataSchema, data)
  const client = await clientConfiguration(configuration)
  const callback = new URL(response.url)
  const redirectUri = response.redirectUrl ?? `${callback.origin}${callback.pathname}`
  let claims: Record<string, unknown>
  try {
    const tokens = await oidc.authorizationCodeGrant(
      client,
      callback,
      {
        pkceCodeVerifier: response.sessionData.codeVerifier,
        expectedState: response.sessionData.state,
        expectedNonce: response.sessionData.nonce,
        idTokenExpected: true,
      },
      { redirect_uri: redirectUri },
    )
    claims = { ...tokens.claims() }
    if (typeof claims.email !== 'string' && configuration.fetchUserInfo) {
      claims = { ...claims, ...(await oidc.fetchUserInfo(client, tokens.access_token, String(claims.sub))) }
    }
  } catch (error) {
    throw new IdpResponseError(error instanceof Error ? error.message : 'The provider rejected the response.')
  }
  return {
    subject: String(claims.sub),
    email: typeof claims.email === 'string' ? claims.email : null,
    emailVerified: typeof claims.email_verified === 'boolean' ? claims.email_verified : null,
    name: typeof claims.name === 'string' ? claims.name : null,
  }
}
