import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { hashToken } from '../../src/tenant/apiKeys/tokens.js'
import { startTestApp, type TestApp } from '../testkit/app.js'
import {
  addIdentityProvider,
  auditRowsAsText,
  configureTenant,
  negligibleBackoff,
  createProject,
  idpRedirect,
  mailedPasswordReset,
  mailedPasswordlessRequest,
  sql,
  totpCode,
  uniqueEmail,
} from '../testkit/fixtures.js'
import { expectNoEffect } from '../testkit/expectations.js'
import { type CaptchaTestProvider, startCaptchaProvider } from '../testkit/captcha.js'
import { type MailCatcher, startMailCatcher } from '../testkit/mail.js'
import { type OidcTestProvider, startOidcProvider } from '../testkit/oidc.js'

/**
 * Random secrets in every secret-bearing input of every operation never reach
 * person_auth_log (any column), any response, or the server's log output.
 * Secrets the server hands out (session and API key tokens, TOTP secrets,
 * mailed tokens and codes) appear in the one response they belong to, or
 * none, and never in a log; neither do the hashes it stores.
 */

let app: TestApp
let mail: MailCatcher
let idp: OidcTestProvider
let idpSlug: string
let captcha: CaptchaTestProvider

beforeAll(async () => {
  mail = await startMailCatcher()
  idp = await startOidcProvider()
  captcha = await startCaptchaProvider()
  app = await startTestApp({ SMTP_URL: mail.url, CUSTOS_CAPTCHA_VERIFY_URL: captcha.url })
  await createProject(app, { slug: 'secrets' })
  await configureTenant(app, { passwordless: { enabled: 'always' }, login: negligibleBackoff })
  idpSlug = await addIdentityProvider(app, { configuration: idp.configuration })
})
afterAll(async () => {
  await app?.stop()
  await idp?.close()
  await captcha?.close()
  await mail?.close()
})

/** Any Unicode text but NUL (refused up front: see below); it follows a unique marker, so a match can only be a leak. */
const secretText = fc.string({ unit: 'binary', maxLength: 24 }).filter((text) => !text.includes('\u0000'))
const sha256 = fc.stringMatching(/^[0-9a-f]{64}$/)
const sha256Of = (text: string) => createHash('sha256').update(text).digest('hex')

/**
 * Whether `secret` shows in `text`: as is, or escaped inside JSON. Codes made of
 * digits only count as whole numbers (an id or a timestamp may hold any six digits in a row).
 */
function leaksInto(text: string, secret: string): boolean {
  if (/^\d+$/.test(secret)) return new RegExp(`(?<![0-9A-Za-z])${secret}(?![0-9A-Za-z])`).test(text)
  return [secret, JSON.stringify(secret).slice(1, -1)].some((spelling) => text.includes(spelling))
}

/** Calls of one run, kept for the scan. Each call must do its work (a refused one would prove nothing), or be refused where `refused` says so. */
function runRecorder() {
  const responses: unknown[] = []
  return {
    responses,
    async call(query: string, variables: Record<string, unknown>, token: string | undefined, refused = false) {
      const response = await app.gql(query, { variables, token })
      responses.push(response)
      expect(response.errors, JSON.stringify(response.errors)).toBeUndefined()
      const payload = Object.values(response.data ?? {})[0]
      if (typeof payload === 'object' && payload !== null && 'ok' in payload) expect(payload.ok, JSON.stringify(response)).toBe(!refused)
      return response
    },
  }
}

/**
 * Scans person_auth_log, the server log and the run's responses. `nowhere`
 * may appear in none of them; `notLogged` (secrets handed out in a response
 * of their own) in neither log.
 */
async function expectNoLeak(responses: unknown[], secrets: { nowhere: Record<string, string>; notLogged?: Record<string, string> }) {
  const auditRows = (await auditRowsAsText(app)).join('\n')
  const serverLog = app.logOutput()
  const responseText = JSON.stringify(responses)
  for (const [name, value] of Object.entries({ ...secrets.nowhere, ...secrets.notLogged })) {
    expect(leaksInto(auditRows, value), `${name} in person_auth_log`).toBe(false)
    expect(leaksInto(serverLog, value), `${name} in the server log`).toBe(false)
  }
  for (const [name, value] of Object.entries(secrets.nowhere)) expect(leaksInto(responseText, value), `${name} in a response`).toBe(false)
}

