import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { configureTenant, mailedPasswordReset, negligibleBackoff, readLog, signIn, signUpPerson, signedInPerson, strongPassword, uniqueEmail } from '../testkit/fixtures.js'
import { type MailCatcher, startMailCatcher } from '../testkit/mail.js'

let app: TestApp
let mail: MailCatcher

beforeAll(async () => {
  mail = await startMailCatcher()
  app = await startTestApp({ SMTP_URL: mail.url })
  await configureTenant(app, { login: negligibleBackoff })
})
afterAll(async () => {
  await app.stop()
  await mail.close()
})

const requestReset = (email: string) =>
  app.gql(`mutation ($email: String!) { createResetPasswordRequest(email: $email) { ok error { code retryAfter } } }`, {
    variables: { email },
    token: app.loginToken,
  })

const reset = (token: string, password: string) =>
  app.gql(
    `mutation ($token: String!, $password: String!) {
      resetPassword(token: $token, password: $password) { ok error { code weakPasswordReasons } }
    }`,
    { variables: { token, password }, token: app.loginToken },
  )

const check = async (requestId: string, token: string) =>
  (
    await app.gql(`query ($requestId: String!, $token: String!) { checkResetPasswordToken(requestId: $requestId, token: $token) }`, {
      variables: { requestId, token },
      token: app.loginToken,
    })
  ).data?.checkResetPasswordToken

/** Requests a reset; request id and token come from the mail the SMTP server received. */
async function mailedReset(email: string) {
  const request = await mailedPasswordReset(app, mail, email)
  expect(request.message.subject).toBe('Reset your password')
  return request
}

