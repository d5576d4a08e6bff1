import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { type CaptchaTestProvider, startCaptchaProvider } from '../testkit/captcha.js'
import { configureTenant, readLog, signUpPerson, uniqueEmail } from '../testkit/fixtures.js'
import { type MailCatcher, startMailCatcher } from '../testkit/mail.js'

/**
 * captchaToken of signUp, initSignInPasswordless and createResetPasswordRequest, verified
 * against a siteverify endpoint on loopback (CUSTOS_CAPTCHA_VERIFY_URL) that answers like the providers.
 */

let app: TestApp
let mail: MailCatcher
let provider: CaptchaTestProvider
const SECRET = 'captcha-secret-0123456789'

beforeAll(async () => {
  mail = await startMailCatcher()
  provider = await startCaptchaProvider()
  app = await startTestApp({ SMTP_URL: mail.url, CUSTOS_CAPTCHA_VERIFY_URL: provider.url })
  await configureTenant(app, { passwordless: { enabled: 'always' } })
})
afterAll(async () => {
  await app.stop()
  await provider.close()
  await mail.close()
})
beforeEach(() => {
  provider.answerWith((request) => ({ json: { success: request.response?.startsWith('good') ?? false } }))
})

/** Each flow with the event its requests are recorded as (sign-up has none). */
const flows = {
  signUp: null,
  initSignInPasswordless: 'passwordless_login_init',
  createResetPasswordRequest: 'password_reset_init',
} as const
type Flow = keyof typeof flows

const request = async (flow: Flow, email: string, captchaToken?: string) =>
  (
    await app.gql(`mutation ($email: String!, $captchaToken: String) { ${flow}(email: $email, captchaToken: $captchaToken) { ok error { code } } }`, {
      variables: { email, captchaToken },
      token: app.loginToken,
    })
  ).data[flow] as { ok: boolean; error: { code: string } | null }

const newestEntry = async (type: string, email: string) =>
  (await readLog(app, { filter: { types: [type], personInputIdentifier: email }, limit: 1 })).entries[0]

describe('without a captcha provider', () => {
  it('ignores captchaToken and asks no provider', async () => {
    await configureTenant(app, { captcha: { provider: null } })
    const person = await signUpPerson(app)
    const before = provider.requests.length
    expect(await request('signUp', uniqueEmail(), 'anything')).toEqual({ ok: true, error: null })
    expect(await request('initSignInPasswordless', person.email)).toEqual({ ok: true, error: null })
    expect(await request('createResetPasswordRequest', person.email)).toEqual({ ok: true, error: null })
    expect(provider.requests.length).toBe(before)
  })
})

describe.each(['turnstile', 'hcaptcha'] as const)('with %s', (name) => {
  beforeAll(async () => {
    await configureTenant(app, { captcha: { provider: name, secret: SECRET } })
  })

  it.each(Object.keys(flows) as Flow[])('%s: a missing or rejected token is INVALID_CAPTCHA (recorded, nothing mailed); an accepted one goes ahead', async (flow) => {
    const email = flow === 'signUp' ? uniqueEmail('captcha') : (await signUpPersonWithCaptcha()).email
    const before = provider.requests.length
    expect(await request(flow, email)).toEqual({ ok: false, error: { code: 'INVALID_CAPTCHA' } })
    expect(provider.requests.length).toBe(before) // no token, nothing to ask
    expect(await request(flow, email, 'bad-token')).toEqual({ ok: false, error: { code: 'INVALID_CAPTCHA' } })
    expect(provider.requests.at(-1)).toEqual({ secret: SECRET, response: 'bad-token', remoteip: '127.0.0.1' })
    const type = flows[flow]
    if (type) expect(await newestEntry(type, email)).toMatchObject({ success: false, errorCode: 'INVALID_CAPTCHA' })

    // Refusals for a captcha are no attempt for the per-email backoff: the next request goes through at once.
    const mailsBefore = mail.received.length
    expect(await request(flow, email, 'good-token')).toEqual({ ok: true, error: null })
    if (type) {
      await mail.waitFor(email, { since: mailsBefore })
      expect(mail.received.filter((message) => message.to.includes(email))).toHaveLength(1)
    }
  })
})

/** A person signed up with an accepted captcha token. */
async function signUpPersonWithCaptcha() {
  const email = uniqueEmail()
  expect(await request('signUp', email, 'good-for-sign-up')).toEqual({ ok: true, error: null })
  return { email }
}

describe('with recaptchaV3', () => {
  it('takes a token only with a score of at least captcha.threshold', async () => {
    await configureTenant(app, { captcha: { provider: 'recaptchaV3', secret: SECRET, threshold: 0.7 } })
    const scores: Record<string, number> = { low: 0.6, high: 0.7 }
    provider.answerWith((verify) => ({ json: { success: true, score: scores[verify.response!], action: 'submit' } }))
    expect(await request('signUp', uniqueEmail(), 'low')).toEqual({ ok: false, error: { code: 'INVALID_CAPTCHA' } })
    expect(await request('signUp', uniqueEmail(), 'high')).toEqual({ ok: true, error: null })
    provider.answerWith(() => ({ json: { success: false, 'error-codes': ['invalid-input-response'] } }))
    expect(await request('signUp', uniqueEmail(), 'high')).toEqual({ ok: false, error: { code: 'INVALID_CAPTCHA' } })
  })
})

describe('a provider that fails', () => {
  it('refuses (fails closed) and warns in the server log, naming neither the secret nor the token', async () => {
    await configureTenant(app, { captcha: { provider: 'turnstile', secret: SECRET } })
    const failures = {
      'HTTP 500': () => ({ status: 500, body: 'internal error' }),
      'not JSON': () => ({ status: 200, body: '<html>ok</html>' }),
      'no success flag': () => ({ json: { ok: true } }),
      'no answer': () => 'hang up' as const,
    }
    for (const [name, answer] of Object.entries(failures)) {
      provider.answerWith(answer)
      const token = `good-token-${name.replaceAll(' ', '-')}`
      const warningsBefore = app.logOutput().split('captcha not verified').length
      const email = uniqueEmail('fails')
      expect(await request('createResetPasswordRequest', email, token), name).toEqual({ ok: false, error: { code: 'INVALID_CAPTCHA' } })
      expect(await newestEntry('password_reset_init', email), name).toMatchObject({ success: false, errorCode: 'INVALID_CAPTCHA' })
      expect(app.logOutput().split('captcha not verified').length, name).toBe(warningsBefore + 1)
      expect(app.logOutput(), name).not.toContain(token)
    }
    expect(app.logOutput()).not.toContain(SECRET)
  })

  it('refuses when a provider is configured without a secret', async () => {
    await configureTenant(app, { captcha: { provider: 'hcaptcha', secret: '' } })
    const before = provider.requests.length
    expect(await request('signUp', uniqueEmail(), 'good-token')).toEqual({ ok: false, error: { code: 'INVALID_CAPTCHA' } })
    expect(provider.requests.length).toBe(before)
    expect(app.logOutput()).toContain('captcha.provider is set but captcha.secret is not')
  })
})
