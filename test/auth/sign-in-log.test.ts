import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type TestApp, startTestApp } from '../testkit/app.js'
import {
  type LogEntry,
  apiKeyIdOfToken,
  configureTenant,
  createGlobalApiKey,
  negligibleBackoff,
  readLog,
  signIn,
  signUpPerson,
  signedInPerson,
  sql,
  storedLogRows,
  strongPassword,
  uniqueEmail,
} from '../testkit/fixtures.js'

let app: TestApp
let loginKeyIdentityId: string

const SIGN_IN = `mutation ($email: String!, $password: String!) {
  signIn(email: $email, password: $password) { ok error { code developerMessage } result { token person { id } } }
}`

beforeAll(async () => {
  app = await startTestApp()
  loginKeyIdentityId = (await app.gql('{ me { id } }', { token: app.loginToken })).data.me.id
})

afterAll(() => app?.stop())

async function attemptSignIn(email: string, password: string) {
  const response = await app.gql(SIGN_IN, { variables: { email, password }, token: app.loginToken })
  return response.data.signIn as { ok: boolean; error: { code: string } | null; result: { token: string; person: { id: string } } | null }
}

/** The newest log entry, which the test just caused. */
async function newestEntry(): Promise<LogEntry> {
  const { entries } = await readLog(app, { limit: 1 })
  return entries[0]!
}

const sessionCount = async (identityId: string) =>
  Number((await sql<{ n: number }>(app, "SELECT count(*)::int AS n FROM api_key WHERE identity_id = $1 AND type = 'session'", [identityId]))[0]!.n)

