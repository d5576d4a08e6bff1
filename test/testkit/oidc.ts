import { generateKeyPairSync } from 'node:crypto'
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import Provider from 'oidc-provider'

/** Who the next authorization signs in as. */
export interface OidcAccount {
  readonly sub: string
  readonly email?: string
  readonly email_verified?: boolean
  readonly name?: string
}

export interface OidcTestProvider {
  readonly issuer: string
  readonly clientId: string
  readonly clientSecret: string
  readonly redirectUri: string
  /** The identity_provider configuration pointing at this provider. */
  readonly configuration: Record<string, unknown>
  /**
   * Plays the browser: follows the authorization URL through the provider,
   * signing in as `account`, and returns the URL the provider redirects back to.
   */
  authorize(authUrl: string, account: OidcAccount): Promise<string>
  close(): Promise<void>
}

/**
 * A real OpenID Connect provider (oidc-provider) on 127.0.0.1 with one
 * confidential client. Its interaction step signs in whichever account the
 * test names and grants the requested scopes, so no HTML needs to be read.
 */
export async function startOidcProvider(): Promise<OidcTestProvider> {
  const accounts = new Map<string, OidcAccount>()
  let nextAccount: OidcAccount | undefined
  let handler: (req: IncomingMessage, res: ServerResponse) => void = () => {}
  const server = createServer((req, res) => handler(req, res))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const clientId = 'custos-test'
  const clientSecret = 'custos-test-client-secret-0123456789'
  const redirectUri = 'http://127.0.0.1:1/idp/callback'

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    cookies: { keys: ['oidc-test-cookie-key'] },
    jwks: { keys: [{ ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }), kid: 'test', use: 'sig' }] },
    ttl: { Interaction: 600, Grant: 600, Session: 600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: (_ctx, sub) => {
      const account = accounts.get(sub)
      return account ? { accountId: sub, claims: () => ({ ...account }) } : undefined
    },
  })

  handler = (req, res) => {
    if (!req.url?.startsWith('/interaction/')) return provider.callback()(req, res)
    void (async () => {
      const details = await provider.interactionDetails(req, res)
      if (!nextAccount) throw new Error('no account to sign in as')
      accounts.set(nextAccount.sub, nextAccount)
      const grant = new provider.Grant({ accountId: nextAccount.sub, clientId: String(details.params.client_id) })
      grant.addOIDCScope(String(details.params.scope))
      const grantId = await grant.save()
      await provider.interactionFinished(req, res, { login: { accountId: nextAccount.sub }, consent: { grantId } }, { mergeWithLastSubmission: false })
    })().catch((error: unknown) => {
      res.statusCode = 500
      res.end(String(error))
    })
  }

  return {
    issuer,
    clientId,
    clientSecret,
    redirectUri,
    configuration: { url: issuer, clientId, clientSecret },
    async authorize(authUrl, account) {
      nextAccount = account
      const cookies = new Map<string, string>()
      let url = authUrl
      // Bounded: authorize → interaction → resume → redirect back.
      for (let hop = 0; hop < 10; hop++) {
        const response = await fetch(url, {
          redirect: 'manual',
          headers: { cookie: [...cookies].map(([name, value]) => `${name}=${value}`).join('; ') },
        })
        for (const cookie of response.headers.getSetCookie()) {
          const [pair = ''] = cookie.split(';')
          const separator = pair.indexOf('=')
          cookies.set(pair.slice(0, separator), pair.slice(separator + 1))
        }
        const location = response.headers.get('location')
        if (!location) throw new Error(`the provider stopped with ${response.status}: ${await response.text()}`)
        url = new URL(location, url).href
        if (url.startsWith(redirectUri)) return url
      }
      throw new Error('too many redirects')
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
