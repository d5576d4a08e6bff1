import { createHash, randomBytes, randomInt } from 'node:crypto'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { auditRowsAsText, configureTenant, enableOtp, addIdentityProvider, signIn, signUpPerson, totpCode, uniqueEmail } from '../testkit/fixtures.js'
import { type MailCatcher, mailField, startMailCatcher } from '../testkit/mail.js'
import { type OidcTestProvider, startOidcProvider } from '../testkit/oidc.js'

let app: TestApp
let mail: MailCatcher
let idp: OidcTestProvider

beforeAll(async () => {
  mail = await startMailCatcher()
  idp = await startOidcProvider()
  app = await startTestApp({ SMTP_URL: mail.url })
})
afterAll(async () => {
  await app.stop()
  await idp.close()
  await mail.close()
})

/** Every secret the run handles; none may reach the log table or the server's log. */
const secrets = new Set<string>()
const secret = (value: string) => {
  secrets.add(value)
  return value
}
const distinctivePassword = () => secret(`Pw-${randomBytes(12).toString('hex')}-Zz9`)
/** A 6-digit code that is not a real TOTP code of anything here. */
const wrongCode = () => secret(String(randomInt(100_000, 1_000_000)))

const mutate = (query: string, variables: Record<string, unknown>, token = app.loginToken) => app.gql(query, { variables, token })

