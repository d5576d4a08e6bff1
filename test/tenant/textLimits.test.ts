import { afterAll, beforeAll, expect, it } from 'vitest'
import { TEXT_LIMIT } from '../../src/tenant/invalidInput.js'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { expectNoEffect } from '../testkit/expectations.js'
import { createProject, signedInPerson, uniqueEmail } from '../testkit/fixtures.js'

/**
 * Free text that is stored and recorded (names, key descriptions, a sign-out reason) is at most
 * TEXT_LIMIT characters: longer is BAD_USER_INPUT naming the argument, and nothing changes or is recorded.
 */

let app: TestApp
beforeAll(async () => {
  app = await startTestApp()
})
afterAll(() => app?.stop())

it('refuses longer text in every operation that stores a name, a description or a reason', async () => {
  const person = await signedInPerson(app)
  const project = await createProject(app)
  const long = 'x'.repeat(TEXT_LIMIT + 1)
  const calls: [string, Record<string, unknown>, string, string?][] = [
    ['mutation ($t: String!) { createGlobalApiKey(description: $t, roles: []) { ok } }', { t: long }, 'description'],
    ['mutation ($t: String!, $p: String!) { createApiKey(projectSlug: $p, description: $t, memberships: [{ role: "editor", variables: [] }]) { ok } }', { t: long, p: project.slug }, 'description'],
    ['mutation ($t: String) { createProject(projectSlug: "long-name", name: $t, options: { noDeployToken: true }) { ok } }', { t: long }, 'name'],
    ['mutation ($t: String, $p: String!) { updateProject(projectSlug: $p, name: $t) { ok } }', { t: long, p: project.slug }, 'name'],
    ['mutation ($t: String) { changeMyProfile(name: $t) { ok } }', { t: long }, 'name', person.token],
    ['mutation ($t: String, $id: String!) { changeProfile(personId: $id, name: $t) { ok } }', { t: long, id: person.id }, 'name'],
    ['mutation ($t: String, $e: String!) { signUp(email: $e, name: $t) { ok } }', { t: long, e: uniqueEmail('long') }, 'name', app.loginToken],
    ['mutation ($t: String, $e: String!, $p: String!) { invite(email: $e, name: $t, projectSlug: $p, memberships: [{ role: "editor", variables: [] }]) { ok } }', { t: long, e: uniqueEmail('long'), p: project.slug }, 'name'],
    ['mutation ($t: String, $id: String!) { forceSignOutPerson(personId: $id, reason: $t) { ok } }', { t: long, id: person.id }, 'reason'],
  ]
  await expectNoEffect(app, async () => {
    for (const [document, variables, argument, token] of calls) {
      const response = await app.gql(document, { variables, token: token ?? app.rootToken })
      expect(response.errors?.[0]?.extensions, document).toMatchObject({ code: 'BAD_USER_INPUT', argument })
    }
  })
  // At the limit it is taken.
  const atLimit = await app.gql('mutation ($t: String!) { createGlobalApiKey(description: $t, roles: []) { ok } }', { variables: { t: 'x'.repeat(TEXT_LIMIT) }, token: app.rootToken })
  expect(atLimit.data.createGlobalApiKey.ok).toBe(true)
})
