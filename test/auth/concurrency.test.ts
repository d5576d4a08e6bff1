import { describe, expect, it } from 'vitest'
import type { TestApp } from '../testkit/app.js'
import { onPostgres } from '../testkit/database.js'
import { withMailingTestApp, enableOtp, mailedPasswordReset, mailedPasswordlessRequest, signedInPerson, strongPassword, totpCode } from '../testkit/fixtures.js'
import type { MailCatcher } from '../testkit/mail.js'

/** Single-use secrets stay single-use when several requests race (PostgreSQL: real parallel transactions). */
describe.runIf(onPostgres)('racing requests', () => {
  let app: TestApp
  let mail: MailCatcher

  withMailingTestApp((started, catcher) => {
    app = started
    mail = catcher
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
    // Sign-ins of one person take turns: the first reuse of the code fails, and that failure starts
    // the backoff the later ones meet.
    const refusals = new Set(answers.filter((answer) => !answer.data.signIn.ok).map((answer) => answer.data.signIn.error.code))
    expect(refusals.has('INVALID_OTP_TOKEN')).toBe(true)
    expect([...refusals].every((code) => code === 'INVALID_OTP_TOKEN' || code === 'RATE_LIMIT_EXCEEDED')).toBe(true)
  })

  it('a reset token resets once, and a passwordless token signs in once', async () => {
    const person = await signedInPerson(app)
    const { token: resetToken } = await mailedPasswordReset(app, mail, person.email)
    const resets = await race(5, () =>
      app.gql(`mutation ($t: String!, $p: String!) { resetPassword(token: $t, password: $p) { ok error { code } } }`, {
        variables: { t: resetToken, p: strongPassword() },
        token: app.loginToken,
      }),
    )
    expect(resets.filter((answer) => answer.data.resetPassword.ok)).toHaveLength(1)

    const passwordless = await mailedPasswordlessRequest(app, mail, person.email)
    const signIns = await race(5, () =>
      app.gql(`mutation ($r: String!, $t: String!) { signInPasswordless(requestId: $r, validationType: token, token: $t) { ok error { code } } }`, {
        variables: { r: passwordless.requestId, t: passwordless.token },
        token: app.loginToken,
      }),
    )
    expect(signIns.filter((answer) => answer.data.signInPasswordless.ok)).toHaveLength(1)
  })
})
