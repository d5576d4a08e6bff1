import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { configureTenant, outbox, readLog, signIn, signedInPerson, strongPassword, uniqueEmail } from '../testkit/fixtures.js'

let app: TestApp

beforeAll(async () => {
  app = await startTestApp()
})
afterAll(async () => {
  await app.stop()
})

const changeMyPassword = (token: string, currentPassword: string, newPassword: string) =>
  app.gql(
    `mutation ($currentPassword: String!, $newPassword: String!) {
      changeMyPassword(currentPassword: $currentPassword, newPassword: $newPassword) { ok error { code weakPasswordReasons retryAfter } }
    }`,
    { variables: { currentPassword, newPassword }, token },
  )

const changePassword = (token: string, personId: string, password: string) =>
  app.gql(
    `mutation ($personId: String!, $password: String!) {
      changePassword(personId: $personId, password: $password) { ok error { code weakPasswordReasons } }
    }`,
    { variables: { personId, password }, token },
  )

const changeProfile = (token: string, variables: { personId?: string; email?: string; name?: string }) =>
  variables.personId
    ? app.gql(
        `mutation ($personId: String!, $email: String, $name: String) {
          changeProfile(personId: $personId, email: $email, name: $name) { ok error { code } }
        }`,
        { variables, token },
      )
    : app.gql(`mutation ($email: String, $name: String) { changeMyProfile(email: $email, name: $name) { ok error { code } } }`, {
        variables,
        token,
      })

const lastEntry = async (filter: Record<string, unknown>) => (await readLog(app, { filter, limit: 1 })).entries[0]

