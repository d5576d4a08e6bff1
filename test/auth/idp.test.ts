import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { addIdentityProvider, idpRedirect, readLog, signUpPerson, uniqueEmail } from '../testkit/fixtures.js'
import { type OidcTestProvider, startOidcProvider } from '../testkit/oidc.js'

let app: TestApp
let idp: OidcTestProvider
let slug: string

beforeAll(async () => {
  idp = await startOidcProvider()
  app = await startTestApp()
  slug = await addIdentityProvider(app, { configuration: idp.configuration })
})
afterAll(async () => {
  await app.stop()
  await idp.close()
})

const initSignIn = (identityProvider: string, data: unknown = { redirectUrl: idp.redirectUri }) =>
  app.gql(
    `mutation ($identityProvider: String!, $data: Json) {
      initSignInIDP(identityProvider: $identityProvider, data: $data) { ok error { code developerMessage } result { authUrl sessionData idpConfiguration } }
    }`,
    { variables: { identityProvider, data }, token: app.loginToken },
  )

const completeSignIn = (identityProvider: string, data: unknown) =>
  app.gql(
    `mutation ($identityProvider: String!, $data: Json) {
      signInIDP(identityProvider: $identityProvider, data: $data) { ok error { code developerMessage } result { token person { id email } } }
    }`,
    { variables: { identityProvider, data }, token: app.loginToken },
  )

/** The whole browser round trip: init, the provider's sign-in as `email`, back with its redirect. */
async function signInThroughProvider(provider: string, email: string, extra: { email_verified?: boolean } = {}) {
  const data = await idpRedirect(app, idp, provider, { sub: `sub-${email}`, email, email_verified: extra.email_verified ?? true, name: 'Idp Person' })
  return { response: await completeSignIn(provider, data), callbackUrl: data.url, sessionData: data.sessionData }
}

const lastIdpEntry = async () => (await readLog(app, { filter: { types: ['idp_login'] }, limit: 1 })).entries[0]