describe('login entries', () => {
  it('records an unknown email with the real reason and the typed address, while the client sees INVALID_CREDENTIALS', async () => {
    const typed = `  Nobody-${Date.now()}@Example.TEST `
    const answer = await attemptSignIn(typed, 'whatever-password-1')
    expect(answer).toMatchObject({ ok: false, error: { code: 'INVALID_CREDENTIALS' }, result: null })
    expect(await newestEntry()).toMatchObject({
      type: 'login',
      success: false,
      errorCode: 'UNKNOWN_EMAIL',
      personInputIdentifier: typed,
      personId: null,
      targetPersonId: null,
      invokedByIdentityId: loginKeyIdentityId,
      metadata: {},
      eventData: {},
    })
  })

  it('records a wrong password as INVALID_PASSWORD with the person, and opens no session', async () => {
    const person = await signUpPerson(app)
    const answer = await attemptSignIn(person.email.toUpperCase(), `${person.password}-wrong`)
    expect(answer).toMatchObject({ ok: false, error: { code: 'INVALID_CREDENTIALS' } })
    expect(await newestEntry()).toMatchObject({
      type: 'login',
      success: false,
      errorCode: 'INVALID_PASSWORD',
      personInputIdentifier: person.email.toUpperCase(),
      personId: person.id,
    })
    expect(await sessionCount(person.identityId)).toBe(0)
  })

  it('records a person without a password as NO_PASSWORD_SET', async () => {
    const email = uniqueEmail()
    const created = await app.gql(`mutation ($email: String!) { signUp(email: $email) { ok result { person { id } } } }`, {
      variables: { email },
      token: app.loginToken,
    })
    const personId = created.data.signUp.result.person.id
    expect(await attemptSignIn(email, strongPassword())).toMatchObject({ ok: false, error: { code: 'INVALID_CREDENTIALS' } })
    expect(await newestEntry()).toMatchObject({ success: false, errorCode: 'NO_PASSWORD_SET', personId })
  })

  it('records a disabled person as PERSON_DISABLED, and answers the right and a wrong password alike', async () => {
    const person = await signUpPerson(app)
    await sql(app, 'UPDATE person SET disabled_at = now() WHERE id = $1', [person.id])
    await configureTenant(app, { login: negligibleBackoff })
    try {
      for (const password of [person.password, `${person.password}-wrong`]) {
        expect(await attemptSignIn(person.email, password)).toMatchObject({ ok: false, error: { code: 'INVALID_CREDENTIALS' } })
        expect(await newestEntry()).toMatchObject({ success: false, errorCode: 'PERSON_DISABLED', personId: person.id })
      }
      expect(await sessionCount(person.identityId)).toBe(0)
      await configureTenant(app, { login: { revealUserExists: true } })
      for (const password of [person.password, `${person.password}-wrong`]) {
        expect(await attemptSignIn(person.email, password)).toMatchObject({ ok: false, error: { code: 'PERSON_DISABLED' } })
      }
    } finally {
      await configureTenant(app, { login: { revealUserExists: false, baseBackoff: 'PT1S', maxBackoff: 'PT5M' } })
    }
  })

  it('tells the client the real reason when the configuration reveals it', async () => {
    await configureTenant(app, { login: { revealUserExists: true, revealLoginMethod: true } })
    try {
      const person = await signUpPerson(app)
      expect(await attemptSignIn(uniqueEmail('ghost'), 'x-password-1')).toMatchObject({ error: { code: 'UNKNOWN_EMAIL' } })
      expect(await attemptSignIn(person.email, 'not-the-password-1')).toMatchObject({ error: { code: 'INVALID_PASSWORD' } })
    } finally {
      await configureTenant(app, { login: { revealUserExists: false, revealLoginMethod: false } })
    }
  })

  it('records a success with the person and the new session id, and no error code', async () => {
    const person = await signUpPerson(app)
    const answer = await attemptSignIn(person.email, person.password)
    expect(answer.ok).toBe(true)
    expect(answer.result!.person.id).toBe(person.id)
    const sessionId = await apiKeyIdOfToken(app, answer.result!.token)
    expect(await newestEntry()).toMatchObject({
      type: 'login',
      success: true,
      errorCode: null,
      personId: person.id,
      personInputIdentifier: person.email,
      invokedByIdentityId: loginKeyIdentityId,
      metadata: { sessionId },
    })
    const [session] = await sql<{ type: string; identity_id: string }>(app, 'SELECT type::text AS type, identity_id FROM api_key WHERE id = $1', [sessionId])
    expect(session).toEqual({ type: 'session', identity_id: person.identityId })
  })

  it('keeps the failure entry of an attempt whose transaction rolled back, one entry per attempt', async () => {
    // A long backoff makes the second attempt's answer certain: refused by the backoff, and recorded too.
    await configureTenant(app, { login: { baseBackoff: 'PT1H', maxBackoff: 'PT1H' } })
    try {
      const person = await signUpPerson(app)
      const before = (await readLog(app, { filter: { personInputIdentifier: person.email } })).entries
      await attemptSignIn(person.email, 'wrong-1-password')
      await attemptSignIn(person.email, 'wrong-2-password')
      const after = (await readLog(app, { filter: { personInputIdentifier: person.email } })).entries
      expect(after.length - before.length).toBe(2)
      expect(after.slice(0, 2).map((entry) => [entry.success, entry.errorCode])).toEqual([
        [false, 'RATE_LIMIT_EXCEEDED'],
        [false, 'INVALID_PASSWORD'],
      ])
    } finally {
      await configureTenant(app, { login: { baseBackoff: 'PT1S', maxBackoff: 'PT5M' } })
    }
  })

  it('caps an idle lifetime longer than a session can hold (about 68 years) instead of failing', async () => {
    const person = await signUpPerson(app)
    const response = await app.gql(
      `mutation ($email: String!, $password: String!) { signIn(email: $email, password: $password, expiration: 2147483647) { ok result { token } } }`,
      { variables: { email: person.email, password: person.password }, token: app.loginToken },
    )
    expect(response.errors).toBeUndefined()
    expect(response.data.signIn.ok).toBe(true)
    const [session] = await sql<{ expiration: number }>(app, 'SELECT expiration FROM api_key WHERE id = $1', [await apiKeyIdOfToken(app, response.data.signIn.result.token)])
    expect(session?.expiration).toBe(Math.floor((2 ** 31 - 1) / 60) * 60)
    expect(await newestEntry()).toMatchObject({ type: 'login', success: true, personId: person.id })
  })

  it('records an attempt that ended in an unexpected error as failed (INTERNAL_ERROR), even past the password check', async () => {
    const person = await signUpPerson(app)
    // Opening the session fails, as a broken database would make it.
    await sql(app, `CREATE FUNCTION refuse_sessions() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no sessions today'; END $$`)
    await sql(app, 'CREATE TRIGGER refuse_sessions BEFORE INSERT ON api_key FOR EACH ROW EXECUTE FUNCTION refuse_sessions()')
    try {
      const response = await app.gql(SIGN_IN, { variables: { email: person.email, password: person.password }, token: app.loginToken })
      expect(response.errors).toEqual([expect.objectContaining({ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } })])
    } finally {
      await sql(app, 'DROP TRIGGER refuse_sessions ON api_key')
      await sql(app, 'DROP FUNCTION refuse_sessions()')
    }
    expect(await newestEntry()).toMatchObject({ type: 'login', success: false, errorCode: 'INTERNAL_ERROR', personId: person.id, personInputIdentifier: person.email })
    expect(await sessionCount(person.identityId)).toBe(0)
  })

  it('never stores a password or token in any log row', async () => {
    const person = await signUpPerson(app)
    const token = await signIn(app, person)
    await attemptSignIn(person.email, `${person.password}-nearly`)
    const rows = JSON.stringify(await storedLogRows(app))
    for (const secret of [person.password, `${person.password}-nearly`, token, app.rootToken, app.loginToken]) expect(rows).not.toContain(secret)
  })
})