describe('changeMyPassword', () => {
  it('changes the password (password_change), keeps this session and ends the others', async () => {
    const person = await signedInPerson(app)
    const otherSession = await signIn(app, person)
    const newPassword = strongPassword()
    expect((await changeMyPassword(person.token, person.password, newPassword)).data.changeMyPassword).toEqual({ ok: true, error: null })
    expect(await lastEntry({ types: ['password_change'], personId: person.id })).toMatchObject({
      success: true,
      errorCode: null,
      invokedByIdentityId: person.identityId,
    })
    expect((await app.gql('{ me { id } }', { token: person.token })).data?.me.id).toBe(person.identityId)
    expect((await app.gql('{ me { id } }', { token: otherSession })).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
    await signIn(app, { email: person.email, password: newPassword })
  })

  it('refuses a weak new password (TOO_WEAK) and a wrong current one (INVALID_PASSWORD), recording both', async () => {
    const person = await signedInPerson(app)
    await configureTenant(app, { password: { requireDigit: 2 } })
    try {
      const weak = await changeMyPassword(person.token, person.password, 'onlyletters')
      expect(weak.data.changeMyPassword.error).toEqual({ code: 'TOO_WEAK', weakPasswordReasons: ['MISSING_DIGIT'], retryAfter: null })
      expect(await lastEntry({ types: ['password_change'], personId: person.id })).toMatchObject({ success: false, errorCode: 'TOO_WEAK' })
    } finally {
      await configureTenant(app, { password: { requireDigit: 0 } })
    }
    expect((await changeMyPassword(person.token, 'wrong-password', strongPassword())).data.changeMyPassword.error.code).toBe('INVALID_PASSWORD')
    expect(await lastEntry({ types: ['password_change'], personId: person.id })).toMatchObject({ success: false, errorCode: 'INVALID_PASSWORD' })
  })

  it('holds guesses of the current password back like sign-in guesses, and counts them towards the sign-in backoff', async () => {
    await configureTenant(app, { login: { baseBackoff: 'PT30S' } })
    try {
      const person = await signedInPerson(app)
      expect((await changeMyPassword(person.token, 'guess-1', strongPassword())).data.changeMyPassword.error.code).toBe('INVALID_PASSWORD')
      // The right password now waits, here and at sign-in.
      const held = (await changeMyPassword(person.token, person.password, strongPassword())).data.changeMyPassword.error
      expect(held.code).toBe('RATE_LIMIT_EXCEEDED')
      expect(held.retryAfter).toBeGreaterThan(25)
      expect(await lastEntry({ types: ['password_change'], personId: person.id })).toMatchObject({ success: false, errorCode: 'RATE_LIMIT_EXCEEDED', metadata: { reason: 'backoff' } })
      const signingIn = await app.gql('mutation ($e: String!, $p: String!) { signIn(email: $e, password: $p) { ok error { code } } }', {
        variables: { e: person.email, p: person.password },
        token: app.loginToken,
      })
      expect(signingIn.data.signIn.error.code).toBe('RATE_LIMIT_EXCEEDED')
      // Guesses at once take turns: one is checked.
      const other = await signedInPerson(app)
      const answers = await Promise.all(Array.from({ length: 6 }, (_, index) => changeMyPassword(other.token, `guess-${index}`, strongPassword())))
      expect(answers.map((answer) => answer.data.changeMyPassword.error.code).sort()).toEqual(['INVALID_PASSWORD', ...Array(5).fill('RATE_LIMIT_EXCEEDED')])
    } finally {
      await configureTenant(app, { login: { baseBackoff: 'PT1S' } })
    }
  })

  it('is refused to callers that are not persons (NOT_A_PERSON) and without privilege (FORBIDDEN)', async () => {
    const root = await changeMyPassword(app.rootToken, 'x', strongPassword())
    expect(root.data.changeMyPassword.error.code).toBe('NOT_A_PERSON')
    const login = await changeMyPassword(app.loginToken, 'x', strongPassword())
    expect(login.errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
  })
})

describe('changePassword (admin)', () => {
  it('sets the password of another person (password_change with target) and ends their sessions', async () => {
    const person = await signedInPerson(app)
    const password = strongPassword()
    expect((await changePassword(app.rootToken, person.id, password)).data.changePassword).toEqual({ ok: true, error: null })
    expect(await lastEntry({ types: ['password_change'], targetPersonId: person.id })).toMatchObject({ success: true, personId: null })
    expect((await app.gql('{ me { id } }', { token: person.token })).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
    await signIn(app, { email: person.email, password })
  })

  it('answers PERSON_NOT_FOUND and TOO_WEAK, and is forbidden to persons', async () => {
    const person = await signedInPerson(app)
    const missing = await changePassword(app.rootToken, '00000000-0000-4000-8000-000000000000', strongPassword())
    expect(missing.data.changePassword.error.code).toBe('PERSON_NOT_FOUND')
    expect(await lastEntry({ personInputIdentifier: '00000000-0000-4000-8000-000000000000' })).toMatchObject({
      type: 'password_change',
      success: false,
      errorCode: 'PERSON_NOT_FOUND',
    })
    expect((await changePassword(app.rootToken, person.id, 'x')).data.changePassword.error).toEqual({ code: 'TOO_WEAK', weakPasswordReasons: ['TOO_SHORT'] })
    const forbidden = await changePassword(person.token, person.id, strongPassword())
    expect(forbidden.errors?.[0]).toMatchObject({ message: 'You are not allowed to change the passwords of other persons.', extensions: { code: 'FORBIDDEN' } })
  })
})

describe('changeProfile / changeMyProfile', () => {
  it('records email_change with the address before and after; a name change alone records nothing', async () => {
    const person = await signedInPerson(app)
    const newEmail = uniqueEmail('Renamed')
    expect((await changeProfile(person.token, { email: newEmail, name: 'New Name' })).data.changeMyProfile).toEqual({ ok: true, error: null })
    const entry = await lastEntry({ types: ['email_change'], personId: person.id })
    expect(entry).toMatchObject({ success: true, targetPersonId: null })
    expect(entry!.eventData).toEqual({ before: { email: person.email }, after: { email: newEmail.toLowerCase() } })
    await signIn(app, { email: newEmail, password: person.password })

    const before = (await readLog(app, { filter: { types: ['email_change'] } })).entries.length
    expect((await changeProfile(person.token, { name: 'Only A Name' })).data.changeMyProfile.ok).toBe(true)
    expect((await changeProfile(person.token, { email: newEmail.toUpperCase() })).data.changeMyProfile.ok).toBe(true)
    expect((await readLog(app, { filter: { types: ['email_change'] } })).entries.length).toBe(before)
  })

  it('voids the reset and passwordless tokens mailed to the old address', async () => {
    const person = await signedInPerson(app)
    const requested = await app.gql('mutation ($email: String!) { createResetPasswordRequest(email: $email) { ok } }', { variables: { email: person.email }, token: app.loginToken })
    expect(requested.data.createResetPasswordRequest.ok).toBe(true)
    // Mail goes out after the request commits.
    const mailed = await vi.waitFor(async () => {
      const found = (await outbox(app)).find((mail) => mail.recipient === person.email)
      if (!found) throw new Error('no mail yet')
      return found
    })
    const field = (label: string) => new RegExp(`^${label}:\\s*(\\S+)`, 'm').exec(mailed.body)![1]!
    const check = () =>
      app.gql('query ($r: String!, $t: String!) { checkResetPasswordToken(requestId: $r, token: $t) }', { variables: { r: field('Request'), t: field('Reset token') }, token: app.loginToken })
    expect((await check()).data.checkResetPasswordToken).toBe('VALID')
    expect((await changeProfile(person.token, { email: uniqueEmail('moved') })).data.changeMyProfile.ok).toBe(true)
    expect((await check()).data.checkResetPasswordToken).toBe('TOKEN_USED')
  })

  it('mails the old address that the email changed (EMAIL_CHANGE_NOTIFY), whoever changed it', async () => {
    const person = await signedInPerson(app)
    const byThemselves = uniqueEmail('moved-self').toLowerCase()
    expect((await changeProfile(person.token, { email: byThemselves })).data.changeMyProfile.ok).toBe(true)
    const byAdmin = uniqueEmail('moved-admin').toLowerCase()
    const changed = await app.gql('mutation ($id: String!, $email: String) { changeProfile(personId: $id, email: $email) { ok } }', {
      variables: { id: person.id, email: byAdmin },
      token: app.rootToken,
    })
    expect(changed.data.changeProfile.ok).toBe(true)
    const notices = await vi.waitFor(async () => {
      const mails = (await outbox(app)).filter((mail) => mail.recipient === person.email || mail.recipient === byThemselves)
      if (mails.length < 2) throw new Error('no notices yet')
      return mails
    })
    expect(notices.map((mail) => [mail.recipient, mail.subject])).toEqual(
      expect.arrayContaining([
        [person.email, 'The email address of your account changed'],
        [byThemselves, 'The email address of your account changed'],
      ]),
    )
    expect(notices.find((mail) => mail.recipient === person.email)!.body).toContain(byThemselves)
    expect(notices.find((mail) => mail.recipient === byThemselves)!.body).toContain(byAdmin)
    // A change that is refused, or that is no change, tells nobody.
    expect((await changeProfile(person.token, { email: 'not-an-email' })).data.changeMyProfile.ok).toBe(false)
    expect((await changeProfile(person.token, { name: 'Only a name' })).data.changeMyProfile.ok).toBe(true)
    expect((await outbox(app)).filter((mail) => mail.recipient === byAdmin)).toEqual([])
  })

  it('refuses a taken or malformed email, recording the attempt', async () => {
    const person = await signedInPerson(app)
    const other = await signedInPerson(app)
    expect((await changeProfile(person.token, { email: other.email })).data.changeMyProfile.error.code).toBe('EMAIL_ALREADY_EXISTS')
    expect(await lastEntry({ types: ['email_change'], personId: person.id })).toMatchObject({
      success: false,
      errorCode: 'EMAIL_ALREADY_EXISTS',
      eventData: { before: { email: person.email }, after: { email: other.email } },
    })
    expect((await changeProfile(person.token, { email: 'not an email' })).data.changeMyProfile.error.code).toBe('INVALID_EMAIL_FORMAT')
    // Past 254 characters no mail can be delivered (and a long enough one outgrew the email index: an internal error).
    expect((await changeProfile(person.token, { email: `${'a'.repeat(242)}@example.test` })).data.changeMyProfile.error.code).toBe('INVALID_EMAIL_FORMAT')
    const longest = `${'b'.repeat(230)}-${uniqueEmail('').slice(1)}`
    expect(longest).toHaveLength(254)
    expect((await changeProfile(person.token, { email: longest })).data.changeMyProfile.ok).toBe(true)
  })

  it('lets an admin change another person (email_change with target); PERSON_NOT_FOUND otherwise', async () => {
    const person = await signedInPerson(app)
    const newEmail = uniqueEmail('by-admin')
    expect((await changeProfile(app.rootToken, { personId: person.id, email: newEmail })).data.changeProfile.ok).toBe(true)
    expect(await lastEntry({ types: ['email_change'], targetPersonId: person.id })).toMatchObject({
      success: true,
      eventData: { before: { email: person.email }, after: { email: newEmail } },
    })
    expect((await changeProfile(app.rootToken, { personId: 'nope', email: newEmail })).data.changeProfile.error.code).toBe('PERSON_NOT_FOUND')
    expect((await changeProfile(person.token, { personId: person.id, name: 'x' })).errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
  })
})
