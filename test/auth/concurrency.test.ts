import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { onPostgres } from '../testkit/database.js'
import { configureTenant, enableOtp, signedInPerson, strongPassword, totpCode } from '../testkit/fixtures.js'
import { type MailCatcher, mailField, startMailCatcher } from '../testkit/mail.js'

/** Single-use secrets stay single-use when several requests race (PostgreSQL: real parallel transactions). */
describe.runIf(onPostgres)('racing requests', () => {
  let app: TestApp
  let mail: MailCatcher

  beforeAll(async () => {
    mail = await startMailCatcher()
    app = await startTestApp({ SMTP_URL: mail.url })
    await configureTenant(app, { passwordless: { enabled: 'always' } })
  })
  afterAll(async () => {
    await app.stop()
    await mail.close()
  })

  const race = <T>(count: number, request: () => Promise<T>) => Promise.all(Array.from({ length: count }, request))

  it('a TOTP code signs in once', async () => {
    const person = await signedInPerson(app)
    const secret = await enableOtp(app, person)
    const code = await totpCode(secret, 1)
    const answers = await race(5, () =>
      app.gql(`mutation ($e: String!, $p: String!, $o: String) { signIn(email: $e, password: $p, otpToken: $o) { ok error { code } } }`, {
        variables: { e: person.email, p: person.password, o: code },
        token: app.loginToken,
      }),
    )
    expect(answers.filter((answer) => answer.data.signIn.ok)).toHaveLength(1)
    expect(new Set(answers.filter((answer) => !answer.data.signIn.ok).map((answer) => answer.data.signIn.error.code))).toEqual(new Set(['INVALID_OTP_TOKEN']))
  })

  it('a reset token resets once, and a passwordless token signs in once', async () => {
    const person = await signedInPerson(app)
    let since = mail.received.length
    await app.gql(`mutation ($e: String!) { createResetPasswordRequest(email: $e) { ok } }`, { variables: { e: person.email }, token: app.loginToken })
    const resetToken = mailField(await mail.waitFor(person.email, { since }), 'Reset token')
    const resets = await race(5, () =>
      app.gql(`mutation ($t: String!, $p: String!) { resetPassword(token: $t, password: $p) { ok error { code } } }`, {
        variables: { t: resetToken, p: strongPassword() },
        token: app.loginToken,
      }),
    )
    expect(resets.filter((answer) => answer.data.resetPassword.ok)).toHaveLength(1)

    since = mail.received.length
    await app.gql(`mutation ($e: String!) { initSignInPasswordless(email: $e) { ok } }`, { variables: { e: person.email }, token: app.loginToken })
    const message = await mail.waitFor(person.email, { since })
    const signIns = await race(5, () =>
      app.gql(`mutation ($r: String!, $t: String!) { signInPasswordless(requestId: $r, validationType: token, token: $t) { ok error { code } } }`, {
        variables: { r: mailField(message, 'Request'), t: mailField(message, 'Token') },
        token: app.loginToken,
      }),
    )
    expect(signIns.filter((answer) => answer.data.signInPasswordless.ok)).toHaveLength(1)
  })
})