describe('OpenID Connect sign-in', () => {
  it('starts with an authorization URL using PKCE and returns session data to keep', async () => {
    const init = await initSignIn(slug)
    const { authUrl, sessionData, idpConfiguration } = init.data.initSignInIDP.result
    const url = new URL(authUrl)
    expect(url.origin).toBe(idp.issuer)
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      client_id: idp.clientId,
      redirect_uri: idp.redirectUri,
      response_type: 'code',
      code_challenge_method: 'S256',
      state: sessionData.state,
      nonce: sessionData.nonce,
    })
    expect(sessionData.codeVerifier).toMatch(/^[\w-]{43,}$/)
    expect(idpConfiguration).toBeNull()
  })

  it('signs an existing person in, matched by email (idp_login with session)', async () => {
    const person = await signUpPerson(app)
    const { response } = await signInThroughProvider(slug, person.email)
    expect(response.data.signInIDP).toMatchObject({ ok: true, result: { person: { id: person.id } } })
    const me = await app.gql('{ me { person { id } } }', { token: response.data.signInIDP.result.token })
    expect(me.data.me.person.id).toBe(person.id)
    const entry = await lastIdpEntry()
    expect(entry).toMatchObject({ success: true, personId: person.id, personInputIdentifier: person.email, eventData: { identityProvider: slug } })
    expect(entry!.metadata).toEqual({ identityProvider: slug, sessionId: expect.any(String) })
  })

  it('keeps signing in after updateIDP merges a change into a provider whose client secret is sealed', async () => {
    const merged = await addIdentityProvider(app, { configuration: idp.configuration })
    const update = await app.gql(
      'mutation ($slug: String!) { updateIDP(identityProvider: $slug, configuration: { scope: "openid email" }, mergeConfiguration: true) { ok error { code } } }',
      { variables: { slug: merged }, token: app.rootToken },
    )
    expect(update.data.updateIDP).toEqual({ ok: true, error: null })
    const person = await signUpPerson(app)
    const { response } = await signInThroughProvider(merged, person.email)
    expect(response.data.signInIDP).toMatchObject({ ok: true, result: { person: { id: person.id } } })
  })

  it('refuses a redirect used twice, or with a forged state (INVALID_IDP_RESPONSE)', async () => {
    const person = await signUpPerson(app)
    const { callbackUrl, sessionData } = await signInThroughProvider(slug, person.email)
    const replay = await completeSignIn(slug, { url: callbackUrl, sessionData })
    expect(replay.data.signInIDP.error.code).toBe('INVALID_IDP_RESPONSE')
    expect(await lastIdpEntry()).toMatchObject({ success: false, errorCode: 'INVALID_IDP_RESPONSE' })

    const init = await initSignIn(slug)
    const callback = await idp.authorize(init.data.initSignInIDP.result.authUrl, { sub: 'forged', email: person.email, email_verified: true })
    const forged = await completeSignIn(slug, { url: callback, sessionData: { ...init.data.initSignInIDP.result.sessionData, state: 'other-state' } })
    expect(forged.data.signInIDP.error.code).toBe('INVALID_IDP_RESPONSE')
  })

  it('answers PERSON_NOT_FOUND for an unknown email, and creates the person with autoSignUp', async () => {
    const email = uniqueEmail('from-idp')
    const unknown = await signInThroughProvider(slug, email)
    expect(unknown.response.data.signInIDP.error.code).toBe('PERSON_NOT_FOUND')
    expect(await lastIdpEntry()).toMatchObject({ success: false, errorCode: 'PERSON_NOT_FOUND', personInputIdentifier: email, personId: null })

    const autoSlug = await addIdentityProvider(app, { configuration: idp.configuration, autoSignUp: true, initReturnsConfig: true })
    const created = await signInThroughProvider(autoSlug, email)
    expect(created.response.data.signInIDP).toMatchObject({ ok: true, result: { person: { email } } })
    const entry = await lastIdpEntry()
    expect(entry).toMatchObject({ success: true, personId: created.response.data.signInIDP.result.person.id })
    const init = await initSignIn(autoSlug)
    expect(init.data.initSignInIDP.result.idpConfiguration).toEqual({
      url: idp.issuer,
      clientId: idp.clientId,
      scope: 'openid email profile',
      tokenEndpointAuthMethod: 'client_secret_basic',
      fetchUserInfo: true,
      timeout: 5,
    })
  })

  it('refuses an email the provider has not verified', async () => {
    const person = await signUpPerson(app)
    const { response } = await signInThroughProvider(slug, person.email, { email_verified: false })
    expect(response.data.signInIDP.error.code).toBe('INVALID_IDP_RESPONSE')
    expect(await lastIdpEntry()).toMatchObject({ success: false, errorCode: 'EMAIL_NOT_VERIFIED', personInputIdentifier: person.email })
  })

  it('answers PROVIDER_NOT_FOUND for unknown or disabled providers and IDP_VALIDATION_FAILED for bad data', async () => {
    expect((await initSignIn('no-such-provider')).data.initSignInIDP.error.code).toBe('PROVIDER_NOT_FOUND')
    const disabled = await addIdentityProvider(app, { configuration: idp.configuration, disabled: true })
    expect((await initSignIn(disabled)).data.initSignInIDP.error.code).toBe('PROVIDER_NOT_FOUND')
    expect((await completeSignIn(disabled, {})).data.signInIDP.error.code).toBe('PROVIDER_NOT_FOUND')
    expect(await lastIdpEntry()).toMatchObject({ success: false, errorCode: 'PROVIDER_NOT_FOUND', eventData: { identityProvider: disabled } })

    expect((await initSignIn(slug, { redirectUrl: 'not a url' })).data.initSignInIDP.error.code).toBe('IDP_VALIDATION_FAILED')
    expect((await completeSignIn(slug, { url: 'https://x.test/cb' })).data.signInIDP.error.code).toBe('IDP_VALIDATION_FAILED')
    expect(await lastIdpEntry()).toMatchObject({ success: false, errorCode: 'IDP_VALIDATION_FAILED' })
  })

  it('answers IDP_VALIDATION_FAILED when the provider cannot be reached', async () => {
    const unreachable = await addIdentityProvider(app, { configuration: { ...idp.configuration, url: 'http://127.0.0.1:9/' } })
    const init = await initSignIn(unreachable)
    expect(init.data.initSignInIDP.error.code).toBe('IDP_VALIDATION_FAILED')
  })
})
