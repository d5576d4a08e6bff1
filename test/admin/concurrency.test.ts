import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestApp, type TestApp } from '../testkit/app.js'
import { onPostgres } from '../testkit/database.js'
import { createGlobalApiKey, createProject, signIn, signUpPerson, sql } from '../testkit/fixtures.js'
import { entriesSince, logSize } from '../testkit/expectations.js'

/** Racing administrators: one wins, the others get the operation's own error, and the trail stays exact. */

let app: TestApp
beforeAll(async () => {
  app = await startTestApp()
})
afterAll(() => app?.stop())

const RACERS = 6

/** The `ok`/error code of each of `RACERS` simultaneous calls (the document may depend on the index). */
async function race(document: string | ((index: number) => string), variables: (index: number) => Record<string, unknown>) {
  const responses = await Promise.all(
    Array.from({ length: RACERS }, (_, index) =>
      app.gql(typeof document === 'string' ? document : document(index), { variables: variables(index), token: app.rootToken }),
    ),
  )
  return responses.map((response) => {
    expect(response.errors, JSON.stringify(response.errors)).toBeUndefined()
    const payload = Object.values(response.data)[0] as { ok: boolean; error: { code: string } | null }
    return payload.ok ? 'ok' : payload.error!.code
  })
}

describe.runIf(onPostgres)('concurrent administration', () => {
  it('creates a contested project slug once', async () => {
    const mark = await logSize(app)
    const outcomes = await race('mutation { createProject(projectSlug: "contested", options: { noDeployToken: true }) { ok error { code } } }', () => ({}))
    expect(outcomes.sort()).toEqual(['ALREADY_EXISTS', 'ALREADY_EXISTS', 'ALREADY_EXISTS', 'ALREADY_EXISTS', 'ALREADY_EXISTS', 'ok'])
    expect((await entriesSince(app, mark)).map((entry) => entry.type)).toEqual(['project_create'])
  })

  it('adds a contested member once, and concurrent updates each record the state they replaced', async () => {
    await createProject(app, { slug: 'raced' })
    const person = await signUpPerson(app)
    const mark = await logSize(app)
    const add = await race(
      'mutation ($id: String!, $role: String!) { addProjectMember(projectSlug: "raced", identityId: $id, memberships: [{ role: $role, variables: [] }]) { ok error { code } } }',
      (index) => ({ id: person.identityId, role: `role${index}` }),
    )
    expect(add.filter((outcome) => outcome === 'ok')).toHaveLength(1)
    expect(add.filter((outcome) => outcome === 'ALREADY_MEMBER')).toHaveLength(RACERS - 1)
    const update = await race(
      'mutation ($id: String!, $role: String!) { updateProjectMember(projectSlug: "raced", identityId: $id, memberships: [{ role: $role, variables: [] }]) { ok error { code } } }',
      (index) => ({ id: person.identityId, role: `next${index}` }),
    )
    expect(update).toEqual(Array(RACERS).fill('ok'))
    const entries = await entriesSince(app, mark)
    // Each update's `before` is the previous entry's `after`: no change was lost from the trail.
    for (let index = 1; index < entries.length; index++) {
      expect(entries[index]!.eventData!.before).toEqual(entries[index - 1]!.eventData!.after)
    }
    const rows = await sql<{ role: string }>(app, "SELECT role FROM project_membership m JOIN project p ON p.id = m.project_id WHERE p.slug = 'raced'")
    const last = entries.at(-1)!.eventData!.after as { role: string }[]
    expect(rows.map((row) => row.role)).toEqual(last.map((membership) => membership.role))
  })

  it('keeps one global mail template per type and variant under concurrent adds', async () => {
    const outcomes = await race(
      'mutation ($subject: String!) { addMailTemplate(template: { type: EMAIL_OTP, subject: $subject, content: "{{code}}" }) { ok error { code } } }',
      (index) => ({ subject: `subject ${index}` }),
    )
    expect(outcomes).toEqual(Array(RACERS).fill('ok'))
    const [row] = await sql<{ count: number }>(app, "SELECT count(*)::int AS count FROM mail_template WHERE mail_type = 'EMAIL_OTP' AND project_id IS NULL")
    expect(row!.count).toBe(1)
  })

  it('invites a new email once when invitations race', async () => {
    const outcomes = await race(
      'mutation { invite(email: "raced@example.test", projectSlug: "raced", memberships: [{ role: "editor", variables: [] }]) { ok error { code } } }',
      () => ({}),
    )
    expect(outcomes.sort()).toEqual([...Array(RACERS - 1).fill('ALREADY_MEMBER'), 'ok'])
    const [row] = await sql<{ count: number }>(app, "SELECT count(*)::int AS count FROM person WHERE email = 'raced@example.test'")
    expect(row!.count).toBe(1)
  })

  it('keeps every global role change when grants and revocations race: each entry records the roles the one before it left', async () => {
    const person = await signUpPerson(app)
    const mark = await logSize(app)
    // A revocation races grants: none may write back a list it read before another change.
    const changes = [
      'removeGlobalIdentityRoles(identityId: $id, roles: ["project_admin"])',
      'addGlobalIdentityRoles(identityId: $id, roles: ["project_creator"])',
      'addGlobalIdentityRoles(identityId: $id, roles: ["project_admin"])',
    ]
    const outcomes = await race((index) => `mutation ($id: String!) { ${changes[index % changes.length]} { ok error { code } } }`, () => ({ id: person.identityId }))
    expect(outcomes).toEqual(Array(RACERS).fill('ok'))
    const entries = await entriesSince(app, mark)
    for (let index = 1; index < entries.length; index++) {
      expect(entries[index]!.eventData!.before).toEqual(entries[index - 1]!.eventData!.after)
    }
    const [row] = await sql<{ roles: string[] }>(app, 'SELECT roles FROM identity WHERE id = $1', [person.identityId])
    expect(row!.roles).toEqual((entries.at(-1)!.eventData!.after as { roles: string[] }).roles)
  })

  it('merges concurrent project config changes without losing one, each entry recording the config it replaced', async () => {
    const project = await createProject(app, { config: {} })
    const mark = await logSize(app)
    const outcomes = await race(
      'mutation ($slug: String!, $config: Json) { updateProject(projectSlug: $slug, config: $config, mergeConfig: true) { ok error { code } } }',
      (index) => ({ slug: project.slug, config: { [`key${index}`]: index } }),
    )
    expect(outcomes).toEqual(Array(RACERS).fill('ok'))
    const [row] = await sql<{ config: Record<string, number> }>(app, 'SELECT config FROM project WHERE id = $1', [project.id])
    expect(row!.config).toEqual(Object.fromEntries(Array.from({ length: RACERS }, (_, index) => [`key${index}`, index])))
    const entries = await entriesSince(app, mark)
    expect(entries).toHaveLength(RACERS)
    for (let index = 1; index < entries.length; index++) {
      expect(entries[index]!.eventData!.before).toEqual(entries[index - 1]!.eventData!.after)
    }
  })

  it('signs a session out once when sign-outs with it race (one logout entry)', async () => {
    const token = await signIn(app, await signUpPerson(app))
    const mark = await logSize(app)
    const answers = await Promise.all(Array.from({ length: RACERS }, () => app.gql('mutation { signOut { ok } }', { token })))
    // The first ends the session; those that arrive after it find the token no longer valid, or the session already ended.
    expect(answers.filter((answer) => answer.data?.signOut?.ok).length).toBeGreaterThanOrEqual(1)
    expect((await entriesSince(app, mark)).map((entry) => entry.type)).toEqual(['logout'])
  })

  it('disables a person, an API key and a session once when the calls race, with one entry each', async () => {
    const person = await signUpPerson(app)
    const key = await createGlobalApiKey(app, ['person'])
    await signIn(app, person)
    const [sessionRow] = await sql<{ id: string }>(app, "SELECT id FROM api_key WHERE type = 'session' AND identity_id = $1", [person.identityId])
    const mark = await logSize(app)
    const once = (outcomes: string[], refusal: string) => expect(outcomes.sort()).toEqual([...Array(RACERS - 1).fill(refusal), 'ok'].sort())
    once(await race('mutation ($id: String!) { disableApiKey(id: $id) { ok error { code } } }', () => ({ id: key.id })), 'KEY_NOT_FOUND')
    once(await race('mutation ($id: String!) { revokeSession(sessionId: $id) { ok error { code } } }', () => ({ id: sessionRow!.id })), 'SESSION_NOT_FOUND')
    once(await race('mutation ($id: String!) { disablePerson(personId: $id) { ok error { code } } }', () => ({ id: person.id })), 'PERSON_ALREADY_DISABLED')
    expect((await entriesSince(app, mark)).map((entry) => entry.type)).toEqual(['api_key_disable', 'session_revoked_by_user', 'person_disabled'])
  })
})
