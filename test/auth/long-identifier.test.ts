import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { sql } from '../testkit/fixtures.js'

/**
 * A sign-in whose typed email is very long is still an authentication attempt:
 * it must be answered and land in person_auth_log like any other. Random text
 * does not compress, so it is too long for a btree index entry as typed.
 */

let app: TestApp

beforeAll(async () => {
  app = await startTestApp()
})
afterAll(() => app?.stop())

it('records a sign-in attempt whose typed email is too long to index', async () => {
  const typed = `${randomBytes(4_000).toString('base64')}@example.test`
  const response = await app.gql(
    'mutation ($email: String!, $password: String!) { signIn(email: $email, password: $password) { ok error { code } } }',
    { variables: { email: typed, password: 'not-the-password' }, token: app.loginToken },
  )
  expect(response.errors).toBeUndefined()
  expect(response.data.signIn).toEqual({ ok: false, error: { code: 'INVALID_CREDENTIALS' } })
  const entries = await sql<{ error_code: string; person_input_identifier: string }>(
    app,
    `SELECT error_code, person_input_identifier FROM person_auth_log WHERE type = 'login' AND NOT success`,
  )
  expect(entries).toHaveLength(1)
  expect(entries[0]!.error_code).toBe('UNKNOWN_EMAIL')
  expect(typed.startsWith(entries[0]!.person_input_identifier)).toBe(true)
})

it('cuts a long typed email at 512 characters without splitting one', async () => {
  // The 512th character is an emoji: two UTF-16 units, one character.
  const typed = `${'a'.repeat(511)}😀${'b'.repeat(100)}@example.test`
  await app.gql('mutation ($email: String!, $password: String!) { signIn(email: $email, password: $password) { ok } }', {
    variables: { email: typed, password: 'not-the-password' },
    token: app.loginToken,
  })
  const [entry] = await sql<{ person_input_identifier: string }>(
    app,
    `SELECT person_input_identifier FROM person_auth_log WHERE type = 'login' AND person_input_identifier LIKE 'aaa%'`,
  )
  expect(entry!.person_input_identifier).toBe(`${'a'.repeat(511)}😀`)
  // authLog takes the stored identifier as a filter: 512 characters, 513 UTF-16 units.
  const found = await app.gql('query ($id: String!) { authLog(filter: { personInputIdentifier: $id }) { entries { personInputIdentifier } } }', {
    variables: { id: entry!.person_input_identifier },
    token: app.rootToken,
  })
  expect(found.errors).toBeUndefined()
  expect(found.data.authLog.entries).toEqual([{ personInputIdentifier: `${'a'.repeat(511)}😀` }])
})
