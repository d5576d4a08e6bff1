import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { addIdentityProvider, enableOtpWithBackupCodes, idpRedirect, readLog, signIn, signUpPerson, sql, uniqueEmail } from '../testkit/fixtures.js'
import { type OidcAccount, type OidcTestProvider, startOidcProvider } from '../testkit/oidc.js'

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

/** The whole browser round trip: init, the provider's sign-in as `account`, back with its redirect. */
async function signInAs(provider: string, account: OidcAccount) {
  const data = await idpRedirect(app, idp, provider, account)
  return { response: await completeSignIn(provider, data), callbackUrl: data.url, sessionData: data.sessionData }
}

/** signInAs the provider account `sub-<email>` with that email. */
const signInThroughProvider = (provider: string, email: string, extra: { email_verified?: boolean } = {}) =>
  signInAs(provider, { sub: `sub-${email}`, email, email_verified: extra.email_verified ?? true, name: 'Idp Person' })

const lastIdpEntry = async () => (await readLog(app, { filter: { types: ['idp_login'] }, limit: 1 })).entries[0]

const prisma = () => app.app.services.db.prisma

/** The person's links to provider subjects, by provider slug. */
const linksOf = async (personId: string) =>
  (await prisma().personIdentityProvider.findMany({ where: { personId }, include: { identityProvider: true } })).map((link) => ({
    identityProvider: link.identityProvider.slug,
    externalIdentifier: link.externalIdentifier,
  }))

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
    // The password was set before anyone proved to own the address (below).
    expect(entry!.metadata).toEqual({ identityProvider: slug, externalIdentifier: `sub-${person.email}`, sessionId: expect.any(String), credentialsCleared: true })
  })

  it('clears what was set before the first sign-in through a provider vouching for the email: an account made in advance with that address stays nobody else\'s', async () => {
    // Someone signs up with the victim's address (nothing proves it theirs), sets up TOTP and keeps a session.
    const planted = await signUpPerson(app)
    const plantedSession = await signIn(app, planted)
    await enableOtpWithBackupCodes(app, { ...planted, token: plantedSession })
    // The owner of the address signs in through the provider for the first time.
    const { response } = await signInThroughProvider(slug, planted.email)
    expect(response.data.signInIDP).toMatchObject({ ok: true, result: { person: { id: planted.id } } })
    expect((await lastIdpEntry())!.metadata).toMatchObject({ credentialsCleared: true })
    // The password, the second factor and the old session no longer open the account; the new session does.
    const passwordSignIn = await app.gql(`mutation ($email: String!, $password: String!) { signIn(email: $email, password: $password) { ok error { code } } }`, {
      variables: { email: planted.email, password: planted.password },
      token: app.loginToken,
    })
    expect(passwordSignIn.data.signIn).toMatchObject({ ok: false, error: { code: 'INVALID_CREDENTIALS' } })
    expect((await app.gql('{ me { id } }', { token: plantedSession })).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
    const [person] = await sql<{ otp: boolean; codes: number }>(
      app,
      'SELECT otp_activated_at IS NOT NULL AS otp, (SELECT count(*)::int FROM person_backup_code WHERE person_id = person.id) AS codes FROM person WHERE id = $1',
      [planted.id],
    )
    expect(person).toEqual({ otp: false, codes: 0 })
    expect((await app.gql('{ me { person { id } } }', { token: response.data.signInIDP.result.token })).data.me.person.id).toBe(planted.id)
    // Later sign-ins through the linked subject clear nothing.
    const again = await signInThroughProvider(slug, planted.email)
    expect(again.response.data.signInIDP.ok).toBe(true)
    expect((await lastIdpEntry())!.metadata).not.toHaveProperty('credentialsCleared')
    expect((await app.gql('{ me { id } }', { token: response.data.signInIDP.result.token })).data.me.id).toEqual(expect.any(String))
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
    const createdId = created.response.data.signInIDP.result.person.id
    const entry = await lastIdpEntry()
    expect(entry).toMatchObject({ success: true, personId: createdId })
    expect(await linksOf(createdId)).toEqual([{ identityProvider: autoSlug, externalIdentifier: `sub-${email}` }])
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

describe('the link between a person and the provider subject', () => {
  const account = (sub: string, email: string): OidcAccount => ({ sub, email, email_verified: true })
  const personOf = (response: { data?: any }) => response.data?.signInIDP.result?.person.id

  it('is made by the first sign-in, matched by email', async () => {
    const person = await signUpPerson(app)
    const { response } = await signInAs(slug, account('first-link', person.email))
    expect(personOf(response)).toBe(person.id)
    expect(await linksOf(person.id)).toEqual([{ identityProvider: slug, externalIdentifier: 'first-link' }])
  })

  it('signs the linked person in after either email changed, even to another person\'s email', async () => {
    const person = await signUpPerson(app)
    const sub = `moving-${person.id}`
    expect(personOf((await signInAs(slug, account(sub, person.email))).response)).toBe(person.id)

    const changed = await app.gql('mutation ($id: String!, $email: String) { changeProfile(personId: $id, email: $email) { ok } }', {
      variables: { id: person.id, email: uniqueEmail('changed') },
      token: app.rootToken,
    })
    expect(changed.data.changeProfile.ok).toBe(true)
    expect(personOf((await signInAs(slug, account(sub, person.email))).response)).toBe(person.id)
    expect(personOf((await signInAs(slug, { sub, email: uniqueEmail('renamed-at-idp') })).response)).toBe(person.id)

    const other = await signUpPerson(app)
    expect(personOf((await signInAs(slug, account(sub, other.email))).response)).toBe(person.id)
    expect(await lastIdpEntry()).toMatchObject({ success: true, personId: person.id, personInputIdentifier: other.email })
    expect(await linksOf(other.id)).toEqual([])
  })

  it('refuses another account of the provider with a linked person\'s email (SUBJECT_MISMATCH), changing nothing', async () => {
    const person = await signUpPerson(app)
    await signInAs(slug, account(`owner-${person.id}`, person.email))
    const sessionsBefore = await prisma().apiKey.count({ where: { identityId: person.identityId } })

    const { response } = await signInAs(slug, account(`taker-${person.id}`, person.email))
    expect(response.data.signInIDP).toMatchObject({ ok: false, error: { code: 'INVALID_IDP_RESPONSE' }, result: null })
    const entry = await lastIdpEntry()
    expect(entry).toMatchObject({ success: false, errorCode: 'SUBJECT_MISMATCH', personId: person.id, personInputIdentifier: person.email })
    expect(entry!.metadata).toEqual({ identityProvider: slug, externalIdentifier: `taker-${person.id}` })
    expect(await linksOf(person.id)).toEqual([{ identityProvider: slug, externalIdentifier: `owner-${person.id}` }])
    expect(await prisma().apiKey.count({ where: { identityId: person.identityId } })).toBe(sessionsBefore)
  })

  it('links a person once per provider: the same subject at another provider is a link of its own', async () => {
    const person = await signUpPerson(app)
    const second = await addIdentityProvider(app, { configuration: idp.configuration })
    await signInAs(slug, account(`both-${person.id}`, person.email))
    expect(personOf((await signInAs(second, account(`both-${person.id}`, person.email))).response)).toBe(person.id)
    expect(await linksOf(person.id)).toEqual(
      expect.arrayContaining([
        { identityProvider: slug, externalIdentifier: `both-${person.id}` },
        { identityProvider: second, externalIdentifier: `both-${person.id}` },
      ]),
    )
  })

  it('is not made by a refused sign-in (PERSON_DISABLED rolls it back)', async () => {
    const person = await signUpPerson(app)
    await prisma().person.update({ where: { id: person.id }, data: { disabledAt: new Date() } })
    const { response } = await signInAs(slug, account(`disabled-${person.id}`, person.email))
    expect(response.data.signInIDP.error.code).toBe('PERSON_DISABLED')
    expect(await lastIdpEntry()).toMatchObject({ success: false, errorCode: 'PERSON_DISABLED', personId: person.id })
    expect(await linksOf(person.id)).toEqual([])
  })
})