describe('password reset', () => {
  it('mails a token over SMTP, records password_reset_init, and resets the password once', async () => {
    const person = await signedInPerson(app)
    const { requestId, token } = await mailedReset(person.email)
    const [init] = (await readLog(app, { filter: { types: ['password_reset_init'], personId: person.id } })).entries
    expect(init).toMatchObject({ success: true, personInputIdentifier: person.email, personId: person.id, errorCode: null })
    expect(init!.metadata).toEqual({ requestId })

    expect(await check(requestId, token)).toBe('VALID')
    expect(await check(requestId, 'not-the-token')).toBe('TOKEN_INVALID')
    expect(await check('00000000-0000-4000-8000-000000000000', token)).toBe('REQUEST_NOT_FOUND')
    expect(await check('nonsense', token)).toBe('REQUEST_NOT_FOUND')

    const newPassword = strongPassword()
    expect((await reset(token, newPassword)).data.resetPassword).toEqual({ ok: true, error: null })
    const [done] = (await readLog(app, { filter: { types: ['password_reset'], personId: person.id } })).entries
    expect(done).toMatchObject({ success: true, personId: person.id, errorCode: null, metadata: { requestId } })

    // Signed out everywhere; the new password works, the old does not.
    const me = await app.gql('{ me { id } }', { token: person.token })
    expect(me.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
    await signIn(app, { email: person.email, password: newPassword })

    expect(await check(requestId, token)).toBe('TOKEN_USED')
    expect((await reset(token, strongPassword())).data.resetPassword.error.code).toBe('TOKEN_USED')
    const [used] = (await readLog(app, { filter: { types: ['password_reset'], personId: person.id, success: false } })).entries
    expect(used).toMatchObject({ errorCode: 'TOKEN_USED', personId: person.id })
  })

  it('answers the same for an unknown email, mails nothing, and records the attempt with the typed email', async () => {
    const email = uniqueEmail('Nobody')
    const since = mail.received.length
    expect((await requestReset(email)).data.createResetPasswordRequest).toEqual({ ok: true, error: null })
    const [entry] = (await readLog(app, { filter: { personInputIdentifier: email } })).entries
    expect(entry).toMatchObject({ type: 'password_reset_init', success: false, errorCode: 'PERSON_NOT_FOUND', personId: null })
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(mail.received.slice(since).filter((message) => message.to.includes(email.toLowerCase()))).toEqual([])
  })

  it('refuses a weak password (PASSWORD_TOO_WEAK) and keeps the token usable', async () => {
    const person = await signUpPerson(app)
    const { token } = await mailedReset(person.email)
    const weak = await reset(token, 'short')
    expect(weak.data.resetPassword.error).toEqual({ code: 'PASSWORD_TOO_WEAK', weakPasswordReasons: ['TOO_SHORT'] })
    const [entry] = (await readLog(app, { filter: { types: ['password_reset'], personId: person.id } })).entries
    expect(entry).toMatchObject({ success: false, errorCode: 'PASSWORD_TOO_WEAK' })
    expect((await reset(token, strongPassword())).data.resetPassword.ok).toBe(true)
  })

  it('refuses an unknown token (TOKEN_NOT_FOUND) and an expired one (TOKEN_EXPIRED)', async () => {
    expect((await reset('f'.repeat(40), strongPassword())).data.resetPassword.error.code).toBe('TOKEN_NOT_FOUND')
    const [unknown] = (await readLog(app, { filter: { types: ['password_reset'], success: false }, limit: 1 })).entries
    expect(unknown).toMatchObject({ errorCode: 'TOKEN_NOT_FOUND', personId: null })

    const person = await signUpPerson(app)
    const { requestId, token } = await mailedReset(person.email)
    await app.app.services.db.prisma.personToken.update({ where: { id: requestId }, data: { expiresAt: new Date(Date.now() - 1000) } })
    expect(await check(requestId, token)).toBe('TOKEN_EXPIRED')
    expect((await reset(token, strongPassword())).data.resetPassword.error.code).toBe('TOKEN_EXPIRED')
  })

  it('a newer request makes the older token unusable', async () => {
    const person = await signUpPerson(app)
    const first = await mailedReset(person.email)
    const second = await mailedReset(person.email)
    expect(await check(first.requestId, first.token)).toBe('TOKEN_USED')
    expect(await check(second.requestId, second.token)).toBe('VALID')
  })

  it('stores only hashes of the token', async () => {
    const person = await signUpPerson(app)
    const { requestId, token } = await mailedReset(person.email)
    const row = await app.app.services.db.prisma.personToken.findUniqueOrThrow({ where: { id: requestId } })
    expect(JSON.stringify(row)).not.toContain(token)
  })

  it('reveals PERSON_NOT_FOUND only when login.revealUserExists is on', async () => {
    const other = await startTestApp({ SMTP_URL: mail.url })
    try {
      await other.gql(`mutation { configure(config: { login: { revealUserExists: true } }) { ok } }`, { token: other.rootToken })
      const response = await other.gql(`mutation { createResetPasswordRequest(email: "nobody@example.test") { ok error { code } } }`, {
        token: other.loginToken,
      })
      expect(response.data.createResetPasswordRequest).toMatchObject({ ok: false, error: { code: 'PERSON_NOT_FOUND' } })
    } finally {
      await other.stop()
    }
  })
})

describe('mail without SMTP_URL', () => {
  it('goes to the mail_outbox table', async () => {
    const outboxApp = await startTestApp()
    try {
      const person = await signUpPerson(outboxApp)
      await outboxApp.gql(`mutation ($email: String!) { createResetPasswordRequest(email: $email) { ok } }`, {
        variables: { email: person.email },
        token: outboxApp.loginToken,
      })
      const prisma = outboxApp.app.services.db.prisma
      let outbox = await prisma.mailOutbox.findMany({ where: { recipient: person.email } })
      for (let attempt = 0; outbox.length === 0 && attempt < 50; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        outbox = await prisma.mailOutbox.findMany({ where: { recipient: person.email } })
      }
      expect(outbox).toHaveLength(1)
      expect(outbox[0]!.subject).toBe('Reset your password')
      expect(outbox[0]!.body).toMatch(/Reset token: [0-9a-f]{40}/)
    } finally {
      await outboxApp.stop()
    }
  })
})
