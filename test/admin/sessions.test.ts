import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestApp, type TestApp } from '../testkit/app.js'
import { outbox, personWithRoles, signIn, signedInPerson, sql } from '../testkit/fixtures.js'
import { entriesSince, expectNoEffect, expectSingleEntry, logSize } from '../testkit/expectations.js'

let app: TestApp
beforeAll(async () => {
  app = await startTestApp()
})
afterAll(() => app?.stop())

const ME_SESSIONS = '{ me { id sessions { id isCurrent createdAt trustForwardedClientInfo } } }'

async function sessionsOf(token: string) {
  const response = await app.gql(ME_SESSIONS, { token })
  return response.data.me.sessions as { id: string; isCurrent: boolean }[]
}

const revoke = (sessionId: string, token: string) =>
  app.gql('mutation ($id: String!) { revokeSession(sessionId: $id) { ok error { code } } }', { variables: { id: sessionId }, token })

describe('revokeSession', () => {
  it('lets a person end one of their own sessions and records session_revoked_by_user', async () => {
    const person = await signedInPerson(app)
    const second = await signIn(app, person)
    const sessions = await sessionsOf(person.token)
    expect(sessions).toHaveLength(2)
    const other = sessions.find((session) => !session.isCurrent)!
    const mark = await logSize(app)

    expect((await revoke(other.id, person.token)).data.revokeSession).toEqual({ ok: true, error: null })

    expect((await app.gql('{ me { id } }', { token: second })).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
    expect((await sessionsOf(person.token)).map((session) => session.id)).not.toContain(other.id)
    await expectSingleEntry(app, mark, {
      type: 'session_revoked_by_user',
      success: true,
      invokedByIdentityId: person.identityId,
      personId: person.id,
      targetPersonId: null,
      metadata: { sessionId: other.id },
      eventData: {},
    })
  })

  it("reports someone else's session as not found to a person, changing and recording nothing", async () => {
    const owner = await signedInPerson(app)
    const stranger = await signedInPerson(app)
    const [session] = await sessionsOf(owner.token)
    await expectNoEffect(app, async () => {
      expect((await revoke(session!.id, stranger.token)).data.revokeSession.error.code).toBe('SESSION_NOT_FOUND')
      expect((await revoke('not-a-uuid', stranger.token)).data.revokeSession.error.code).toBe('SESSION_NOT_FOUND')
    })
  })

  it("lets a super admin end anyone's session, naming its owner as target", async () => {
    const owner = await signedInPerson(app)
    const admin = await personWithRoles(app, ['super_admin'])
    const [session] = await sessionsOf(owner.token)
    const mark = await logSize(app)
    expect((await revoke(session!.id, admin.token)).data.revokeSession.ok).toBe(true)
    const [entry] = await entriesSince(app, mark)
    expect(entry).toMatchObject({ invokedByIdentityId: admin.identityId, personId: admin.id, targetPersonId: owner.id, metadata: { sessionId: session!.id } })
  })
})

describe('forceSignOutPerson', () => {
  it('ends every session, mails the person, and records the reason', async () => {
    const person = await signedInPerson(app)
    const second = await signIn(app, person)
    const mark = await logSize(app)
    const response = await app.gql(
      'mutation ($id: String!) { forceSignOutPerson(personId: $id, reason: "laptop stolen") { ok error { code } } }',
      { variables: { id: person.id }, token: app.rootToken },
    )
    expect(response.data.forceSignOutPerson).toEqual({ ok: true, error: null })
    for (const token of [person.token, second]) {
      expect((await app.gql('{ me { id } }', { token })).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
    }
    await expectSingleEntry(app, mark, {
      type: 'forced_sign_out',
      personId: null,
      targetPersonId: person.id,
      metadata: { reason: 'laptop stolen' },
      eventData: {},
    })
    const [mail] = await outbox(app)
    expect(mail).toMatchObject({ recipient: person.email, subject: 'You have been signed out' })
    expect(mail!.body).toContain('laptop stolen')
  })

  it('answers PERSON_NOT_FOUND for an unknown or malformed id, recording nothing', async () => {
    const mark = await logSize(app)
    for (const id of ['00000000-0000-4000-8000-000000000000', 'nope']) {
      const response = await app.gql('mutation ($id: String!) { forceSignOutPerson(personId: $id) { ok error { code } } }', {
        variables: { id },
        token: app.rootToken,
      })
      expect(response.data.forceSignOutPerson.error.code).toBe('PERSON_NOT_FOUND')
    }
    expect(await logSize(app)).toBe(mark)
  })
})

describe('disablePerson', () => {
  const disable = (id: string) =>
    app.gql('mutation ($id: String!) { disablePerson(personId: $id) { ok error { code } } }', { variables: { id }, token: app.rootToken })

  it('stops the sessions at once, refuses sign-in, and records person_disabled', async () => {
    const person = await signedInPerson(app)
    const mark = await logSize(app)
    expect((await disable(person.id)).data.disablePerson).toEqual({ ok: true, error: null })
    expect((await app.gql('{ me { id } }', { token: person.token })).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
    await expect(signIn(app, person)).rejects.toThrow(/signIn failed/)
    const entries = await entriesSince(app, mark)
    expect(entries[0]).toMatchObject({ type: 'person_disabled', targetPersonId: person.id, eventData: {}, metadata: {} })
    // The refused sign-in is the only other entry.
    expect(entries.map((entry) => entry.type)).toEqual(['person_disabled', 'login'])
    const [row] = await sql<{ open: number }>(app, 'SELECT count(*)::int AS open FROM api_key WHERE identity_id = $1 AND disabled_at IS NULL', [
      person.identityId,
    ])
    expect(row!.open).toBe(0)
  })

  it('answers PERSON_ALREADY_DISABLED the second time and PERSON_NOT_FOUND for nobody, recording nothing', async () => {
    const person = await signedInPerson(app)
    await disable(person.id)
    const mark = await logSize(app)
    expect((await disable(person.id)).data.disablePerson.error.code).toBe('PERSON_ALREADY_DISABLED')
    expect((await disable('00000000-0000-4000-8000-000000000000')).data.disablePerson.error.code).toBe('PERSON_NOT_FOUND')
    expect(await logSize(app)).toBe(mark)
  })
})

describe('sliding expiration', () => {
  it('extends a session in use before it lapses, also a short one (at most a tenth of its lifetime behind)', async () => {
    const person = await signedInPerson(app)
    const signedIn = await app.gql('mutation ($e: String!, $p: String!) { signIn(email: $e, password: $p, expiration: 1) { ok result { token } } }', {
      variables: { e: person.email, p: person.password },
      token: app.loginToken,
    })
    const token = signedIn.data.signIn.result.token as string
    const { id } = (await sessionsOf(token)).find((session) => session.isCurrent)!
    // Used 10 s ago, 5 s before it lapses: a one-minute session is extended after 6 s of use.
    await sql(app, `UPDATE api_key SET last_used_at = now() - interval '10 seconds', expires_at = now() + interval '5 seconds' WHERE id = $1`, [id])
    expect((await app.gql('{ me { id } }', { token })).data.me.id).toBe(person.identityId)
    const [key] = await sql<{ remaining: number }>(app, 'SELECT extract(epoch FROM expires_at - now())::float AS remaining FROM api_key WHERE id = $1', [id])
    expect(key!.remaining).toBeGreaterThan(50)
  })
})
