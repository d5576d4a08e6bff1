import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { configureTenant, readLog, seedLogEntries, signUpPerson, strongPassword, uniqueEmail } from '../testkit/fixtures.js'

let app: TestApp

beforeAll(async () => {
  app = await startTestApp({}, { defaultRateLimits: true })
})
afterAll(async () => {
  await app.stop()
})

const attempt = (email: string, password: string) =>
  app.gql(
    `mutation ($email: String!, $password: String!) {
      signIn(email: $email, password: $password) { ok error { code retryAfter } }
    }`,
    { variables: { email, password }, token: app.loginToken },
  )

/** Failed `login` entries written straight into the log, `secondsAgo` old: the backoff reads nothing else. */
async function pastFailures(identifier: string, personId: string | null, count: number, secondsAgo: number) {
  await seedLogEntries(
    app,
    Array.from({ length: count }, (_, index) => ({
      type: 'login',
      success: false,
      errorCode: 'INVALID_PASSWORD',
      personInputIdentifier: identifier,
      personId,
      createdAt: new Date(Date.now() - secondsAgo * 1000 - (count - index)),
    })),
  )
}

describe('sign-in backoff from the log', () => {
  afterEach(async () => {
    await configureTenant(app, { login: { baseBackoff: 'PT1S', maxBackoff: 'PT5M', attemptWindow: 'PT5M' } })
  })

  it('blocks the attempt after a failure for baseBackoff, records it as RATE_LIMIT_EXCEEDED, and refuses even the right password', async () => {
    await configureTenant(app, { login: { baseBackoff: 'PT30S' } })
    const person = await signUpPerson(app)
    expect((await attempt(person.email, 'wrong-password')).data.signIn.error.code).toBe('INVALID_CREDENTIALS')
    const blocked = await attempt(person.email, person.password)
    expect(blocked.data.signIn.error.code).toBe('RATE_LIMIT_EXCEEDED')
    expect(blocked.data.signIn.error.retryAfter).toBeGreaterThan(25)
    expect(blocked.data.signIn.error.retryAfter).toBeLessThanOrEqual(30)
    const [entry] = (await readLog(app, { filter: { types: ['login'], personId: person.id }, limit: 1 })).entries
    expect(entry).toMatchObject({ success: false, errorCode: 'RATE_LIMIT_EXCEEDED', personInputIdentifier: person.email })
    expect(entry!.metadata).toMatchObject({ reason: 'backoff', retryAfter: blocked.data.signIn.error.retryAfter })
  })

  it('holds when the guesses arrive at once: attempts for one person take turns, so one is checked', async () => {
    await configureTenant(app, { login: { baseBackoff: 'PT1H', maxBackoff: 'PT1H' } })
    const person = await signUpPerson(app)
    const answers = await Promise.all(Array.from({ length: 8 }, (_, index) => attempt(index % 2 ? person.email.toUpperCase() : person.email, `wrong-${index}`)))
    expect(answers.map((answer) => answer.data.signIn.error.code).sort()).toEqual(['INVALID_CREDENTIALS', ...Array(7).fill('RATE_LIMIT_EXCEEDED')])
    const entries = (await readLog(app, { filter: { types: ['login'], personId: person.id }, limit: 20 })).entries
    expect(entries.map((entry) => entry.errorCode).sort()).toEqual(['INVALID_PASSWORD', ...Array(7).fill('RATE_LIMIT_EXCEEDED')])
  })

  it('doubles with each consecutive failure and stops at maxBackoff', async () => {
    await configureTenant(app, { login: { baseBackoff: 'PT10S', maxBackoff: 'PT5M', attemptWindow: 'PT1H' } })
    const threeTimes = uniqueEmail('three')
    await pastFailures(threeTimes, null, 3, 1)
    const afterThree = (await attempt(threeTimes, 'x')).data.signIn.error
    expect(afterThree.code).toBe('RATE_LIMIT_EXCEEDED')
    expect(afterThree.retryAfter).toBeGreaterThan(30) // 10 s * 2^2 = 40 s from the last failure
    expect(afterThree.retryAfter).toBeLessThanOrEqual(40)

    const tenTimes = uniqueEmail('ten')
    await pastFailures(tenTimes, null, 10, 1)
    const capped = (await attempt(tenTimes, 'x')).data.signIn.error
    expect(capped.retryAfter).toBeGreaterThan(290) // 10 s * 2^9 capped at 300 s
    expect(capped.retryAfter).toBeLessThanOrEqual(300)
  })

  it('forgets failures older than attemptWindow, and failures before a successful sign-in', async () => {
    await configureTenant(app, { login: { baseBackoff: 'PT10S', attemptWindow: 'PT1M' } })
    const old = uniqueEmail('old')
    await pastFailures(old, null, 5, 120)
    expect((await attempt(old, 'x')).data.signIn.error.code).toBe('INVALID_CREDENTIALS')

    const person = await signUpPerson(app)
    await pastFailures(person.email, person.id, 4, 10)
    expect((await attempt(person.email, person.password)).data.signIn.error.code).toBe('RATE_LIMIT_EXCEEDED')
    await seedLogEntries(app, [{ type: 'login', success: true, personInputIdentifier: person.email, personId: person.id, createdAt: new Date(Date.now() - 5_000) }])
    expect((await attempt(person.email, person.password)).data.signIn.ok).toBe(true)
  })

  it('counts failures under any spelling of the email, for an unknown email as for a person', async () => {
    await configureTenant(app, { login: { baseBackoff: 'PT30S' } })
    const person = await signUpPerson(app)
    await attempt(person.email.toUpperCase(), 'wrong')
    expect((await attempt(person.email, person.password)).data.signIn.error.code).toBe('RATE_LIMIT_EXCEEDED')
    // Were the backoff of an unknown email kept to its spelling, a respelled guess would tell whether the account exists.
    const unknown = uniqueEmail('nobody')
    await attempt(unknown, 'wrong')
    expect((await attempt(` ${unknown.toUpperCase()} `, 'wrong')).data.signIn.error.code).toBe('RATE_LIMIT_EXCEEDED')
  })

  it('is over after a successful password reset', async () => {
    await configureTenant(app, { login: { baseBackoff: 'PT30S' } })
    const person = await signUpPerson(app)
    await attempt(person.email, 'wrong')
    expect((await attempt(person.email, person.password)).data.signIn.error.code).toBe('RATE_LIMIT_EXCEEDED')
    await app.gql(`mutation ($email: String!) { createResetPasswordRequest(email: $email) { ok } }`, {
      variables: { email: person.email },
      token: app.loginToken,
    })
    // The token travels by mail (outbox here); read it back from there.
    const prisma = app.app.services.db.prisma
    let body: string | undefined
    for (let tries = 0; !body && tries < 50; tries++) {
      body = (await prisma.mailOutbox.findFirst({ where: { recipient: person.email } }))?.body
      if (!body) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const token = /Reset token: (\S+)/.exec(body ?? '')?.[1]
    const password = strongPassword()
    const reset = await app.gql(`mutation ($token: String!, $password: String!) { resetPassword(token: $token, password: $password) { ok } }`, {
      variables: { token, password },
      token: app.loginToken,
    })
    expect(reset.data.resetPassword.ok).toBe(true)
    expect((await attempt(person.email, password)).data.signIn.ok).toBe(true)
  })
})

describe('per-IP limits', () => {
  it('limits sign-in attempts per address, counted from the log; a super admin can raise the limit', async () => {
    await configureTenant(app, { rateLimits: { loginPerIp: { limit: 3, window: 'PT1H' } } })
    try {
      // Whatever this file's earlier tests sent counts too; top it up to the limit.
      const counted = await app.app.services.db.prisma.personAuthLog.count({
        where: {
          type: 'login',
          clientIp: '127.0.0.1',
          createdAt: { gte: new Date(Date.now() - 3_600_000) },
          OR: [{ errorCode: null }, { errorCode: { not: 'RATE_LIMIT_EXCEEDED' } }],
        },
      })
      for (let index = counted; index < 3; index++) await attempt(uniqueEmail(), 'x')
      const blocked = (await attempt(uniqueEmail('blocked'), 'x')).data.signIn.error
      expect(blocked.code).toBe('RATE_LIMIT_EXCEEDED')
      expect(blocked.retryAfter).toBeGreaterThan(0)
      expect(blocked.retryAfter).toBeLessThanOrEqual(3600)
      const [entry] = (await readLog(app, { filter: { types: ['login'] }, limit: 1 })).entries
      expect(entry).toMatchObject({ success: false, errorCode: 'RATE_LIMIT_EXCEEDED', clientIp: '127.0.0.1', metadata: { reason: 'ip' } })

      await configureTenant(app, { rateLimits: { loginPerIp: { limit: 1000 } } })
      expect((await attempt(uniqueEmail('after-raise'), 'x')).data.signIn.error.code).toBe('INVALID_CREDENTIALS')
    } finally {
      await configureTenant(app, { rateLimits: { loginPerIp: { limit: 100, window: 'PT1M' } } })
    }
  })

  it('limits sign-ups per address in rate_limit_hit (sign-up has no log event)', async () => {
    await configureTenant(app, { rateLimits: { signUpPerIp: { limit: 2, window: 'PT1H' } } })
    try {
      const prisma = app.app.services.db.prisma
      const hits = () => prisma.rateLimitHit.count({ where: { bucket: 'signUp', clientIp: '127.0.0.1' } })
      for (let index = await hits(); index < 2; index++) await signUpPerson(app)
      const counted = await hits()
      const blocked = await app.gql(`mutation ($email: String!) { signUp(email: $email, password: "Passw0rd!!") { ok error { code } } }`, {
        variables: { email: uniqueEmail() },
        token: app.loginToken,
      })
      expect(blocked.data.signUp.error.code).toBe('RATE_LIMIT_EXCEEDED')
      // A refused attempt is not counted.
      expect(await hits()).toBe(counted)
    } finally {
      await configureTenant(app, { rateLimits: { signUpPerIp: { limit: 20 } } })
    }
  })

  it('limits reset requests and passwordless requests per address', async () => {
    await configureTenant(app, {
      passwordless: { enabled: 'always' },
      rateLimits: { passwordResetPerIp: { limit: 1, window: 'PT1H' }, passwordlessInitPerIp: { limit: 1, window: 'PT1H' } },
    })
    for (const mutation of ['createResetPasswordRequest', 'initSignInPasswordless']) {
      const request = () =>
        app.gql(`mutation ($email: String!) { ${mutation}(email: $email) { ok error { code retryAfter } } }`, {
          variables: { email: uniqueEmail() },
          token: app.loginToken,
        })
      await request()
      const blocked = (await request()).data[mutation]
      expect(blocked.error.code).toBe('RATE_LIMIT_EXCEEDED')
      expect(blocked.error.retryAfter).toBeGreaterThan(3500)
    }
    for (const type of ['password_reset_init', 'passwordless_login_init']) {
      const [newest] = (await readLog(app, { filter: { types: [type] }, limit: 1 })).entries
      expect(newest).toMatchObject({ success: false, errorCode: 'RATE_LIMIT_EXCEEDED', metadata: { reason: 'ip' } })
    }
  })
})