it('keeps passwords, codes, tokens, hashes and client secrets out of person_auth_log and the server log', async () => {
  await configureTenant(app, {
    passwordless: { enabled: 'always', url: 'https://app.example.test/in' },
    captcha: { provider: 'hcaptcha', secret: secret(`captcha-${randomBytes(16).toString('hex')}`) },
  })

  // Password sign-in: wrong and right password, with the second factor.
  const person = await signUpPerson(app, { password: distinctivePassword() })
  secret(person.password)
  await mutate(`mutation ($e: String!, $p: String!) { signIn(email: $e, password: $p) { ok } }`, { e: person.email, p: distinctivePassword() })
  await new Promise((resolve) => setTimeout(resolve, 1_100)) // past the backoff of that failure
  const token = secret(await signIn(app, person))
  const otpSecret = secret(await enableOtp(app, { ...person, token }))
  await mutate(`mutation ($e: String!, $p: String!, $o: String) { signIn(email: $e, password: $p, otpToken: $o) { ok } }`, {
    e: person.email,
    p: person.password,
    o: wrongCode(),
  })
  await new Promise((resolve) => setTimeout(resolve, 1_100))
  const signedIn = await mutate(`mutation ($e: String!, $p: String!, $o: String) { signIn(email: $e, password: $p, otpToken: $o) { ok result { token } } }`, {
    e: person.email,
    p: person.password,
    o: secret(await totpCode(otpSecret, 1)),
  })
  expect(signedIn.data.signIn.ok).toBe(true)
  const session = secret(signedIn.data.signIn.result.token)

  // Password change, by the person and by an admin.
  const changed = distinctivePassword()
  await mutate(`mutation ($c: String!, $n: String!) { changeMyPassword(currentPassword: $c, newPassword: $n) { ok } }`, { c: distinctivePassword(), n: changed }, session)
  expect((await mutate(`mutation ($c: String!, $n: String!) { changeMyPassword(currentPassword: $c, newPassword: $n) { ok } }`, { c: person.password, n: changed }, session)).data.changeMyPassword.ok).toBe(true)
  await mutate(`mutation ($id: String!, $p: String!) { changePassword(personId: $id, password: $p) { ok } }`, { id: person.id, p: distinctivePassword() }, app.rootToken)

  // Password reset.
  let since = mail.received.length
  await mutate(`mutation ($e: String!) { createResetPasswordRequest(email: $e) { ok } }`, { e: person.email })
  await mutate(`mutation ($e: String!) { createResetPasswordRequest(email: $e) { ok } }`, { e: uniqueEmail('unknown') })
  const resetMail = await mail.waitFor(person.email, { since })
  const resetToken = secret(mailField(resetMail, 'Reset token'))
  secret(createHash('sha256').update(resetToken).digest('hex'))
  await mutate(`mutation ($t: String!, $p: String!) { resetPassword(token: $t, password: $p) { ok } }`, { t: resetToken, p: 'weak' })
  expect((await mutate(`mutation ($t: String!, $p: String!) { resetPassword(token: $t, password: $p) { ok } }`, { t: resetToken, p: distinctivePassword() })).data.resetPassword.ok).toBe(true)

  // Passwordless: by link token, and cross-device with a code of the second device.
  for (const validationType of ['token', 'otp'] as const) {
    since = mail.received.length
    await mutate(`mutation ($e: String!) { initSignInPasswordless(email: $e) { ok } }`, { e: person.email })
    const message = await mail.waitFor(person.email, { since })
    const requestId = mailField(message, 'Request')
    const linkToken = secret(mailField(message, 'Token'))
    secret(mailField(message, 'Code'))
    const deviceCode = secret(String(randomInt(100_000, 1_000_000)))
    const otpHash = secret(createHash('sha256').update(deviceCode).digest('hex'))
    await mutate(`mutation ($r: String!, $t: String!, $h: String!) { activatePasswordlessOtp(requestId: $r, token: $t, otpHash: $h) { ok } }`, { r: requestId, t: linkToken, h: otpHash })
    await mutate(`mutation ($r: String!, $t: String!) { signInPasswordless(requestId: $r, validationType: otp, token: $t) { ok } }`, { r: requestId, t: wrongCode() })
    const completed = await mutate(
      `mutation ($r: String!, $v: PasswordlessValidationType!, $t: String!, $m: String) { signInPasswordless(requestId: $r, validationType: $v, token: $t, mfaOtp: $m) { ok error { code } } }`,
      { r: requestId, v: validationType, t: validationType === 'token' ? linkToken : deviceCode, m: secret(await totpCode(otpSecret, validationType === 'token' ? 0 : -1)) },
    )
    expect(completed.data.signInPasswordless.error?.code ?? 'OK').toMatch(/OK|INVALID_OTP_TOKEN/)
  }

  // Email change and the identity provider.
  const moved = await mutate(`mutation ($id: String!, $e: String!) { changeProfile(personId: $id, email: $e) { ok } }`, { id: person.id, e: uniqueEmail('moved') }, app.rootToken)
  expect(moved.data.changeProfile.ok).toBe(true)
  const other = await signUpPerson(app, { password: distinctivePassword() })
  secret(other.password)
  secret(idp.clientSecret)
  const slug = await addIdentityProvider(app, { configuration: idp.configuration })
  const init = await mutate(`mutation ($s: String!, $d: Json) { initSignInIDP(identityProvider: $s, data: $d) { result { authUrl sessionData } } }`, { s: slug, d: { redirectUrl: idp.redirectUri } })
  const { authUrl, sessionData } = init.data.initSignInIDP.result
  secret(sessionData.codeVerifier)
  const callback = await idp.authorize(authUrl, { sub: 'scan', email: other.email, email_verified: true })
  secret(new URL(callback).searchParams.get('code')!)
  const idpSignIn = await mutate(`mutation ($s: String!, $d: Json) { signInIDP(identityProvider: $s, data: $d) { ok result { token } } }`, { s: slug, d: { url: callback, sessionData } })
  expect(idpSignIn.data.signInIDP.ok).toBe(true)
  secret(idpSignIn.data.signInIDP.result.token)

  // Stored hashes of the passwords and every bearer token handed out must not leak either.
  for (const row of await app.app.services.db.prisma.person.findMany()) if (row.passwordHash) secret(row.passwordHash)
  for (const row of await app.app.services.db.prisma.apiKey.findMany()) secret(row.tokenHash)
  for (const row of await app.app.services.db.prisma.personToken.findMany()) secret(row.tokenHash)

  const rows = await auditRowsAsText(app)
  const types = new Set(rows.map((row) => JSON.parse(row).type))
  for (const type of ['login', '2fa_enable', 'password_change', 'password_reset_init', 'password_reset', 'passwordless_login_init', 'passwordless_login_exchange', 'passwordless_login', 'email_change', 'idp_login', 'tenant_config_change']) {
    expect(types, `the run wrote ${type}`).toContain(type)
  }
  const table = rows.join('\n')
  const serverLog = app.logOutput()
  expect(serverLog.length).toBeGreaterThan(0)
  for (const value of secrets) {
    // Digits-only codes are matched as whole numbers: a UUID may contain any six hex digits.
    const pattern = /^\d+$/.test(value) ? new RegExp(`(?<![0-9A-Za-z])${value}(?![0-9A-Za-z])`) : undefined
    const leaks = (text: string) => (pattern ? pattern.test(text) : text.includes(value))
    expect(leaks(table), `person_auth_log contains ${value}`).toBe(false)
    expect(leaks(serverLog), `the server log contains ${value}`).toBe(false)
  }
})
