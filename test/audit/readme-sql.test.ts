import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { type TestPerson, createGlobalApiKey, grantRoles, signUpPerson, sql } from '../testkit/fixtures.js'

/** The SQL examples of the README's audit log section, run against a log with something in it. */
const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
const section = readme.slice(readme.indexOf('## The audit log for SQL users'), readme.indexOf('## Event types'))
const examples = [...section.matchAll(/```sql\n([\s\S]*?)```/g)].map((match) => match[1]!)
const PLACEHOLDER_ID = '00000000-0000-0000-0000-000000000000'

let app: TestApp
let person: TestPerson

beforeAll(async () => {
  app = await startTestApp()
  person = await signUpPerson(app)
  await grantRoles(app, person.identityId, ['super_admin'])
  await app.gql('mutation ($e: String!) { signIn(email: $e, password: "wrong-password-1") { ok } }', { variables: { e: person.email }, token: app.loginToken })
  const forwarding = await createGlobalApiKey(app, ['login'], { trustForwardedClientInfo: true })
  await app.gql('mutation ($e: String!, $p: String!) { signIn(email: $e, password: $p) { ok } }', {
    variables: { e: person.email, p: person.password },
    token: forwarding.token,
    headers: { 'x-contember-client-ip': '192.0.2.5' },
  })
})

afterAll(() => app?.stop())

/** The first cells (code spans) of the table under `### heading`. */
function tableNames(heading: string): string[] {
  const start = section.indexOf(`### ${heading}\n`)
  const table = section.slice(start, section.indexOf('\n### ', start + 1))
  return [...table.matchAll(/^\| `([^`]+)` \|/gm)].map((match) => match[1]!)
}

describe('README tables of person_auth_log', () => {
  it('name every column, in order', async () => {
    const columns = await sql<{ name: string }>(
      app,
      "SELECT column_name AS name FROM information_schema.columns WHERE table_name = 'person_auth_log' AND table_schema = current_schema() ORDER BY ordinal_position",
    )
    expect(tableNames('Columns')).toEqual(columns.map((column) => column.name))
  })

  it('name every index', async () => {
    const indexes = await sql<{ name: string }>(app, "SELECT indexname AS name FROM pg_indexes WHERE tablename = 'person_auth_log' AND schemaname = current_schema()")
    expect(tableNames('Indexes').sort()).toEqual(indexes.map((index) => index.name).sort())
  })
})

describe('README SQL examples', () => {
  it('are there', () => {
    expect(examples.length).toBeGreaterThanOrEqual(5)
  })

  it.each(examples.map((example) => [example.split('\n')[0]!, example]))('%s', async (_title, example) => {
    const rows = await sql(app, example.replaceAll(PLACEHOLDER_ID, person.id))
    // Each example finds what the setup above did.
    expect(rows.length).toBeGreaterThan(0)
  })

  it('compute what a role change added and removed', async () => {
    const example = examples.find((text) => text.includes('Global role changes'))!
    const [change] = await sql<{ added: string[]; removed: string[]; roles_after: string[] }>(app, example)
    expect(change).toMatchObject({ added: ['super_admin'], removed: [], roles_after: ['person', 'super_admin'] })
  })
})
