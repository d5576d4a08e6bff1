import { afterAll, beforeAll, expect, it } from 'vitest'
import { PASSWORDLESS_MAX_FAILED_ATTEMPTS } from '../../src/tenant/auth/passwordless.js'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { configureTenant, enableOtp, mailedPasswordlessRequest, signUpPerson, signedInPerson, sql } from '../testkit/fixtures.js'
import { type MailCatcher, startMailCatcher } from '../testkit/mail.js'

/**
 * A passwordless request dies after PASSWORDLESS_MAX_FAILED_ATTEMPTS wrong codes, also
 * when the guesses arrive at once: the mailed code has only a million values.
 *
 * signInPasswordless counts earlier failures from the log. Attempts on one request hold its
 * person_token row in turn, and a wrong code commits its failure entry before it lets the next
 * attempt in (runCommand's commitRefusal); written after a rollback, as other failures are, the
 * entry could arrive after the next attempt counted (13 of 40 concurrent guesses were checked).
 * On PGlite transactions run one at a time anyway.
 */

let app: TestApp
let mail: MailCatcher

beforeAll(async () => {
  mail = await startMailCatcher()
  app = await startTestApp({ SMTP_URL: mail.url })
  await configureTenant(app, { passwordless: { enabled: 'always', url: 'https://app.example.test/sign-in', expiration: 'PT10M' } })
})
afterAll(async () => {
  await app?.stop()
  await mail?.close()
})

it('checks no more wrong codes than the limit when the guesses arrive at once', async () => {
  const person = await signUpPerson(app)
  const request = await mailedPasswordlessRequest(app, mail, person.email)
  const guesses = Array.from({ length: 40 }, (_, index) => String(index).padStart(6, '0')).filter((guess) => guess !== request.code)
  await Promise.all(
    guesses.map((guess) =>
      app.gql(
        'mutation ($requestId: String!, $token: String!) { signInPasswordless(requestId: $requestId, validationType: otp, token: $token) { ok } }',
        { variables: { requestId: request.requestId, token: guess }, token: app.loginToken },
      ),
    ),
  )
  const rows = await sql<{ error_code: string; count: number }>(
    app,
    `SELECT error_code, count(*)::int AS count FROM person_auth_log
      WHERE type = 'passwordless_login' AND metadata ->> 'requestId' = $1 GROUP BY error_code`,
    [request.requestId],
  )
  const checked = rows.find((row) => row.error_code === 'TOKEN_INVALID')?.count ?? 0
  const turnedAway = rows.find((row) => row.error_code === 'TOO_MANY_ATTEMPTS')?.count ?? 0
  expect(checked + turnedAway).toBe(guesses.length)
  expect(checked).toBe(PASSWORDLESS_MAX_FAILED_ATTEMPTS)
})

it('checks no more wrong TOTP codes than the limit either (the sign-in backoff turns most away), when they arrive at once with the right mailed token', async () => {
  const person = await signedInPerson(app)
  await enableOtp(app, person)
  const request = await mailedPasswordlessRequest(app, mail, person.email)
  await Promise.all(
    Array.from({ length: 30 }, (_, index) =>
      app.gql(
        'mutation ($requestId: String!, $token: String!, $mfaOtp: String) { signInPasswordless(requestId: $requestId, validationType: token, token: $token, mfaOtp: $mfaOtp) { ok } }',
        // Six digits no TOTP step is likely to give now; a hit would only make a guess succeed, which the count below would show.
        { variables: { requestId: request.requestId, token: request.token, mfaOtp: `9${String(index).padStart(5, '0')}` }, token: app.loginToken },
      ),
    ),
  )
  const rows = await sql<{ error_code: string; count: number }>(
    app,
    `SELECT error_code, count(*)::int AS count FROM person_auth_log
      WHERE type = 'passwordless_login' AND metadata ->> 'requestId' = $1 GROUP BY error_code`,
    [request.requestId],
  )
  // Each wrong code also feeds the person's sign-in backoff, which turns the next ones away (RATE_LIMIT_EXCEEDED) unchecked.
  const count = (code: string) => rows.find((row) => row.error_code === code)?.count ?? 0
  expect(count('INVALID_OTP_TOKEN')).toBeGreaterThanOrEqual(1)
  expect(count('INVALID_OTP_TOKEN')).toBeLessThanOrEqual(PASSWORDLESS_MAX_FAILED_ATTEMPTS)
  expect(count('INVALID_OTP_TOKEN') + count('TOO_MANY_ATTEMPTS') + count('RATE_LIMIT_EXCEEDED')).toBe(30)
})