const administrativeInputs = fc.record({
  nonce: fc.uuid(),
  password: secretText,
  projectSecret: secretText,
  projectSecretUpdate: secretText,
  clientSecret: secretText,
  clientSecretUpdate: secretText,
  unmanagedPassword: secretText,
  deprecatedUnmanagedPassword: secretText,
  globalKeyHash: sha256,
  projectKeyHash: sha256,
  deployTokenHash: sha256,
  resetTokenHash: sha256,
})

let run = 0

it('no secret input of an administrative operation reaches the audit log, a response, or the server log', async () => {
  await fc.assert(
    fc.asyncProperty(administrativeInputs, async (generated) => {
      run += 1
      const mark = (label: string, tail: string) => `${label}-${generated.nonce}-${tail}`
      const secrets = {
        password: mark('Pw1', generated.password),
        projectSecret: mark('ps', generated.projectSecret),
        projectSecretUpdate: mark('psu', generated.projectSecretUpdate),
        clientSecret: mark('cs', generated.clientSecret),
        clientSecretUpdate: mark('csu', generated.clientSecretUpdate),
        unmanagedPassword: mark('up', generated.unmanagedPassword),
        deprecatedUnmanagedPassword: mark('dup', generated.deprecatedUnmanagedPassword),
        globalKeyHash: generated.globalKeyHash,
        projectKeyHash: generated.projectKeyHash,
        deployTokenHash: generated.deployTokenHash,
        resetTokenHash: generated.resetTokenHash,
      }
      const email = uniqueEmail(`prop${run}`)
      const slug = `secret-${run}-${generated.nonce.slice(0, 8)}`
      const provider = `idp-${run}-${generated.nonce.slice(0, 8)}`
      const { responses, call } = runRecorder()
      const root = app.rootToken

      await call('mutation ($e: String!, $p: String!) { signUp(email: $e, password: $p) { ok } }', { e: email, p: secrets.password }, app.loginToken)
      const signedIn = await call('mutation ($e: String!, $p: String!) { signIn(email: $e, password: $p) { ok result { token } } }', { e: email, p: secrets.password }, app.loginToken)
      await call('mutation ($e: String!, $p: String!) { signIn(email: $e, password: $p) { ok error { code } } }', { e: email, p: `${secrets.password}x` }, app.loginToken, true)
      const project = await call(
        `mutation ($s: String!, $v: String!, $h: String) {
          createProject(projectSlug: $s, secrets: [{ key: "k", value: $v }], options: { deployTokenHash: $h }) { ok error { code } result { deployerApiKey { token } } }
        }`,
        { s: slug, v: secrets.projectSecret, h: secrets.deployTokenHash },
        root,
      )
      await call('mutation ($s: String!, $v: String!) { setProjectSecret(projectSlug: $s, key: "k", value: $v) { ok } }', { s: slug, v: secrets.projectSecretUpdate }, root)
      await call(
        'mutation ($i: String!, $c: Json!) { addIDP(identityProvider: $i, type: "oidc", configuration: $c) { ok error { code developerMessage } } }',
        { i: provider, c: { url: 'https://idp.example.test', clientId: 'c', clientSecret: secrets.clientSecret } },
        root,
      )
      await call(
        'mutation ($i: String!, $c: Json!) { updateIDP(identityProvider: $i, configuration: $c, mergeConfiguration: true) { ok error { code developerMessage } } }',
        { i: provider, c: { clientSecret: secrets.clientSecretUpdate } },
        root,
      )
      await call('{ identityProviders { slug configuration } }', {}, root)
      const globalKey = await call(
        'mutation ($h: String) { createGlobalApiKey(description: "prop", roles: [], tokenHash: $h) { ok result { apiKey { token } } } }',
        { h: secrets.globalKeyHash },
        root,
      )
      const projectKey = await call(
        'mutation ($s: String!) { createApiKey(projectSlug: $s, memberships: [{ role: "r", variables: [] }], description: "prop") { ok result { apiKey { token } } } }',
        { s: 'secrets' },
        root,
      )
      await call(
        'mutation ($s: String!, $h: String) { createApiKey(projectSlug: $s, memberships: [{ role: "r", variables: [] }], description: "prop", tokenHash: $h) { ok } }',
        { s: 'secrets', h: secrets.projectKeyHash },
        root,
      )
      await call(
        `mutation ($e: String!, $p: String) {
          unmanagedInvite(email: $e, projectSlug: "secrets", memberships: [{ role: "r", variables: [] }], options: { password: $p }) { ok }
        }`,
        { e: uniqueEmail(`unmanaged${run}`), p: secrets.unmanagedPassword },
        root,
      )
      await call(
        `mutation ($e: String!, $p: String) {
          unmanagedInvite(email: $e, projectSlug: "secrets", memberships: [{ role: "r", variables: [] }], password: $p) { ok }
        }`,
        { e: uniqueEmail(`deprecated${run}`), p: secrets.deprecatedUnmanagedPassword },
        root,
      )
      await call(
        `mutation ($e: String!, $h: String) {
          unmanagedInvite(email: $e, projectSlug: "secrets", memberships: [{ role: "r", variables: [] }], options: { resetTokenHash: $h }) { ok }
        }`,
        { e: uniqueEmail(`hash${run}`), h: secrets.resetTokenHash },
        root,
      )

      // Tokens handed out belong to their own response, never to a log.
      // (Keys created with a caller's hash return no token.)
      const issuedTokens = [signedIn.data?.signIn?.result?.token, projectKey.data?.createApiKey?.result?.apiKey?.token] as string[]
      expect(issuedTokens.every((token) => typeof token === 'string')).toBe(true)
      expect(project.data?.createProject?.result?.deployerApiKey?.token).toBeNull()
      expect(globalKey.data?.createGlobalApiKey?.result?.apiKey?.token).toBeNull()
      const issued = Object.fromEntries(issuedTokens.flatMap((token, index) => [[`issued token ${index}`, token], [`issued token ${index} hash`, hashToken(token)]]))
      await expectNoLeak(responses, { nowhere: secrets, notLogged: issued })
    }),
    { numRuns: 8 },
  )
}, 300_000)

