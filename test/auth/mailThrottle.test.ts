import { describe, expect, it } from 'vitest'
import type { TestApp } from '../testkit/app.js'
import { configureTenant, withMailingTestApp, readLog, seedLogEntries, signUpPerson, uniqueEmail } from '../testkit/fixtures.js'
import type { MailCatcher } from '../testkit/mail.js'

/**
 * Per-email backoff of createResetPasswordRequest and initSignInPasswordless: every request
 * for an email is an attempt; the next waits baseBackoff * 2^(n-1) after n of them.
 */

let app: TestApp
let mail: MailCatcher

withMailingTestApp((started, catcher) => {
  app = started
  mail = catcher
})

const flows = [
  { mutation: 'createResetPasswordRequest', type: 'password_reset_init' },
  { mutation: 'initSignInPasswordless', type: 'passwordless_login_init' },
] as const

const request = async (mutation: string, email: string) =>
  (
    await app.gql(`mutation ($email: String!) { ${mutation}(email: $email) { ok error { code retryAfter } } }`, {
      variables: { email },
      token: app.loginToken,
    })
  ).data[mutation] as { ok: boolean; error: { code: string; retryAfter: number | null } | null }

const mailsTo = (email: string) => mail.received.filter((message) => message.to.includes(email)).length

describe.each(flows)('$mutation: per-email backoff', ({ mutation, type }) => {
  it('refuses a repeated request, in any spelling of the email, until baseBackoff has passed, logs the refusal and mails nothing; an unknown email is treated the same', async () => {
    await configureTenant(app, { login: { baseBackoff: 'PT1S', maxBackoff: 'PT1S', attemptWindow: 'PT5M' } })
    const person = await signUpPerson(app)
    const unknown = uniqueEmail('nobody')
    const answers: Record<string, unknown[]> = {}
    for (const email of [person.email, unknown]) {
      const first = await request(mutation, email)
      const respelled = ` ${email.toUpperCase()} `
      const second = await request(mutation, respelled)
      const [refusal] = (await readLog(app, { filter: { types: [type], personInputIdentifier: respelled }, limit: 1 })).entries
      // The refusal names the person, as the throttle matched the email in any spelling.
      expect(refusal).toMatchObject({
        success: false,
        errorCode: 'RATE_LIMIT_EXCEEDED',
        metadata: { reason: 'email', retryAfter: 1 },
        personId: email === person.email ? person.id : null,
      })
      await new Promise((resolve) => setTimeout(resolve, 1_100)) // the configured backoff
      const beforeThird = mail.received.length
      const third = await request(mutation, email)
      if (email === person.email) await mail.waitFor(email, { since: beforeThird })
      answers[email === unknown ? 'unknown' : 'known'] = [first, second, third]
    }
    expect(answers.known).toEqual([
      { ok: true, error: null },
      { ok: false, error: { code: 'RATE_LIMIT_EXCEEDED', retryAfter: 1 } },
      { ok: true, error: null },
    ])
    expect(answers.unknown).toEqual(answers.known)
    // The third request's mail has arrived; one for the refused second request would have been sent before it.
    expect(mailsTo(person.email)).toBe(2)
    expect(mailsTo(unknown)).toBe(0)
  })

  it('holds for requests sent all at once: they take turns, one mails', async () => {
    await configureTenant(app, { login: { baseBackoff: 'PT1H', maxBackoff: 'PT1H', attemptWindow: 'PT5M' } })
    const person = await signUpPerson(app)
    // The mail may arrive before the last answer.
    const before = mail.received.length
    const answers = await Promise.all(Array.from({ length: 6 }, (_, index) => request(mutation, index % 2 ? person.email.toUpperCase() : person.email)))
    expect(answers.filter((answer) => answer.ok)).toHaveLength(1)
    expect(answers.filter((answer) => answer.error?.code === 'RATE_LIMIT_EXCEEDED')).toHaveLength(5)
    await mail.waitFor(person.email, { since: before })
    expect(mailsTo(person.email)).toBe(1)
  })

  it('doubles with each earlier request in attemptWindow, stops at maxBackoff, and counts no refusals', async () => {
    await configureTenant(app, { login: { baseBackoff: 'PT10S', maxBackoff: 'PT1M', attemptWindow: 'PT1H' } })
    const earlier = (email: string, count: number, secondsAgo: number, errorCode: string | null = null) =>
      seedLogEntries(
        app,
        Array.from({ length: count }, (_, index) => ({
          type,
          success: errorCode === null,
          errorCode,
          personInputIdentifier: email,
          createdAt: new Date(Date.now() - secondsAgo * 1000 - (count - index)),
        })),
      )
    const three = uniqueEmail('three')
    await earlier(three, 3, 1)
    await earlier(three, 4, 0, 'RATE_LIMIT_EXCEEDED')
    const afterThree = (await request(mutation, three)).error!
    expect(afterThree.code).toBe('RATE_LIMIT_EXCEEDED')
    expect(afterThree.retryAfter).toBeGreaterThan(30) // 10 s * 2^2 = 40 s from the newest counted request
    expect(afterThree.retryAfter).toBeLessThanOrEqual(40)

    const many = uniqueEmail('many')
    await earlier(many, 8, 1, 'PERSON_NOT_FOUND')
    const capped = (await request(mutation, many)).error!
    expect(capped.retryAfter).toBeGreaterThan(50) // 10 s * 2^7 capped at 60 s
    expect(capped.retryAfter).toBeLessThanOrEqual(60)

    const old = uniqueEmail('old')
    await earlier(old, 5, 2 * 3600)
    expect(await request(mutation, old)).toEqual({ ok: true, error: null })
  })
})
