import fc from 'fast-check'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { hashToken } from '../../src/tenant/apiKeys/tokens.js'
import { startTestApp, type TestApp } from '../testkit/app.js'
import { createProject, sql, uniqueEmail } from '../testkit/fixtures.js'
import { expectNoEffect } from '../testkit/expectations.js'

/**
 * Random secrets in every secret-bearing input of every mutation never reach
 * person_auth_log (any column), any response, or the server's log output.
 * Tokens the server hands out belong in their response only: never in the log.
 */

let app: TestApp
beforeAll(async () => {
  app = await startTestApp()
  await createProject(app, { slug: 'secrets' })
})
afterAll(() => app?.stop())

/** Any Unicode text but NUL (refused up front: see below); it follows a unique marker, so a match can only be a leak. */
const secretText = fc.string({ unit: 'binary', maxLength: 24 }).filter((text) => !text.includes('\u0000'))
const sha256 = fc.stringMatching(/^[0-9a-f]{64}$/)

const inputs = fc.record({
  nonce: fc.uuid(),
  password: secretText,
  projectSecret: secretText,
  projectSecretUpdate: secretText,
  clientSecret: secretText,
  clientSecretUpdate: secretText,
  unmanagedPassword: secretText,
  deprecatedUnmanagedPassword: secretText,
  globalKeyHash: sha256,
  projectKeyHash: sha256,
  deployTokenHash: sha256,
  resetTokenHash: sha256,
})

/** How a string can appear in text: as is, or escaped inside JSON. */
const spellings = (value: string) => [value, JSON.stringify(value).slice(1, -1)]

let run = 0

