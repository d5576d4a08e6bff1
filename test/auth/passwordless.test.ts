import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { configureTenant, enableOtp, enableOtpWithBackupCodes, mailedPasswordlessRequest, negligibleBackoff, readLog, signUpPerson, signedInPerson, totpCode, uniqueEmail } from '../testkit/fixtures.js'
import { type MailCatcher, mailField, startMailCatcher } from '../testkit/mail.js'

let app: TestApp
let mail: MailCatcher

beforeAll(async () => {
  mail = await startMailCatcher()
  app = await startTestApp({ SMTP_URL: mail.url })
  await configureTenant(app, {
    passwordless: { enabled: 'always', url: 'https://app.example.test/sign-in', expiration: 'PT10M' },
    login: negligibleBackoff,
  })
})
afterAll(async () => {
  await app.stop()
  await mail.close()
})

const init = (email: string) =>
  app.gql(
    `mutation ($email: String!) {
      initSignInPasswordless(email: $email) { ok error { code } result { requestId expiresAt } }
    }`,
    { variables: { email }, token: app.loginToken },
  )

const signInPasswordless = (variables: { requestId: string; validationType: 'otp' | 'token'; token: string; mfaOtp?: string; backupCode?: string }) =>
  app.gql(
    `mutation ($requestId: String!, $validationType: PasswordlessValidationType!, $token: String!, $mfaOtp: String, $backupCode: String) {
      signInPasswordless(requestId: $requestId, validationType: $validationType, token: $token, mfaOtp: $mfaOtp, backupCode: $backupCode) {
        ok error { code } result { token person { id } }
      }
    }`,
    { variables, token: app.loginToken },
  )

const activate = (requestId: string, token: string, otpHash: string) =>
  app.gql(
    `mutation ($requestId: String!, $token: String!, $otpHash: String!) {
      activatePasswordlessOtp(requestId: $requestId, token: $token, otpHash: $otpHash) { ok error { code } }
    }`,
    { variables: { requestId, token, otpHash }, token: app.loginToken },
  )

/** Starts a passwordless sign-in; token, code and link come from the mail that arrived over SMTP. */
async function mailedRequest(email: string) {
  const request = await mailedPasswordlessRequest(app, mail, email)
  expect(request.requestId).toBe(request.answeredRequestId)
  return { ...request, link: mailField(request.message, 'Link') }
}

const entries = async (type: string, personId: string) => (await readLog(app, { filter: { types: [type], personId } })).entries

