import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { auditCatalog, auditEventTypes } from '../../src/audit/catalog.js'
import { EVENT_TYPES_END, EVENT_TYPES_START, eventTypesMarkdown } from '../../src/audit/catalogDocs.js'
import { redactEventData, redactMetadata } from '../../src/audit/redaction.js'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { createGlobalApiKey, grantRoles, signedInPerson, sql, storedLogRows } from '../testkit/fixtures.js'

let app: TestApp

beforeAll(async () => {
  app = await startTestApp()
})

afterAll(() => app?.stop())

/** The event types the database's CHECK constraint on person_auth_log.type allows. */
async function checkedTypes(): Promise<string[]> {
  const rows = await sql<{ definition: string }>(
    app,
    `SELECT pg_get_constraintdef(oid) AS definition FROM pg_constraint
      WHERE conrelid = 'person_auth_log'::regclass AND contype = 'c' AND conname = 'person_auth_log_type_check'`,
  )
  expect(rows).toHaveLength(1)
  return [...rows[0]!.definition.matchAll(/'([^']+)'/g)].map((match) => match[1]!).sort()
}

describe('the event catalog', () => {
  it('lists exactly the types the database accepts', async () => {
    expect(await checkedTypes()).toEqual([...auditEventTypes].sort())
  })

  it('holds every type the issue names', () => {
    const named =
      'login create_session_token idp_login passwordless_login_init passwordless_login_exchange passwordless_login password_reset_init password_reset password_change email_change 2fa_enable 2fa_disable session_revoked_by_user forced_sign_out person_disabled global_role_grant global_role_revoke project_membership_create project_membership_update project_membership_remove api_key_create api_key_disable idp_create idp_update idp_disable idp_enable project_create project_update project_secret_change mail_template_change tenant_config_change person_invite'
    expect(auditEventTypes).toEqual(expect.arrayContaining(named.split(' ')))
  })

  it('is refused by the database for an unknown type', async () => {
    await expect(sql(app, "INSERT INTO person_auth_log (id, type, success) VALUES (gen_random_uuid(), 'teleport', true)")).rejects.toThrow(
      /person_auth_log_type_check/,
    )
    // Every catalog type is accepted (inside a transaction that is rolled back).
    await app.app.services.db.session(async (session) => {
      await session.query('BEGIN')
      try {
        for (const type of auditEventTypes) await session.query('INSERT INTO person_auth_log (id, type, success) VALUES (gen_random_uuid(), $1, true)', [type])
      } finally {
        await session.query('ROLLBACK')
      }
    })
  })

  it('drops event_data and metadata keys it does not declare, and masks secrets', () => {
    expect(
      redactEventData('api_key_create', { apiKeyId: 'k', identityId: 'i', description: 'd', roles: [], token: 'secret-token', tokenHash: 'abc' }),
    ).toEqual({ apiKeyId: 'k', identityId: 'i', description: 'd', roles: [] })
    expect(redactEventData('login', { password: 'hunter2' })).toEqual({})
    const captcha = { provider: 'x', secret: 'captcha-secret' }
    expect(redactEventData('tenant_config_change', { input: { captcha }, before: { captcha }, after: { captcha } })).toEqual({
      input: { captcha: { provider: 'x', secret: '***' } },
      before: { captcha: { provider: 'x', secret: '***' } },
      after: { captcha: { provider: 'x', secret: '***' } },
    })
    expect(redactMetadata({ sessionId: 's', token: 't', password: 'p' })).toEqual({ sessionId: 's' })
  })

  it('gives every type a category and a description', () => {
    for (const [type, event] of Object.entries(auditCatalog)) {
      expect(['authentication', 'administrative'], type).toContain(event.category)
      expect(event.description.length, type).toBeGreaterThan(10)
    }
  })

  it('is the table in the README (npm run docs:event-types rewrites it)', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
    const start = readme.indexOf(EVENT_TYPES_START)
    const end = readme.indexOf(EVENT_TYPES_END)
    expect(start).toBeGreaterThan(0)
    expect(readme.slice(start + EVENT_TYPES_START.length, end).trim()).toBe(eventTypesMarkdown())
  })
})

describe('person_auth_log stands alone', () => {
  it('has no foreign key, in either direction', async () => {
    const keys = await sql(
      app,
      `SELECT conname FROM pg_constraint
        WHERE contype = 'f' AND (conrelid = 'person_auth_log'::regclass OR confrelid = 'person_auth_log'::regclass)`,
    )
    expect(keys).toEqual([])
  })

  it('keeps every row unchanged when the persons, identities and keys it names are deleted', async () => {
    const person = await signedInPerson(app)
    await grantRoles(app, person.identityId, ['project_admin'])
    const key = await createGlobalApiKey(app, ['login'])
    await app.gql(`mutation ($id: String!) { disableApiKey(id: $id) { ok } }`, { variables: { id: key.id }, token: app.rootToken })
    const before = await storedLogRows(app)
    const naming = before.filter(
      (row) => row.person_id === person.id || row.target_person_id === person.id || JSON.stringify(row.event_data).includes(key.id),
    )
    expect(naming.length).toBeGreaterThanOrEqual(3)

    for (const identityId of [person.identityId, key.identityId]) {
      await sql(app, 'DELETE FROM api_key WHERE identity_id = $1', [identityId])
      await sql(app, 'DELETE FROM person WHERE identity_id = $1', [identityId])
      await sql(app, 'DELETE FROM identity WHERE id = $1', [identityId])
    }
    expect(await sql(app, 'SELECT id FROM person WHERE id = $1', [person.id])).toEqual([])
    expect(await storedLogRows(app)).toEqual(before)
  })
})