describe('createSessionToken entries', () => {
  const CREATE_SESSION = `mutation ($email: String, $personId: String) {
    createSessionToken(email: $email, personId: $personId) { ok error { code } result { token person { id } } }
  }`

  it('records a minted session with its target person and session id', async () => {
    const person = await signUpPerson(app)
    const response = await app.gql(CREATE_SESSION, { variables: { email: person.email }, token: app.rootToken })
    const { result } = response.data.createSessionToken
    const me = await app.gql('{ me { id person { id } } }', { token: result.token })
    expect(me.data.me.person.id).toBe(person.id)
    const rootIdentityId = (await app.gql('{ me { id } }', { token: app.rootToken })).data.me.id
    expect(await newestEntry()).toMatchObject({
      type: 'create_session_token',
      success: true,
      invokedByIdentityId: rootIdentityId,
      targetPersonId: person.id,
      personInputIdentifier: person.email,
      metadata: { sessionId: await apiKeyIdOfToken(app, result.token) },
    })
  })

  it('records an unknown email and a malformed person id as failures', async () => {
    const ghost = uniqueEmail('ghost')
    const unknown = await app.gql(CREATE_SESSION, { variables: { email: ghost }, token: app.rootToken })
    expect(unknown.data.createSessionToken).toMatchObject({ ok: false, error: { code: 'UNKNOWN_EMAIL' } })
    expect(await newestEntry()).toMatchObject({ type: 'create_session_token', success: false, errorCode: 'UNKNOWN_EMAIL', personInputIdentifier: ghost })
    const malformed = await app.gql(CREATE_SESSION, { variables: { personId: 'not-a-uuid' }, token: app.rootToken })
    expect(malformed.data.createSessionToken).toMatchObject({ ok: false, error: { code: 'UNKNOWN_PERSON_ID' } })
    expect(await newestEntry()).toMatchObject({ success: false, errorCode: 'UNKNOWN_PERSON_ID', personInputIdentifier: 'not-a-uuid' })
  })

  it('refuses both email and personId, or neither, as bad input, recording nothing', async () => {
    const person = await signUpPerson(app)
    const other = await signUpPerson(app)
    const before = await storedLogRows(app)
    for (const [variables, argument] of [
      [{ email: other.email, personId: person.id }, 'personId'],
      [{}, 'email'],
    ] as const) {
      const response = await app.gql(CREATE_SESSION, { variables, token: app.rootToken })
      expect(response.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument })
      expect(response.data?.createSessionToken ?? null).toBeNull()
    }
    expect(await storedLogRows(app)).toEqual(before)
    expect(await sessionCount(person.identityId)).toBe(0)
  })

  it('caps an idle lifetime longer than a session can hold', async () => {
    const person = await signUpPerson(app)
    const response = await app.gql(
      `mutation ($email: String) { createSessionToken(email: $email, expiration: 99999999) { ok result { token } } }`,
      { variables: { email: person.email }, token: app.rootToken },
    )
    expect(response.data.createSessionToken.ok).toBe(true)
    expect(await newestEntry()).toMatchObject({ type: 'create_session_token', success: true, targetPersonId: person.id })
  })

  it('refuses the login key and records nothing', async () => {
    const person = await signUpPerson(app)
    const before = await storedLogRows(app)
    const response = await app.gql(CREATE_SESSION, { variables: { email: person.email }, token: app.loginToken })
    expect(response.errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
    expect(response.data?.createSessionToken ?? null).toBeNull()
    expect(await storedLogRows(app)).toEqual(before)
    expect(await sessionCount(person.identityId)).toBe(0)
  })
})