describe('passwordless sign-in', () => {
  it('mails a link token and a code; the token signs in once (passwordless_login_init, passwordless_login)', async () => {
    const person = await signUpPerson(app)
    const { requestId, token, code, link } = await mailedRequest(person.email)
    expect(code).toMatch(/^\d{6}$/)
    expect(link).toBe(`https://app.example.test/sign-in?requestId=${requestId}&token=${token}`)
    const [initEntry] = await entries('passwordless_login_init', person.id)
    expect(initEntry).toMatchObject({ success: true, personInputIdentifier: person.email, errorCode: null, metadata: { requestId } })

    const signedIn = await signInPasswordless({ requestId, validationType: 'token', token })
    expect(signedIn.data.signInPasswordless).toMatchObject({ ok: true, result: { person: { id: person.id } } })
    const [entry] = await entries('passwordless_login', person.id)
    expect(entry).toMatchObject({ success: true, errorCode: null, eventData: { validationType: 'token' } })
    expect(entry!.metadata).toEqual({ requestId, sessionId: expect.any(String) })

    const again = await signInPasswordless({ requestId, validationType: 'otp', token: code })
    expect(again.data.signInPasswordless.error.code).toBe('TOKEN_USED')
  })

  it('signs in with the mailed code (validationType otp)', async () => {
    const person = await signUpPerson(app)
    const { requestId, code } = await mailedRequest(person.email)
    const signedIn = await signInPasswordless({ requestId, validationType: 'otp', token: code })
    expect(signedIn.data.signInPasswordless.ok).toBe(true)
    expect((await entries('passwordless_login', person.id))[0]).toMatchObject({ success: true, eventData: { validationType: 'otp' } })
  })

  it('cross-device: activatePasswordlessOtp sets the code hash (passwordless_login_exchange); the mailed code stops working', async () => {
    const person = await signUpPerson(app)
    const { requestId, token, code } = await mailedRequest(person.email)
    const deviceCode = '482915'
    const otpHash = createHash('sha256').update(deviceCode).digest('hex')
    expect((await activate(requestId, 'wrong-token', otpHash)).data.activatePasswordlessOtp.error.code).toBe('TOKEN_INVALID')
    expect((await activate(requestId, token, otpHash)).data.activatePasswordlessOtp).toEqual({ ok: true, error: null })
    const exchanges = await entries('passwordless_login_exchange', person.id)
    expect(exchanges.map((entry) => [entry.success, entry.errorCode])).toEqual([
      [true, null],
      [false, 'TOKEN_INVALID'],
    ])
    expect((await activate(requestId, token, 'abc')).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT')

    expect((await signInPasswordless({ requestId, validationType: 'otp', token: code })).data.signInPasswordless.error.code).toBe('TOKEN_INVALID')
    expect((await signInPasswordless({ requestId, validationType: 'otp', token: deviceCode })).data.signInPasswordless.ok).toBe(true)
  })

  it('refuses a wrong token and an unknown request alike (TOKEN_INVALID; the log says TOKEN_NOT_FOUND), and an expired one (TOKEN_EXPIRED)', async () => {
    const person = await signUpPerson(app)
    const { requestId, token } = await mailedRequest(person.email)
    expect((await signInPasswordless({ requestId, validationType: 'token', token: 'x'.repeat(40) })).data.signInPasswordless.error.code).toBe(
      'TOKEN_INVALID',
    )
    // The id handed out for an email without an account names no request: answered otherwise, it would tell.
    const ghost = uniqueEmail('ghost')
    const { requestId: noRequest } = (await init(ghost)).data.initSignInPasswordless.result
    for (const unknownId of [noRequest, '00000000-0000-4000-8000-000000000000']) {
      const unknown = await signInPasswordless({ requestId: unknownId, validationType: 'token', token })
      expect(unknown.data.signInPasswordless.error).toEqual((await signInPasswordless({ requestId, validationType: 'token', token: 'y'.repeat(40) })).data.signInPasswordless.error)
      expect((await activate(unknownId, token, 'a'.repeat(64))).data.activatePasswordlessOtp.error.code).toBe('TOKEN_INVALID')
    }
    const [unknownEntry] = (await readLog(app, { filter: { types: ['passwordless_login'], success: false }, limit: 10 })).entries.filter((entry) => entry.personId === null)
    expect(unknownEntry).toMatchObject({ errorCode: 'TOKEN_NOT_FOUND' })
    await app.app.services.db.prisma.personToken.update({ where: { id: requestId }, data: { expiresAt: new Date(Date.now() - 1000) } })
    expect((await signInPasswordless({ requestId, validationType: 'token', token })).data.signInPasswordless.error.code).toBe('TOKEN_EXPIRED')
    expect((await activate(requestId, token, 'a'.repeat(64))).data.activatePasswordlessOtp.error.code).toBe('TOKEN_EXPIRED')
    const failures = await entries('passwordless_login', person.id)
    expect(failures.map((entry) => entry.errorCode)).toEqual(['TOKEN_EXPIRED', 'TOKEN_INVALID', 'TOKEN_INVALID', 'TOKEN_INVALID'])
  })

  it('gives up on a request after five wrong codes', async () => {
    const person = await signUpPerson(app)
    const { requestId, code } = await mailedRequest(person.email)
    const wrong = code === '000000' ? '111111' : '000000'
    for (let attempt = 0; attempt < 5; attempt++) {
      expect((await signInPasswordless({ requestId, validationType: 'otp', token: wrong })).data.signInPasswordless.error.code).toBe('TOKEN_INVALID')
    }
    expect((await signInPasswordless({ requestId, validationType: 'otp', token: code })).data.signInPasswordless.error.code).toBe('TOKEN_INVALID')
    expect((await entries('passwordless_login', person.id))[0]).toMatchObject({ success: false, errorCode: 'TOO_MANY_ATTEMPTS' })
  })

  it('asks for the second factor (OTP_REQUIRED, INVALID_OTP_TOKEN) without using up the request', async () => {
    const person = await signedInPerson(app)
    const secret = await enableOtp(app, person)
    const { requestId, token } = await mailedRequest(person.email)
    expect((await signInPasswordless({ requestId, validationType: 'token', token })).data.signInPasswordless.error.code).toBe('OTP_REQUIRED')
    expect((await signInPasswordless({ requestId, validationType: 'token', token, mfaOtp: '000000' })).data.signInPasswordless.error.code).toBe(
      'INVALID_OTP_TOKEN',
    )
    const ok = await signInPasswordless({ requestId, validationType: 'token', token, mfaOtp: await totpCode(secret, 1) })
    expect(ok.data.signInPasswordless.ok).toBe(true)
  })

  it('counts a wrong second-factor code towards the sign-in backoff, which holds passwordless and password sign-in back alike (RATE_LIMIT_EXCEEDED)', async () => {
    const person = await signedInPerson(app)
    const secret = await enableOtp(app, person)
    await configureTenant(app, { login: { baseBackoff: 'PT30S', maxBackoff: 'PT5M' } })
    try {
      const { requestId, token } = await mailedRequest(person.email)
      expect((await signInPasswordless({ requestId, validationType: 'token', token, mfaOtp: '000000' })).data.signInPasswordless.error.code).toBe('INVALID_OTP_TOKEN')
      const heldBack = await app.gql(
        `mutation ($requestId: String!, $token: String!, $mfaOtp: String) {
          signInPasswordless(requestId: $requestId, validationType: token, token: $token, mfaOtp: $mfaOtp) { ok error { code retryAfter } }
        }`,
        { variables: { requestId, token, mfaOtp: await totpCode(secret) }, token: app.loginToken },
      )
      expect(heldBack.data.signInPasswordless).toEqual({ ok: false, error: { code: 'RATE_LIMIT_EXCEEDED', retryAfter: expect.any(Number) } })
      expect(heldBack.data.signInPasswordless.error.retryAfter).toBeGreaterThan(20)
      expect((await entries('passwordless_login', person.id))[0]).toMatchObject({ success: false, errorCode: 'RATE_LIMIT_EXCEEDED' })
      const password = await app.gql('mutation ($email: String!, $password: String!) { signIn(email: $email, password: $password) { ok error { code } } }', {
        variables: { email: person.email, password: person.password },
        token: app.loginToken,
      })
      expect(password.data.signIn.error.code).toBe('RATE_LIMIT_EXCEEDED')
    } finally {
      await configureTenant(app, { login: negligibleBackoff })
    }
    // Held back is not used up: once the wait is over the same request signs in.
    const { requestId, token } = await mailedRequest(person.email)
    expect((await signInPasswordless({ requestId, validationType: 'token', token, mfaOtp: await totpCode(secret, 1) })).data.signInPasswordless.ok).toBe(true)
  })

  it('takes a backup code instead of the TOTP code, once (metadata.backupCodeUsed; a wrong one logged as INVALID_BACKUP_CODE)', async () => {
    const person = await signedInPerson(app)
    const { backupCodes } = await enableOtpWithBackupCodes(app, person)
    const { requestId, token } = await mailedRequest(person.email)
    const wrong = await signInPasswordless({ requestId, validationType: 'token', token, backupCode: 'aaaa-bbbb-cccc-dddd' })
    expect(wrong.data.signInPasswordless.error.code).toBe('INVALID_OTP_TOKEN')
    expect((await entries('passwordless_login', person.id))[0]).toMatchObject({ success: false, errorCode: 'INVALID_BACKUP_CODE' })

    const ok = await signInPasswordless({ requestId, validationType: 'token', token, backupCode: backupCodes[0] })
    expect(ok.data.signInPasswordless.ok).toBe(true)
    const [entry] = await entries('passwordless_login', person.id)
    expect(entry).toMatchObject({ success: true, errorCode: null })
    expect(entry!.metadata).toEqual({ requestId, sessionId: expect.any(String), backupCodeUsed: true })

    const again = await mailedRequest(person.email)
    const reused = await signInPasswordless({ requestId: again.requestId, validationType: 'token', token: again.token, backupCode: backupCodes[0] })
    expect(reused.data.signInPasswordless.error.code).toBe('INVALID_OTP_TOKEN')
  })

  it('answers an unknown email like a known one, mails nothing, and records PERSON_NOT_FOUND', async () => {
    const email = uniqueEmail('ghost')
    const response = await init(email)
    expect(response.data.initSignInPasswordless).toMatchObject({ ok: true, result: { requestId: expect.any(String) } })
    const [entry] = (await readLog(app, { filter: { personInputIdentifier: email } })).entries
    expect(entry).toMatchObject({ type: 'passwordless_login_init', success: false, errorCode: 'PERSON_NOT_FOUND' })
  })

  it('honours passwordless.enabled: never, optIn, optOut', async () => {
    const person = await signUpPerson(app)
    try {
      await configureTenant(app, { passwordless: { enabled: 'never' } })
      expect((await init(person.email)).data.initSignInPasswordless.error.code).toBe('PASSWORDLESS_DISABLED')
      const [refused] = (await readLog(app, { filter: { personInputIdentifier: person.email } })).entries
      expect(refused).toMatchObject({ success: false, errorCode: 'PASSWORDLESS_DISABLED', personId: person.id })

      // optIn: a person who has not opted in gets the neutral answer; the log says why.
      await configureTenant(app, { passwordless: { enabled: 'optIn' } })
      expect((await init(person.email)).data.initSignInPasswordless.ok).toBe(true)
      expect((await entries('passwordless_login_init', person.id))[0]).toMatchObject({ success: false, errorCode: 'PASSWORDLESS_DISABLED' })

      await configureTenant(app, { passwordless: { enabled: 'optOut' } })
      const { requestId, token } = await mailedRequest(person.email)
      // Switched off after the mail went out: the link stops working.
      await configureTenant(app, { passwordless: { enabled: 'never' } })
      expect((await signInPasswordless({ requestId, validationType: 'token', token })).data.signInPasswordless.error.code).toBe('TOKEN_INVALID')
      expect((await entries('passwordless_login', person.id))[0]).toMatchObject({ errorCode: 'PASSWORDLESS_DISABLED' })
    } finally {
      await configureTenant(app, { passwordless: { enabled: 'always' } })
    }
  })
})

const toggle = (enabled: boolean, token: string) => {
  const field = enabled ? 'enableMyPasswordless' : 'disableMyPasswordless'
  return app.gql(`mutation { ${field} { ok error { code developerMessage } } }`, { token }).then((response) => response.data[field])
}
const passwordlessEnabledOf = async (token: string) => (await app.gql('{ me { person { passwordlessEnabled } } }', { token })).data.me.person.passwordlessEnabled

/** The person's only entry of `type`: their own successful toggle, with the choice before and after. */
async function expectOnlyToggle(type: string, person: { id: string; identityId: string }, before: boolean | null, after: boolean) {
  expect(await entries(type, person.id)).toEqual([
    expect.objectContaining({
      success: true,
      errorCode: null,
      personId: person.id,
      invokedByIdentityId: person.identityId,
      eventData: { before: { passwordlessEnabled: before }, after: { passwordlessEnabled: after } },
    }),
  ])
}

/** Runs `body` under a passwordless policy; the suite's `always` comes back afterwards. */
async function underPolicy(enabled: string, body: () => Promise<void>) {
  await configureTenant(app, { passwordless: { enabled } })
  try {
    await body()
  } finally {
    await configureTenant(app, { passwordless: { enabled: 'always' } })
  }
}

describe('enableMyPasswordless / disableMyPasswordless', () => {
  it('under optIn: enabling lets the person sign in without a password, disabling stops it again; each toggle recorded with before and after', async () => {
    const person = await signedInPerson(app)
    await underPolicy('optIn', async () => {
      expect(await toggle(true, person.token)).toEqual({ ok: true, error: null })
      expect(await passwordlessEnabledOf(person.token)).toBe(true)
      // Enabling again changes nothing: ok, and no second entry.
      expect(await toggle(true, person.token)).toEqual({ ok: true, error: null })
      await expectOnlyToggle('passwordless_enable', person, null, true)
      const { requestId, token } = await mailedRequest(person.email)
      expect((await signInPasswordless({ requestId, validationType: 'token', token })).data.signInPasswordless.ok).toBe(true)

      expect(await toggle(false, person.token)).toEqual({ ok: true, error: null })
      expect(await passwordlessEnabledOf(person.token)).toBe(false)
      await expectOnlyToggle('passwordless_disable', person, true, false)
      expect((await init(person.email)).data.initSignInPasswordless.ok).toBe(true)
      expect((await entries('passwordless_login_init', person.id))[0]).toMatchObject({ success: false, errorCode: 'PASSWORDLESS_DISABLED' })
    })
  })

  it('under optOut: a person who opts out gets no sign-in mail until they opt back in', async () => {
    const person = await signedInPerson(app)
    await underPolicy('optOut', async () => {
      expect(await toggle(false, person.token)).toEqual({ ok: true, error: null })
      expect((await init(person.email)).data.initSignInPasswordless.ok).toBe(true)
      expect((await entries('passwordless_login_init', person.id))[0]).toMatchObject({ success: false, errorCode: 'PASSWORDLESS_DISABLED' })

      expect(await toggle(true, person.token)).toEqual({ ok: true, error: null })
      const { requestId, code } = await mailedRequest(person.email)
      expect((await signInPasswordless({ requestId, validationType: 'otp', token: code })).data.signInPasswordless.ok).toBe(true)
      expect((await entries('passwordless_enable', person.id))[0]).toMatchObject({
        success: true,
        eventData: { before: { passwordlessEnabled: false }, after: { passwordlessEnabled: true } },
      })
    })
  })

  it.each(['always', 'never'])('under %s: CANNOT_TOGGLE, the choice stays, the refusal is recorded', async (policy) => {
    const person = await signedInPerson(app)
    await underPolicy(policy, async () => {
      for (const enabled of [true, false]) {
        const answer = await toggle(enabled, person.token)
        expect(answer).toMatchObject({ ok: false, error: { code: 'CANNOT_TOGGLE', developerMessage: expect.stringContaining(policy) } })
        const [entry] = await entries(enabled ? 'passwordless_enable' : 'passwordless_disable', person.id)
        expect(entry).toMatchObject({
          success: false,
          errorCode: 'CANNOT_TOGGLE',
          personId: person.id,
          eventData: { before: { passwordlessEnabled: null }, after: { passwordlessEnabled: enabled } },
        })
      }
      expect(await passwordlessEnabledOf(person.token)).toBeNull()
    })
  })

  it('answers NOT_A_PERSON to an API key, recorded without a person', async () => {
    await underPolicy('optIn', async () => {
      for (const enabled of [true, false]) {
        expect(await toggle(enabled, app.rootToken)).toMatchObject({ ok: false, error: { code: 'NOT_A_PERSON' } })
        const type = enabled ? 'passwordless_enable' : 'passwordless_disable'
        const [entry] = (await readLog(app, { filter: { types: [type], success: false }, limit: 1 })).entries
        expect(entry).toMatchObject({ success: false, errorCode: 'NOT_A_PERSON', personId: null, eventData: {} })
      }
    })
  })
})
