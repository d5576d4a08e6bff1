import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestApp, type TestApp } from '../testkit/app.js'
import { sql } from '../testkit/fixtures.js'
import { entriesSince, expectNoEffect, logSize } from '../testkit/expectations.js'

let app: TestApp
beforeAll(async () => {
  app = await startTestApp()
})
afterAll(() => app?.stop())

const ADD = `mutation ($slug: String!, $type: String!, $configuration: Json!, $options: IDPOptions) {
  addIDP(identityProvider: $slug, type: $type, configuration: $configuration, options: $options) { ok error { code developerMessage } }
}`
const UPDATE = `mutation ($slug: String!, $type: String, $configuration: Json, $options: IDPOptions, $merge: Boolean) {
  updateIDP(identityProvider: $slug, type: $type, configuration: $configuration, options: $options, mergeConfiguration: $merge) { ok error { code developerMessage } }
}`
const oidc = { url: 'https://issuer.example.test', clientId: 'custos', clientSecret: 'very-secret-value' }

const addIdp = (slug: string, configuration: unknown = oidc, type = 'oidc') =>
  app.gql(ADD, { variables: { slug, type, configuration }, token: app.rootToken })

describe('identity providers', () => {
  it('adds, updates, disables and enables, recording configuration key names only', async () => {
    const mark = await logSize(app)
    expect((await app.gql(ADD, { variables: { slug: 'google', type: 'oidc', configuration: oidc, options: { autoSignUp: true } }, token: app.rootToken })).data.addIDP).toEqual({
      ok: true,
      error: null,
    })
    const merged = await app.gql(UPDATE, {
      variables: { slug: 'google', configuration: { clientId: 'renamed', responseType: 'code' }, merge: true, options: { exclusive: true } },
      token: app.rootToken,
    })
    expect(merged.data.updateIDP).toEqual({ ok: true, error: null })
    // What it is already (the same merge and options, or the whole configuration with its secret): ok, and no entry (checked below).
    const [sealed] = await sql(app, "SELECT configuration FROM identity_provider WHERE slug = 'google'")
    for (const variables of [
      { slug: 'google', configuration: { clientId: 'renamed' }, merge: true, options: { exclusive: true, autoSignUp: true } },
      { slug: 'google', type: 'oidc', configuration: { ...oidc, clientId: 'renamed', responseType: 'code' } },
    ]) {
      expect((await app.gql(UPDATE, { variables, token: app.rootToken })).data.updateIDP).toEqual({ ok: true, error: null })
    }
    expect(await sql(app, "SELECT configuration FROM identity_provider WHERE slug = 'google'")).toEqual([sealed])
    // Each twice: the repeat is ok and no second entry.
    for (const mutation of ['disableIDP', 'disableIDP', 'enableIDP', 'enableIDP']) {
      const response = await app.gql(`mutation { ${mutation}(identityProvider: "google") { ok error { code } } }`, { token: app.rootToken })
      expect(response.data[mutation].ok).toBe(true)
    }
    const [row] = await sql(app, "SELECT configuration, auto_sign_up, exclusive, disabled_at FROM identity_provider WHERE slug = 'google'")
    expect(row).toEqual({
      configuration: { url: oidc.url, clientId: 'renamed', responseType: 'code', clientSecret: { sealed: expect.any(String) } },
      auto_sign_up: true,
      exclusive: true,
      disabled_at: null,
    })
    const entries = await entriesSince(app, mark)
    expect(entries.map((entry) => [entry.type, entry.eventData])).toEqual([
      [
        'idp_create',
        {
          identityProvider: 'google',
          type: 'oidc',
          configurationKeys: ['clientId', 'clientSecret', 'url'],
          options: { autoSignUp: true, exclusive: false, initReturnsConfig: false },
        },
      ],
      ['idp_update', { identityProvider: 'google', configurationKeys: ['clientId', 'responseType'], options: { exclusive: true } }],
      ['idp_disable', { identityProvider: 'google' }],
      ['idp_enable', { identityProvider: 'google' }],
    ])
    expect(JSON.stringify(entries)).not.toContain('very-secret-value')
    expect(JSON.stringify(entries)).not.toContain('issuer.example.test')
  })

  it('lists providers without secret values', async () => {
    await addIdp('listed')
    const response = await app.gql('{ identityProviders { slug type configuration disabledAt options { autoSignUp exclusive initReturnsConfig } } }', {
      token: app.rootToken,
    })
    const listed = response.data.identityProviders.find((provider: { slug: string }) => provider.slug === 'listed')
    expect(listed).toEqual({
      slug: 'listed',
      type: 'oidc',
      configuration: { url: oidc.url, clientId: 'custos' },
      disabledAt: null,
      options: { autoSignUp: false, exclusive: false, initReturnsConfig: false },
    })
    expect(JSON.stringify(response)).not.toContain(oidc.clientSecret)
  })

  it('refuses duplicates, unknown types and invalid configurations without any effect', async () => {
    await addIdp('existing')
    await expectNoEffect(app, async () => {
      expect((await addIdp('existing')).data.addIDP.error.code).toBe('ALREADY_EXISTS')
      expect((await addIdp('other', oidc, 'saml')).data.addIDP.error.code).toBe('UNKNOWN_TYPE')
      for (const configuration of [{ url: oidc.url, clientId: 'x' }, { clientId: 'x', clientSecret: 'y' }, { ...oidc, url: 'not a url' }, [oidc], 'text']) {
        const response = await addIdp('other', configuration)
        expect(response.data.addIDP.error.code, JSON.stringify(configuration)).toBe('INVALID_CONFIGURATION')
        expect(response.data.addIDP.error.developerMessage).not.toContain('very-secret-value')
      }
      const replaced = await app.gql(UPDATE, { variables: { slug: 'existing', configuration: { clientId: 'only' } }, token: app.rootToken })
      expect(replaced.data.updateIDP.error.code).toBe('INVALID_CONFIGURATION')
      const missing = await app.gql(UPDATE, { variables: { slug: 'missing', configuration: oidc }, token: app.rootToken })
      expect(missing.data.updateIDP.error.code).toBe('NOT_FOUND')
      for (const mutation of ['disableIDP', 'enableIDP']) {
        const response = await app.gql(`mutation { ${mutation}(identityProvider: "missing") { ok error { code } } }`, { token: app.rootToken })
        expect(response.data[mutation].error.code).toBe('NOT_FOUND')
      }
      expect((await addIdp('bad slug!')).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT')
    })
  })
})

describe('identity provider secrets at rest', () => {
  const initSignIn = (slug: string) =>
    app.gql('mutation ($slug: String!) { initSignInIDP(identityProvider: $slug, data: { redirectUrl: "https://app.example.test/cb" }) { ok error { code developerMessage } } }', {
      variables: { slug },
      token: app.loginToken,
    })

  it('seals the client secret and secret-named pass-through keys, and lists declared keys whatever their names', async () => {
    const privateKey = `pk-${Date.now()}-secret-material`
    await addIdp('sealed', { ...oidc, tokenEndpointAuthMethod: 'client_secret_post', signing: { privateKey, algorithm: 'RS256' } })
    const [row] = await sql<{ configuration: Record<string, unknown>; text: string }>(
      app,
      "SELECT configuration, configuration::text AS text FROM identity_provider WHERE slug = 'sealed'",
    )
    expect(row!.text).not.toContain(oidc.clientSecret)
    expect(row!.text).not.toContain(privateKey)
    expect(row!.configuration).toMatchObject({ clientSecret: { sealed: expect.any(String) }, signing: { privateKey: { sealed: expect.any(String) }, algorithm: 'RS256' } })
    const listed = await app.gql('{ identityProviders { slug configuration } }', { token: app.rootToken })
    expect(listed.data.identityProviders.find((provider: { slug: string }) => provider.slug === 'sealed').configuration).toEqual({
      url: oidc.url,
      clientId: 'custos',
      tokenEndpointAuthMethod: 'client_secret_post',
      signing: { algorithm: 'RS256' },
    })
  })

  it('refuses a sealed secret copied to another provider: sign-in answers IDP_VALIDATION_FAILED, a merging update INVALID_CONFIGURATION', async () => {
    await addIdp('original')
    await addIdp('copy')
    await sql(
      app,
      `UPDATE identity_provider SET configuration = jsonb_set(configuration::jsonb, '{clientSecret}', (SELECT configuration::jsonb -> 'clientSecret' FROM identity_provider WHERE slug = 'original'))
       WHERE slug = 'copy'`,
    )
    const init = await initSignIn('copy')
    expect(init.data.initSignInIDP.error).toEqual({ code: 'IDP_VALIDATION_FAILED', developerMessage: 'Identity provider copy is misconfigured: the secret clientSecret cannot be read' })
    await expectNoEffect(app, async () => {
      const merged = await app.gql(UPDATE, { variables: { slug: 'copy', configuration: { clientId: 'other' }, merge: true }, token: app.rootToken })
      expect(merged.data.updateIDP.error.code).toBe('INVALID_CONFIGURATION')
    })
    // Giving the secret again repairs it.
    const repaired = await app.gql(UPDATE, { variables: { slug: 'copy', configuration: { clientSecret: 'given-again' }, merge: true }, token: app.rootToken })
    expect(repaired.data.updateIDP).toEqual({ ok: true, error: null })
  })
})