const authenticationInputs = fc.record({
  nonce: fc.uuid(),
  password: secretText,
  newPassword: secretText,
  adminPassword: secretText,
  resetPassword: secretText,
  wrongPassword: secretText,
  wrongCurrentPassword: secretText,
  wrongOtpCode: secretText,
  wrongMfaCode: secretText,
  wrongBackupCode: secretText,
  deviceCode: secretText,
  wrongPasswordlessCode: secretText,
  wrongLinkToken: secretText,
  wrongResetToken: secretText,
  captchaSecret: secretText,
  captchaToken: secretText,
  wrongCaptchaToken: secretText,
})

const SIGN_IN = `mutation ($e: String!, $p: String!, $o: String, $b: String) {
  signIn(email: $e, password: $p, otpToken: $o, backupCode: $b) { ok error { code } result { token } }
}`
const SIGN_IN_PASSWORDLESS = `mutation ($r: String!, $v: PasswordlessValidationType!, $t: String!, $m: String, $b: String) {
  signInPasswordless(requestId: $r, validationType: $v, token: $t, mfaOtp: $m, backupCode: $b) { ok error { code } result { token } }
}`
const RESET_PASSWORD = 'mutation ($t: String!, $p: String!) { resetPassword(token: $t, password: $p) { ok error { code } } }'
const CHANGE_MY_PASSWORD = 'mutation ($c: String!, $n: String!) { changeMyPassword(currentPassword: $c, newPassword: $n) { ok error { code } } }'

/** The event types the authentication runs write: each flow below left its trail. */
const authenticationEvents = [
  'login',
  '2fa_enable',
  '2fa_disable',
  '2fa_backup_codes_regenerate',
  'passwordless_login_init',
  'passwordless_login_exchange',
  'passwordless_login',
  'password_change',
  'password_reset_init',
  'password_reset',
  'idp_login',
  'tenant_config_change',
]

