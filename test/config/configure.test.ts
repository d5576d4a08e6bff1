import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { readLog, signedInPerson } from '../testkit/fixtures.js'

let app: TestApp

beforeAll(async () => {
  app = await startTestApp({}, { defaultRateLimits: true })
})
afterAll(async () => {
  await app.stop()
})

const configurationQuery = `{
  configuration {
    signup { requireEmailVerification }
    passwordless { enabled url expiration }
    password { minLength requireUppercase requireLowercase requireDigit requireSpecial pattern checkBlacklist checkHibp }
    login { baseBackoff maxBackoff attemptWindow revealUserExists revealLoginMethod defaultTokenExpiration maxTokenExpiration }
    captcha { provider threshold }
    rateLimits { signUpPerIp { limit window } loginPerIp { limit window } passwordResetPerIp { limit window } passwordlessInitPerIp { limit window } }
  }
}`

const configure = (config: Record<string, unknown>, token = app.rootToken) =>
  app.gql(`mutation ($config: ConfigInput!) { configure(config: $config) { ok error { code developerMessage } } }`, {
    variables: { config },
    token,
  })

const configuration = async () => (await app.gql(configurationQuery, { token: app.rootToken })).data.configuration

describe('configuration and configure', () => {
  it('reads the documented defaults', async () => {
    expect(await configuration()).toEqual({
      signup: { requireEmailVerification: false },
      passwordless: { enabled: 'never', url: null, expiration: 'PT5M' },
      password: {
        minLength: 8,
        requireUppercase: 0,
        requireLowercase: 0,
        requireDigit: 0,
        requireSpecial: 0,
        pattern: null,
        checkBlacklist: false,
        checkHibp: false,
      },
      login: {
        baseBackoff: 'PT1S',
        maxBackoff: 'PT5M',
        attemptWindow: 'PT5M',
        revealUserExists: false,
        revealLoginMethod: false,
        defaultTokenExpiration: 'PT30M',
        maxTokenExpiration: null,
      },
      captcha: { provider: null, threshold: null },
      rateLimits: {
        signUpPerIp: { limit: 20, window: 'PT1H' },
        loginPerIp: { limit: 100, window: 'PT1M' },
        passwordResetPerIp: { limit: 10, window: 'PT1H' },
        passwordlessInitPerIp: { limit: 20, window: 'PT1H' },
      },
    })
  })

  it('changes only what is given, records tenant_config_change with the input, and masks the captcha secret', async () => {
    const secret = `captcha-secret-${Date.now()}`
    const input = {
      password: { minLength: 12, pattern: '^\\S+$' },
      login: { maxBackoff: 'PT10M' },
      captcha: { provider: 'turnstile', secret, threshold: 0.5 },
      rateLimits: { loginPerIp: { limit: 500 } },
    }
    expect((await configure(input)).data.configure).toEqual({ ok: true, error: null })
    const config = await configuration()
    expect(config.password).toMatchObject({ minLength: 12, pattern: '^\\S+$', requireDigit: 0 })
    expect(config.login).toMatchObject({ maxBackoff: 'PT10M', baseBackoff: 'PT1S' })
    expect(config.captcha).toEqual({ provider: 'turnstile', threshold: 0.5 })
    expect(config.rateLimits.loginPerIp).toEqual({ limit: 500, window: 'PT1M' })

    const [entry] = (await readLog(app, { filter: { types: ['tenant_config_change'] }, limit: 1 })).entries
    expect(entry).toMatchObject({ success: true, errorCode: null })
    expect(entry!.eventData).toEqual({
      input: { ...input, captcha: { provider: 'turnstile', secret: '***', threshold: 0.5 } },
      // The settings named, as they were (defaults included) and as they are now.
      before: {
        password: { minLength: 8, pattern: null },
        login: { maxBackoff: 'PT5M' },
        captcha: { provider: null, secret: null, threshold: null },
        rateLimits: { loginPerIp: { limit: 100 } },
      },
      after: { ...input, captcha: { provider: 'turnstile', secret: '***', threshold: 0.5 } },
    })

    // Stored encrypted, never readable back.
    const stored = await app.app.services.db.prisma.config.findUniqueOrThrow({ where: { id: 1 } })
    expect(JSON.stringify(stored.data)).not.toContain(secret)
    expect(app.logOutput()).not.toContain(secret)
    // A configured provider would refuse the sign-ups of later tests.
    expect((await configure({ captcha: { provider: null } })).data.configure.ok).toBe(true)
  })

  it('answers a request that changes nothing ok and records nothing', async () => {
    expect((await configure({ password: { minLength: 14 } })).data.configure.ok).toBe(true)
    const entriesBefore = (await readLog(app, { filter: { types: ['tenant_config_change'] } })).entries.length
    expect((await configure({ password: { minLength: 14 }, login: { baseBackoff: null } })).data.configure).toEqual({ ok: true, error: null })
    expect((await readLog(app, { filter: { types: ['tenant_config_change'] } })).entries.length).toBe(entriesBefore)
    // The same value as the default, never stored before, is no change either.
    expect((await configure({ signup: { requireEmailVerification: false } })).data.configure.ok).toBe(true)
    expect((await readLog(app, { filter: { types: ['tenant_config_change'] } })).entries.length).toBe(entriesBefore)
  })

  it('clears a nullable value with null and keeps a required one', async () => {
    await configure({ passwordless: { url: 'https://app.example.test/in' }, login: { maxTokenExpiration: 'P1D' } })
    expect((await configure({ passwordless: { url: null }, login: { maxTokenExpiration: null, baseBackoff: null } })).data.configure.ok).toBe(true)
    const config = await configuration()
    expect(config.passwordless.url).toBeNull()
    expect(config.login.maxTokenExpiration).toBeNull()
    expect(config.login.baseBackoff).toBe('PT1S')
  })

  it.each([
    ['a malformed interval', { login: { baseBackoff: '15 minutes' } }, 'login.baseBackoff'],
    ['a zero interval', { rateLimits: { loginPerIp: { window: 'PT0S' } } }, 'rateLimits.loginPerIp.window'],
    ['a negative number', { password: { minLength: -1 } }, 'password.minLength'],
    ['a negative limit', { rateLimits: { signUpPerIp: { limit: -5 } } }, 'rateLimits.signUpPerIp.limit'],
    ['a broken pattern', { password: { pattern: '(unclosed' } }, 'password.pattern'],
    // Every sign-up would run it on a password of the caller's choosing.
    ['a pattern that backtracks exponentially', { password: { pattern: '(a+)+$' } }, 'password.pattern'],
    ['a non-http url', { passwordless: { url: 'javascript:alert(1)' } }, 'passwordless.url'],
    ['a threshold above 1', { captcha: { threshold: 2 } }, 'captcha.threshold'],
    ['a base backoff above the maximum', { login: { baseBackoff: 'PT1H' } }, 'login.baseBackoff must not exceed login.maxBackoff'],
  ])('refuses %s with INVALID_CONFIG and changes nothing', async (_name, input, mentioned) => {
    const before = await configuration()
    const entriesBefore = (await readLog(app, { filter: { types: ['tenant_config_change'] } })).entries.length
    const response = await configure(input)
    expect(response.data.configure.error.code).toBe('INVALID_CONFIG')
    expect(response.data.configure.error.developerMessage).toContain(mentioned)
    expect(await configuration()).toEqual(before)
    expect((await readLog(app, { filter: { types: ['tenant_config_change'] } })).entries.length).toBe(entriesBefore)
  })

  it('refuses an Interval that is not a string as bad input', async () => {
    const response = await app.gql(`mutation { configure(config: { login: { baseBackoff: 5 } }) { ok } }`, { token: app.rootToken })
    expect(response.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT')
  })

  it('belongs to super admins (system:configure)', async () => {
    const person = await signedInPerson(app)
    for (const token of [person.token, app.loginToken]) {
      const response = await configure({ login: { revealUserExists: true } }, token)
      expect(response.errors?.[0]).toMatchObject({ message: 'You are not allowed to configure the tenant.', extensions: { code: 'FORBIDDEN' } })
      const read = await app.gql(configurationQuery, { token })
      expect(read.errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
    }
  })
})