it('no secret input reaches the audit log, a response, or the server log', async () => {
  await fc.assert(
    fc.asyncProperty(inputs, async (generated) => {
      run += 1
      const mark = (label: string, tail: string) => `${label}-${generated.nonce}-${tail}`
      const secrets = {
        password: mark('Pw1', generated.password),
        projectSecret: mark('ps', generated.projectSecret),
        projectSecretUpdate: mark('psu', generated.projectSecretUpdate),
        clientSecret: mark('cs', generated.clientSecret),
        clientSecretUpdate: mark('csu', generated.clientSecretUpdate),
        unmanagedPassword: mark('up', generated.unmanagedPassword),
        deprecatedUnmanagedPassword: mark('dup', generated.deprecatedUnmanagedPassword),
        globalKeyHash: generated.globalKeyHash,
        projectKeyHash: generated.projectKeyHash,
        deployTokenHash: generated.deployTokenHash,
        resetTokenHash: generated.resetTokenHash,
      }
      const email = uniqueEmail(`prop${run}`)
      const slug = `secret-${run}-${generated.nonce.slice(0, 8)}`
      const idp = `idp-${run}-${generated.nonce.slice(0, 8)}`
      const responses: unknown[] = []
      /** Every call must do its work (a refused one would prove nothing), except where `refused` says so. */
      const call = async (query: string, variables: Record<string, unknown>, token = app.rootToken, refused = false) => {
        const response = await app.gql(query, { variables, token })
        responses.push(response)
        expect(response.errors, JSON.stringify(response.errors)).toBeUndefined()
        const payload = Object.values(response.data ?? {})[0] as { ok?: boolean }
        if (!Array.isArray(payload)) expect(payload.ok, JSON.stringify(response)).toBe(!refused)
        return response
      }

      await call('mutation ($e: String!, $p: String!) { signUp(email: $e, password: $p) { ok } }', { e: email, p: secrets.password }, app.loginToken)
      const signedIn = await call('mutation ($e: String!, $p: String!) { signIn(email: $e, password: $p) { ok result { token } } }', { e: email, p: secrets.password }, app.loginToken)
      await call('mutation ($e: String!, $p: String!) { signIn(email: $e, password: $p) { ok error { code } } }', { e: email, p: `${secrets.password}x` }, app.loginToken, true)
      const project = await call(
        `mutation ($s: String!, $v: String!, $h: String) {
          createProject(projectSlug: $s, secrets: [{ key: "k", value: $v }], options: { deployTokenHash: $h }) { ok error { code } result { deployerApiKey { token } } }
        }`,
        { s: slug, v: secrets.projectSecret, h: secrets.deployTokenHash },
      )
      await call('mutation ($s: String!, $v: String!) { setProjectSecret(projectSlug: $s, key: "k", value: $v) { ok } }', { s: slug, v: secrets.projectSecretUpdate })
      await call(
        'mutation ($i: String!, $c: Json!) { addIDP(identityProvider: $i, type: "oidc", configuration: $c) { ok error { code developerMessage } } }',
        { i: idp, c: { url: 'https://idp.example.test', clientId: 'c', clientSecret: secrets.clientSecret } },
      )
      await call(
        'mutation ($i: String!, $c: Json!) { updateIDP(identityProvider: $i, configuration: $c, mergeConfiguration: true) { ok error { code developerMessage } } }',
        { i: idp, c: { clientSecret: secrets.clientSecretUpdate } },
      )
      await call('{ identityProviders { slug configuration } }', {})
      const globalKey = await call('mutation ($h: String) { createGlobalApiKey(description: "prop", roles: [], tokenHash: $h) { ok result { apiKey { token } } } }', { h: secrets.globalKeyHash })
      const projectKey = await call(
        'mutation ($s: String!) { createApiKey(projectSlug: $s, memberships: [{ role: "r", variables: [] }], description: "prop") { ok result { apiKey { token } } } }',
        { s: 'secrets' },
      )
      await call(
        'mutation ($s: String!, $h: String) { createApiKey(projectSlug: $s, memberships: [{ role: "r", variables: [] }], description: "prop", tokenHash: $h) { ok } }',
        { s: 'secrets', h: secrets.projectKeyHash },
      )
      await call(
        `mutation ($e: String!, $p: String) {
          unmanagedInvite(email: $e, projectSlug: "secrets", memberships: [{ role: "r", variables: [] }], options: { password: $p }) { ok }
        }`,
        { e: uniqueEmail(`unmanaged${run}`), p: secrets.unmanagedPassword },
      )
      await call(
        `mutation ($e: String!, $p: String) {
          unmanagedInvite(email: $e, projectSlug: "secrets", memberships: [{ role: "r", variables: [] }], password: $p) { ok }
        }`,
        { e: uniqueEmail(`deprecated${run}`), p: secrets.deprecatedUnmanagedPassword },
      )
      await call(
        `mutation ($e: String!, $h: String) {
          unmanagedInvite(email: $e, projectSlug: "secrets", memberships: [{ role: "r", variables: [] }], options: { resetTokenHash: $h }) { ok }
        }`,
        { e: uniqueEmail(`hash${run}`), h: secrets.resetTokenHash },
      )

      // Tokens handed out belong to their own response, never to a log.
      // (Keys created with a caller's hash return no token.)
      const issuedTokens = [signedIn.data?.signIn?.result?.token, projectKey.data?.createApiKey?.result?.apiKey?.token]
      expect(issuedTokens.every((token) => typeof token === 'string')).toBe(true)
      expect(project.data?.createProject?.result?.deployerApiKey?.token).toBeNull()
      expect(globalKey.data?.createGlobalApiKey?.result?.apiKey?.token).toBeNull()

      const auditRows = (await sql<{ row: string }>(app, 'SELECT to_jsonb(t)::text AS row FROM person_auth_log t')).map((row) => row.row).join('\n')
      const serverLog = app.logOutput()
      const responseText = JSON.stringify(responses)
      for (const [name, value] of Object.entries(secrets)) {
        for (const spelling of spellings(value)) {
          expect(auditRows.includes(spelling), `${name} in person_auth_log`).toBe(false)
          expect(serverLog.includes(spelling), `${name} in the server log`).toBe(false)
          expect(responseText.includes(spelling), `${name} in a response`).toBe(false)
        }
      }
      for (const token of issuedTokens as string[]) {
        for (const text of [token, hashToken(token)]) {
          expect(auditRows.includes(text), 'an issued token in person_auth_log').toBe(false)
          expect(serverLog.includes(text), 'an issued token in the server log').toBe(false)
        }
      }
    }),
    { numRuns: 8 },
  )
}, 300_000)

it('refuses text with a NUL character (PostgreSQL cannot store it) as bad input, with no effect and no trace of the value', async () => {
  const secret = `nul-secret-${Date.now()}\u0000tail`
  await expectNoEffect(app, async () => {
    const response = await app.gql(
      'mutation ($c: Json!) { addIDP(identityProvider: "nul", type: "oidc", configuration: $c) { ok } }',
      { variables: { c: { url: 'https://idp.example.test', clientId: 'c', clientSecret: secret } }, token: app.rootToken },
    )
    expect(response.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT')
    const literal = await app.gql('mutation { setProjectSecret(projectSlug: "secrets", key: "k", value: "a\\u0000b") { ok } }', { token: app.rootToken })
    expect(literal.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT')
  })
  expect(app.logOutput()).not.toContain('nul-secret-')
})