it('no password, code, token or captcha secret of an authentication flow reaches the audit log, a response, or the server log', async () => {
  await fc.assert(
    fc.asyncProperty(authenticationInputs, async (generated) => {
      run += 1
      const { nonce, ...tails } = generated
      // Marked passwords also meet the default policy (at least 8 characters).
      const secrets = Object.fromEntries(Object.entries(tails).map(([name, tail]) => [name, `${name}-${nonce}-${tail}`])) as Record<keyof typeof tails, string>
      const email = uniqueEmail(`auth${run}`)
      const { responses, call } = runRecorder()
      const login = app.loginToken
      const tokenOf = (response: { data?: any }) => (Object.values(response.data ?? {})[0] as { result: { token: string } }).result.token

      // A captcha provider: the secret and the token go to it, and nowhere else.
      await call('mutation ($s: String) { configure(config: { captcha: { provider: hcaptcha, secret: $s } }) { ok } }', { s: secrets.captchaSecret }, app.rootToken)
      captcha.answerWith((verify) => ({ json: { success: verify.response?.startsWith('captchaToken-') ?? false } }))
      const captchaToken = secrets.captchaToken
      const captchaRequests = captcha.requests.length

      // Password sign-in and the second factor.
      const SIGN_UP = 'mutation ($e: String!, $p: String!, $c: String) { signUp(email: $e, password: $p, captchaToken: $c) { ok error { code } result { person { id } } } }'
      await call(SIGN_UP, { e: email, p: secrets.password, c: secrets.wrongCaptchaToken }, login, true)
      const signedUp = await call(SIGN_UP, { e: email, p: secrets.password, c: captchaToken }, login)
      const personId = signedUp.data.signUp.result.person.id as string
      const session = tokenOf(await call(SIGN_IN, { e: email, p: secrets.password }, login))
      const prepared = await call('mutation { prepareOtp { ok result { otpSecret } } }', {}, session)
      const otpSecret = prepared.data.prepareOtp.result.otpSecret as string
      await call('mutation ($c: String!) { confirmOtp(otpToken: $c) { ok error { code } } }', { c: secrets.wrongOtpCode }, session, true)
      const confirmCode = await totpCode(otpSecret)
      const confirmed = await call('mutation ($c: String!) { confirmOtp(otpToken: $c) { ok error { code } result { backupCodes } } }', { c: confirmCode }, session)
      const signInCode = await totpCode(otpSecret, 1)
      const otpSession = tokenOf(await call(SIGN_IN, { e: email, p: secrets.password, o: signInCode }, login))
      // Backup codes: one signs in, then all are replaced.
      const confirmedCodes: string[] = confirmed.data.confirmOtp.result.backupCodes
      const backupCodeSession = tokenOf(await call(SIGN_IN, { e: email, p: secrets.password, b: confirmedCodes[0] }, login))
      const regenerated = await call('mutation { regenerateBackupCodes { ok result { backupCodes } } }', {}, session)
      const backupCodes = [...confirmedCodes, ...(regenerated.data.regenerateBackupCodes.result.backupCodes as string[])]

      // Passwordless: the second factor asked for, then by a cross-device code, then by the link token.
      const first = await mailedPasswordlessRequest(app, mail, email, captchaToken)
      await call(SIGN_IN_PASSWORDLESS, { r: first.requestId, v: 'token', t: first.token, m: secrets.wrongMfaCode }, login, true)
      await call(SIGN_IN_PASSWORDLESS, { r: first.requestId, v: 'token', t: first.token, b: secrets.wrongBackupCode }, login, true)
      await call('mutation { disableOtp { ok } }', {}, session)
      await call(
        'mutation ($r: String!, $t: String!, $h: String!) { activatePasswordlessOtp(requestId: $r, token: $t, otpHash: $h) { ok error { code } } }',
        { r: first.requestId, t: first.token, h: sha256Of(secrets.deviceCode) },
        login,
      )
      await call(SIGN_IN_PASSWORDLESS, { r: first.requestId, v: 'otp', t: secrets.wrongPasswordlessCode }, login, true)
      const codeSession = tokenOf(await call(SIGN_IN_PASSWORDLESS, { r: first.requestId, v: 'otp', t: secrets.deviceCode }, login))
      const second = await mailedPasswordlessRequest(app, mail, email, captchaToken)
      await call(SIGN_IN_PASSWORDLESS, { r: second.requestId, v: 'token', t: secrets.wrongLinkToken }, login, true)
      const linkSession = tokenOf(await call(SIGN_IN_PASSWORDLESS, { r: second.requestId, v: 'token', t: second.token }, login))

      // Password change by the person and by an admin, then a reset.
      await call(CHANGE_MY_PASSWORD, { c: secrets.wrongCurrentPassword, n: secrets.newPassword }, session, true)
      await call(CHANGE_MY_PASSWORD, { c: secrets.password, n: secrets.newPassword }, session)
      await call('mutation ($id: String!, $p: String!) { changePassword(personId: $id, password: $p) { ok } }', { id: personId, p: secrets.adminPassword }, app.rootToken)
      const reset = await mailedPasswordReset(app, mail, email, captchaToken)
      const check = await call('query ($r: String!, $t: String!) { checkResetPasswordToken(requestId: $r, token: $t) }', { r: reset.requestId, t: secrets.wrongResetToken }, login)
      expect(check.data.checkResetPasswordToken).toBe('TOKEN_INVALID')
      await call(RESET_PASSWORD, { t: secrets.wrongResetToken, p: secrets.resetPassword }, login, true)
      await call(RESET_PASSWORD, { t: reset.token, p: secrets.resetPassword }, login)
      const resetSession = tokenOf(await call(SIGN_IN, { e: email, p: secrets.resetPassword }, login))
      // Last: the backoff this failure starts would hold up a sign-in of this email after it.
      await call(SIGN_IN, { e: email, p: secrets.wrongPassword }, login, true)

      // Every captcha check reached the provider with the secret (the flows really verified).
      const verified = captcha.requests.slice(captchaRequests)
      expect(verified).toHaveLength(5)
      expect(verified.every((verify) => verify.secret?.startsWith(`captchaSecret-${nonce}-`))).toBe(true)

      // The password hash as the flows left it: the first sign-in through the provider (next) clears it.
      const [{ passwordHash } = { passwordHash: '' }] = await sql<{ passwordHash: string }>(app, 'SELECT password_hash AS "passwordHash" FROM person WHERE id = $1', [personId])
      expect(passwordHash).toMatch(/^\$argon2id\$/)
      // A sign-in through the identity provider.
      const redirect = await idpRedirect(app, idp, idpSlug, { sub: `sub-${personId}`, email, email_verified: true })
      const idpSession = tokenOf(await call('mutation ($s: String!, $d: Json) { signInIDP(identityProvider: $s, data: $d) { ok result { token } } }', { s: idpSlug, d: redirect }, login))

      // Handed out in a response of their own: never in a log.
      const sessions = { session, otpSession, backupCodeSession, codeSession, linkSession, resetSession, idpSession }
      const notLogged: Record<string, string> = { otpSecret, codeVerifier: redirect.sessionData.codeVerifier!, ...sessions }
      for (const [index, code] of backupCodes.entries()) {
        notLogged[`backup code ${index}`] = code
        notLogged[`backup code ${index} as typed without dashes`] = code.replaceAll('-', '')
      }
      for (const [name, token] of Object.entries(sessions)) notLogged[`${name} hash`] = hashToken(token)
      // Handed out by mail or by the provider, or stored as a hash: in no response either.
      const nowhere: Record<string, string> = {
        ...secrets,
        confirmCode,
        signInCode,
        firstLinkToken: first.token,
        firstCode: first.code,
        secondLinkToken: second.token,
        resetToken: reset.token,
        authorizationCode: new URL(redirect.url).searchParams.get('code')!,
        providerClientSecret: idp.clientSecret,
      }
      const stored = await sql<{ hash: string }>(
        app,
        `SELECT $2::text AS hash
         UNION ALL SELECT token_hash FROM person_token WHERE person_id = $1
         UNION ALL SELECT otp_hash FROM person_token WHERE person_id = $1 AND otp_hash IS NOT NULL
         UNION ALL SELECT token_hash FROM api_key`,
        [personId, passwordHash],
      )
      for (const [index, { hash }] of stored.entries()) nowhere[`stored hash ${index}`] = hash
      // Backup code rows are gone with disableOtp: their hashes are computed.
      for (const [index, code] of backupCodes.entries()) nowhere[`backup code ${index} hash`] = sha256Of(code.replaceAll('-', ''))
      await expectNoLeak(responses, { nowhere, notLogged })
    }),
    { numRuns: 8 },
  )
  const written = new Set((await auditRowsAsText(app)).map((row) => JSON.parse(row).type))
  for (const type of authenticationEvents) expect(written, `the runs wrote ${type}`).toContain(type)
}, 300_000)

it('refuses text with a NUL character (PostgreSQL cannot store it) as bad input, with no effect and no trace of the value', async () => {
  const secret = `nul-secret-${Date.now()}\u0000tail`
  await expectNoEffect(app, async () => {
    const response = await app.gql(
      'mutation ($c: Json!) { addIDP(identityProvider: "nul", type: "oidc", configuration: $c) { ok } }',
      { variables: { c: { url: 'https://idp.example.test', clientId: 'c', clientSecret: secret } }, token: app.rootToken },
    )
    expect(response.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT')
    const literal = await app.gql('mutation { setProjectSecret(projectSlug: "secrets", key: "k", value: "a\\u0000b") { ok } }', { token: app.rootToken })
    expect(literal.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT')
  })
  expect(app.logOutput()).not.toContain('nul-secret-')
})
