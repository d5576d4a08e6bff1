import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashToken } from '../../src/tenant/apiKeys/tokens.js'
import { startTestApp, type TestApp } from '../testkit/app.js'
import { addProjectMember, createProject, outbox, signIn, signUpPerson, sql, strongPassword } from '../testkit/fixtures.js'
import { entriesSince, expectNoEffect, expectSingleEntry, logSize } from '../testkit/expectations.js'

let app: TestApp
beforeAll(async () => {
  app = await startTestApp()
  await createProject(app, { slug: 'team', name: 'Team' })
})
afterAll(() => app?.stop())

const INVITE = `mutation ($email: String!, $name: String, $slug: String!, $memberships: [MembershipInput!]!, $options: InviteOptions) {
  invite(email: $email, name: $name, projectSlug: $slug, memberships: $memberships, options: $options) {
    ok error { code developerMessage } result { isNew person { id email name identity { id } } }
  }
}`
const UNMANAGED = `mutation ($email: String!, $slug: String!, $memberships: [MembershipInput!]!, $options: UnmanagedInviteOptions, $password: String) {
  unmanagedInvite(email: $email, projectSlug: $slug, memberships: $memberships, options: $options, password: $password) {
    ok error { code } result { isNew person { id } }
  }
}`
const member = [{ role: 'editor', variables: [] }]

/** The invited person sets a first password with the token (the password reset flow) and signs in with it. */
async function setFirstPassword(email: string, token: string) {
  const password = strongPassword()
  const reset = await app.gql('mutation ($token: String!, $password: String!) { resetPassword(token: $token, password: $password) { ok error { code } } }', {
    variables: { token, password },
    token: app.loginToken,
  })
  expect(reset.data.resetPassword).toEqual({ ok: true, error: null })
  expect(await signIn(app, { email, password })).toEqual(expect.any(String))
}

describe('invite', () => {
  it('creates a new person, mails a token to set the password, and records person_invite', async () => {
    const mark = await logSize(app)
    const response = await app.gql(INVITE, {
      variables: { email: 'New.Person@Example.test', name: 'New', slug: 'team', memberships: member, options: { method: 'RESET_PASSWORD' } },
      token: app.rootToken,
    })
    const { isNew, person } = response.data.invite.result
    expect(isNew).toBe(true)
    expect(person).toMatchObject({ email: 'new.person@example.test', name: 'New' })
    const [mail] = await outbox(app)
    expect(mail).toMatchObject({ recipient: 'new.person@example.test', subject: 'You have been invited to Team' })
    const token = /token: (\S+)/.exec(mail!.body)?.[1]

    const entry = await expectSingleEntry(app, mark, {
      type: 'person_invite',
      personId: null,
      targetPersonId: person.id,
      eventData: { projectSlug: 'team', email: 'new.person@example.test', isNew: true, memberships: member },
    })
    expect(JSON.stringify(entry)).not.toContain(token)
    expect(app.logOutput()).not.toContain(token)
    await setFirstPassword(person.email, token!)
  })

  it('adds an existing person and mails EXISTING_USER_INVITED, with no token', async () => {
    const existing = await signUpPerson(app)
    const response = await app.gql(INVITE, { variables: { email: existing.email, slug: 'team', memberships: member }, token: app.rootToken })
    expect(response.data.invite.result).toMatchObject({ isNew: false, person: { id: existing.id } })
    const [mail] = await outbox(app)
    expect(mail).toMatchObject({ recipient: existing.email, subject: 'You have been added to Team' })
    expect(await sql(app, 'SELECT id FROM person_token WHERE person_id = $1', [existing.id])).toEqual([])
  })

  it('refuses an existing member, an unknown project, bad memberships and a bad email without any effect', async () => {
    const existing = await signUpPerson(app)
    await addProjectMember(app, 'team', existing.identityId, member)
    await expectNoEffect(app, async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ email: existing.email, slug: 'team', memberships: member }, 'ALREADY_MEMBER'],
        [{ email: 'x@example.test', slug: 'nope', memberships: member }, 'PROJECT_NOT_FOUND'],
        [{ email: 'x@example.test', slug: 'team', memberships: [] }, 'INVALID_MEMBERSHIP'],
        [{ email: 'not an email', slug: 'team', memberships: member }, 'INVALID_EMAIL_FORMAT'],
        // Past 254 characters no mail can be delivered (and a long enough one outgrew the email index: an internal error).
        [{ email: `${'a'.repeat(242)}@example.test`, slug: 'team', memberships: member }, 'INVALID_EMAIL_FORMAT'],
      ]
      for (const [variables, code] of cases) {
        expect((await app.gql(INVITE, { variables, token: app.rootToken })).data.invite.error.code).toBe(code)
      }
    })
  })
})