describe('signOut', () => {
  const SIGN_OUT = 'mutation ($all: Boolean) { signOut(all: $all) { ok error { code } } }'

  it('ends the session it is called with', async () => {
    const person = await signUpPerson(app)
    const first = await signIn(app, person)
    const second = await signIn(app, person)
    expect((await app.gql(SIGN_OUT, { token: first })).data.signOut.ok).toBe(true)
    expect((await app.gql('{ me { id } }', { token: first })).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
    expect((await app.gql('{ me { id } }', { token: second })).data.me.id).toBe(person.identityId)
  })

  it('ends every session with all: true', async () => {
    const person = await signUpPerson(app)
    const tokens = [await signIn(app, person), await signIn(app, person)]
    expect((await app.gql(SIGN_OUT, { variables: { all: true }, token: tokens[0] })).data.signOut.ok).toBe(true)
    for (const token of tokens) expect((await app.gql('{ me { id } }', { token })).status).toBe(401)
  })

  it('refuses a key that belongs to no person, and one without person:self', async () => {
    const key = await createGlobalApiKey(app, ['person'])
    expect((await app.gql(SIGN_OUT, { token: key.token })).data.signOut).toEqual({ ok: false, error: { code: 'NOT_A_PERSON' } })
    expect((await app.gql('{ me { id } }', { token: key.token })).data.me.id).toBe(key.identityId)
    expect((await app.gql(SIGN_OUT, { token: app.loginToken })).errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
  })
})

describe('sign-up, sign-out and name changes', () => {
  const signUp = (email: string, password: string) =>
    app.gql('mutation ($email: String!, $password: String) { signUp(email: $email, password: $password) { ok error { code } result { person { id } } } }', {
      variables: { email, password },
      token: app.loginToken,
    })
  const entriesOf = async (filter: Record<string, unknown>) => (await readLog(app, { filter })).entries

  it('records a sign-up (sign_up) with the new person, and a refused one with its reason', async () => {
    const email = uniqueEmail('Joined')
    const joined = await signUp(email, strongPassword())
    const personId = joined.data.signUp.result.person.id
    expect(await entriesOf({ types: ['sign_up'], personInputIdentifier: email })).toMatchObject([{ success: true, personId, errorCode: null }])
    expect((await signUp(email.toLowerCase(), strongPassword())).data.signUp.error.code).toBe('EMAIL_ALREADY_EXISTS')
    expect((await signUp('not-an-email', strongPassword())).data.signUp.error.code).toBe('INVALID_EMAIL_FORMAT')
    const weak = uniqueEmail('weak')
    expect((await signUp(weak, 'short')).data.signUp.error.code).toBe('TOO_WEAK')
    expect(await entriesOf({ types: ['sign_up'], personInputIdentifier: email.toLowerCase() })).toMatchObject([{ success: false, errorCode: 'EMAIL_ALREADY_EXISTS', personId: null }])
    expect(await entriesOf({ types: ['sign_up'], personInputIdentifier: 'not-an-email' })).toMatchObject([{ success: false, errorCode: 'INVALID_EMAIL_FORMAT' }])
    expect(await entriesOf({ types: ['sign_up'], personInputIdentifier: weak })).toMatchObject([{ success: false, errorCode: 'TOO_WEAK' }])
    // No password, hash or anything of it reaches the entry.
    const [entry] = await entriesOf({ types: ['sign_up'], personInputIdentifier: weak })
    expect(JSON.stringify(entry)).not.toContain('short')
  })

  it('records a sign-out (logout) with the session it ended, or every session', async () => {
    const person = await signedInPerson(app)
    const [sessionRow] = await sql<{ id: string }>(app, "SELECT id FROM api_key WHERE type = 'session' AND identity_id = $1 AND disabled_at IS NULL", [person.identityId])
    expect((await app.gql('mutation { signOut { ok } }', { token: person.token })).data.signOut.ok).toBe(true)
    const again = await signIn(app, person)
    expect((await app.gql('mutation { signOut(all: true) { ok } }', { token: again })).data.signOut.ok).toBe(true)
    const entries = await entriesOf({ types: ['logout'], personId: person.id })
    expect(entries.map((entry) => [entry.metadata, entry.eventData])).toEqual([
      [{ sessionId: expect.any(String) }, { all: true }],
      [{ sessionId: sessionRow!.id }, { all: false }],
    ])
  })

  it('records a name change (name_change) with the name before and after, by the person or an admin', async () => {
    const person = await signedInPerson(app, { name: 'Ada' })
    const rename = (document: string, token: string, variables: Record<string, unknown>) => app.gql(document, { variables, token })
    await rename('mutation ($name: String) { changeMyProfile(name: $name) { ok } }', person.token, { name: 'Ada L.' })
    await rename('mutation ($id: String!, $name: String) { changeProfile(personId: $id, name: $name) { ok } }', app.rootToken, { id: person.id, name: 'Ada Lovelace' })
    // The same name again is no change.
    await rename('mutation ($name: String) { changeMyProfile(name: $name) { ok } }', person.token, { name: 'Ada Lovelace' })
    const entries = await readLog(app, { filter: { types: ['name_change'] } })
    const mine = entries.entries.filter((entry) => entry.personId === person.id || entry.targetPersonId === person.id)
    expect(mine.map((entry) => [entry.targetPersonId, entry.eventData])).toEqual([
      [person.id, { before: { name: 'Ada L.' }, after: { name: 'Ada Lovelace' } }],
      [null, { before: { name: 'Ada' }, after: { name: 'Ada L.' } }],
    ])
  })
})
