import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { onPostgres } from '../testkit/database.js'
import { configureTenant, sql, uniqueEmail } from '../testkit/fixtures.js'

/**
 * The per-address limits hold when the attempts arrive at once, for different emails (which take
 * no turns together): each attempt takes the address's turn and counts those before it. Without
 * that, 20 sign-ins at once under a limit of 3 had 14 checked. PostgreSQL: real parallel transactions.
 */
describe.runIf(onPostgres)('per-IP limits under concurrency', () => {
  let app: TestApp

  beforeAll(async () => {
    app = await startTestApp({}, { defaultRateLimits: true })
    await configureTenant(app, {
      passwordless: { enabled: 'always' },
      rateLimits: {
        loginPerIp: { limit: 3, window: 'PT1H' },
        passwordResetPerIp: { limit: 2, window: 'PT1H' },
        passwordlessInitPerIp: { limit: 2, window: 'PT1H' },
        signUpPerIp: { limit: 2, window: 'PT1H' },
      },
    })
  }, 60_000)
  afterAll(async () => {
    await app?.stop()
  })

  const atOnce = (count: number, query: string) =>
    Promise.all(Array.from({ length: count }, () => app.gql(query, { variables: { email: uniqueEmail('spray') }, token: app.loginToken })))

  /** Entries of `type` the limit counted: every one but its refusals. */
  const counted = async (type: string) =>
    (await sql<{ count: number }>(app, `SELECT count(*)::int AS count FROM person_auth_log WHERE type = $1 AND error_code IS DISTINCT FROM 'RATE_LIMIT_EXCEEDED'`, [type]))[0]!.count

  it('checks no more sign-ins from one address than its limit', async () => {
    const answers = await atOnce(20, 'mutation ($email: String!) { signIn(email: $email, password: "guess-Passw0rd") { ok error { code } } }')
    expect(answers.filter((answer) => answer.data.signIn.error.code === 'RATE_LIMIT_EXCEEDED')).toHaveLength(17)
    expect(await counted('login')).toBe(3)
  })

  it('takes no more reset or passwordless requests from one address than their limits', async () => {
    for (const [mutation, type] of [
      ['createResetPasswordRequest', 'password_reset_init'],
      ['initSignInPasswordless', 'passwordless_login_init'],
    ] as const) {
      await atOnce(15, `mutation ($email: String!) { ${mutation}(email: $email) { ok } }`)
      expect(await counted(type), type).toBe(2)
    }
  })

  it('creates no more persons from one address than the sign-up limit', async () => {
    const answers = await atOnce(15, 'mutation ($email: String!) { signUp(email: $email, password: "Spray-Passw0rd-1") { ok error { code } } }')
    expect(answers.filter((answer) => answer.data.signUp.ok)).toHaveLength(2)
  })
})