describe('unmanagedInvite', () => {
  it('sets the given password, sends no mail, and never records the password', async () => {
    const password = 'Unmanaged-Secret-Pw-42'
    const mails = (await outbox(app)).length
    const mark = await logSize(app)
    const response = await app.gql(UNMANAGED, {
      variables: { email: 'managed@example.test', slug: 'team', memberships: member, options: { password } },
      token: app.rootToken,
    })
    expect(response.data.unmanagedInvite.result.isNew).toBe(true)
    expect((await outbox(app)).length).toBe(mails)
    await signIn(app, { email: 'managed@example.test', password })
    const entries = await entriesSince(app, mark)
    expect(entries[0]).toMatchObject({
      type: 'person_invite',
      eventData: { projectSlug: 'team', email: 'managed@example.test', isNew: true, memberships: member },
    })
    expect(JSON.stringify(entries)).not.toContain(password)
    expect(app.logOutput()).not.toContain(password)
  })

  it('holds the password policy: a weak password, in options or the deprecated argument, is refused without any effect', async () => {
    await expectNoEffect(app, async () => {
      for (const variables of [{ options: { password: 'x' } }, { password: 'x' }]) {
        const weak = await app.gql(UNMANAGED, { variables: { email: 'weak@example.test', slug: 'team', memberships: member, ...variables }, token: app.rootToken })
        expect(weak.data?.unmanagedInvite ?? null).toBeNull()
        expect(weak.errors).toEqual([
          expect.objectContaining({
            message: expect.stringMatching(/^The password is too weak: TOO_SHORT/),
            extensions: expect.objectContaining({ code: 'BAD_USER_INPUT', argument: 'options.password' }),
          }),
        ])
      }
    })
    expect(await sql(app, "SELECT id FROM person WHERE email = 'weak@example.test'")).toEqual([])
  })

  it('refuses a password given both in options and as the deprecated argument, without any effect', async () => {
    await expectNoEffect(app, async () => {
      const both = await app.gql(UNMANAGED, {
        variables: { email: 'twice@example.test', slug: 'team', memberships: member, password: strongPassword(), options: { password: strongPassword() } },
        token: app.rootToken,
      })
      expect(both.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'password' })
    })
  })

  it('stores a caller-computed reset token hash, and refuses a malformed one without any effect', async () => {
    const hash = hashToken('caller-made-reset-token')
    const response = await app.gql(UNMANAGED, {
      variables: { email: 'hashed@example.test', slug: 'team', memberships: member, options: { resetTokenHash: hash } },
      token: app.rootToken,
    })
    expect(response.data.unmanagedInvite.result.isNew).toBe(true)
    await setFirstPassword('hashed@example.test', 'caller-made-reset-token')
    await expectNoEffect(app, async () => {
      const malformed = await app.gql(UNMANAGED, {
        variables: { email: 'other@example.test', slug: 'team', memberships: member, options: { resetTokenHash: 'nope' } },
        token: app.rootToken,
      })
      expect(malformed.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT')
    })
  })
})
