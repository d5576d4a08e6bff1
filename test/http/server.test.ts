import http from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_REQUEST_BODY_BYTES } from '../../src/http/server.js'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { createGlobalApiKey, grantRoles, signIn, signUpPerson, sql, tenantRequest } from '../testkit/fixtures.js'

let app: TestApp

beforeAll(async () => {
  app = await startTestApp()
})

afterAll(() => app?.stop())

async function get(path: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${app.url}${path}`, { headers })
  return { status: response.status, contentType: response.headers.get('content-type'), text: await response.text() }
}

describe('HTTP endpoints', () => {
  it('answers /health and /ready', async () => {
    expect(await get('/health')).toMatchObject({ status: 200, text: JSON.stringify({ status: 'ok' }) })
    expect(await get('/ready')).toMatchObject({ status: 200, text: JSON.stringify({ status: 'ready' }) })
  })

  it('answers an unknown route with a JSON 404', async () => {
    for (const path of ['/', '/nope', '/tenantx', '/health/extra']) {
      const response = await get(path)
      expect(response.status, path).toBe(404)
      expect(response.contentType).toMatch(/^application\/json/)
      expect(JSON.parse(response.text)).toEqual({ error: 'Not found' })
    }
  })

  it('answers a malformed body with a client error and no stack', async () => {
    const response = await fetch(`${app.url}/tenant`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query": ' })
    expect(response.status).toBe(400)
    const text = await response.text()
    expect(text).not.toMatch(/\bat .+:\d+:\d+|stack/i)
    // Not the parser's own error either (its name, and a message quoting the body).
    expect(JSON.parse(text)).toEqual({ errors: [{ message: 'POST body sent invalid JSON.', extensions: { code: 'BAD_REQUEST' } }] })
  })

  it('answers malformed variables in a query string or form, and a batch element that is no operation, with a client error', async () => {
    const badRequest = (response: { status: number; body: any }) => {
      expect(response.status).toBe(400)
      expect(response.body.errors).toEqual([{ message: expect.any(String), extensions: { code: 'BAD_REQUEST' } }])
    }
    badRequest(await tenantRequest(app, { query: { query: '{ me { id } }', variables: '{' } }))
    badRequest(await tenantRequest(app, { query: { query: '{ me { id } }', extensions: '{bad' } }))
    const form = await fetch(`${app.url}/tenant`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'query=%7B%20me%20%7B%20id%20%7D%20%7D&variables=%7Bbad' })
    badRequest({ status: form.status, body: await form.json() })

    const batch = await tenantRequest(app, { body: [{ query: '{ __typename }' }, null], token: app.rootToken })
    expect(batch.status).toBeLessThan(500)
    expect(batch.text).not.toContain('INTERNAL_SERVER_ERROR')
  })

  it('refuses input nested deeper than 64 levels, or holding an unpaired surrogate, as bad input before anything runs', async () => {
    /** JSON text of `depth` nested lists (written out: a recursive stringify would overflow first). */
    const nested = (depth: number) => `${'['.repeat(depth)}"x"${']'.repeat(depth)}`
    const signInIDP = 'mutation ($data: Json!) { signInIDP(identityProvider: "none", data: $data) { ok } }'
    for (const data of [nested(10_000), nested(65), JSON.stringify({ key: 'x\ud800' }), JSON.stringify({ ['k\udc00']: 1 })]) {
      // Without a token, as anyone may send it.
      const response = await fetch(`${app.url}/tenant`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: `{ "query": ${JSON.stringify(signInIDP)}, "variables": { "data": ${data} } }`,
      })
      expect(response.status).toBe(200)
      expect((await response.json()).errors).toEqual([{ message: expect.any(String), extensions: { code: 'BAD_USER_INPUT', variable: 'data' } }])
    }
    const literal = await app.gql(`mutation { signInIDP(identityProvider: "none", data: ${'['.repeat(65)}1${']'.repeat(65)}) { ok } }`)
    expect(literal.errors).toEqual([{ message: expect.stringMatching(/64 levels/), extensions: { code: 'BAD_USER_INPUT' } }])
    // 64 levels, and a surrogate pair (an emoji), are input like any other.
    const allowed = await app.gql(signInIDP, { variables: { data: { deep: JSON.parse(nested(63)), emoji: '\ud83d\ude00' } }, token: app.loginToken })
    expect(allowed.errors).toBeUndefined()
    expect(allowed.data.signInIDP.ok).toBe(false)
  })

  it('answers a POST body it cannot read with a JSON 415, and other methods with a JSON 405', async () => {
    const unsupported = { errors: [{ message: expect.stringMatching(/application\/json/), extensions: { code: 'UNSUPPORTED_MEDIA_TYPE' } }] }
    const operation = JSON.stringify({ query: '{ __typename }' })
    const cases: [string, Record<string, string>, string | undefined, number, unknown][] = [
      ['POST', { 'content-type': 'text/plain' }, operation, 415, unsupported],
      ['POST', {}, operation, 415, unsupported],
      // No operation takes a file.
      ['POST', { 'content-type': 'multipart/form-data; boundary=x' }, `--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${operation}\r\n--x--\r\n`, 415, unsupported],
      ['PUT', { 'content-type': 'application/json' }, operation, 405, { errors: [{ message: expect.any(String), extensions: { code: 'BAD_REQUEST' } }] }],
      ['POST', { 'content-type': 'application/graphql' }, '{ __typename }', 200, { data: { __typename: 'Query' } }],
    ]
    for (const [method, headers, body, status, expected] of cases) {
      const response = await fetch(`${app.url}/tenant`, { method, headers, body })
      expect(response.status, `${method} ${headers['content-type']}`).toBe(status)
      expect(response.headers.get('content-type')).toMatch(/^application\/json/)
      expect(await response.json()).toEqual(expected)
    }
  })

  it('serves GraphiQL with every asset inlined: no external script, style, font or worker', async () => {
    const page = await get('/tenant', { accept: 'text/html' })
    expect(page.status).toBe(200)
    expect(page.contentType).toMatch(/^text\/html/)
    expect(page.text).toContain('<title>Custos tenant API</title>')
    expect(page.text).toContain('YogaGraphiQL.renderYogaGraphiQL')
    // Things a browser would fetch: src/href attributes, CSS url()/@import, script imports, importScripts, fetch of an absolute URL.
    const fetched = [
      ...page.text.matchAll(/\b(?:src|href)\s*=\s*["']?((?:https?:)?\/\/[^"'\s>]+)/gi),
      ...page.text.matchAll(/url\(\s*["']?((?:https?:)?\/\/[^"')]+)/gi),
      ...page.text.matchAll(/@import\s+["']((?:https?:)?\/\/[^"']+)/gi),
      ...page.text.matchAll(/\bimport\s*\(\s*["'`]((?:https?:)?\/\/[^"'`]+)/gi),
      ...page.text.matchAll(/importScripts\(\s*["'`]((?:https?:)?\/\/[^"'`]+)/gi),
      ...page.text.matchAll(/fetch\(\s*["'`]((?:https?:)?\/\/[^"'`]+)/gi),
    ].map((match) => match[1])
    expect(fetched).toEqual([])
    expect(page.text).not.toMatch(/unpkg\.com|jsdelivr|cdnjs|esm\.sh|fonts\.googleapis/)
    // The favicon is inlined too.
    expect(page.text).toMatch(/<link rel="icon" href="data:/)
  })

  it('reads a GraphQL body only when it announces its size, up to 1 MiB', async () => {
    const post = (body: string, headers: Record<string, string>) =>
      new Promise<{ status: number; body: any }>((resolve, reject) => {
        const request = http.request(`${app.url}/tenant`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (response) => {
          const chunks: Buffer[] = []
          response.on('data', (chunk: Buffer) => chunks.push(chunk))
          response.on('end', () => resolve({ status: response.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString()) }))
        })
        request.on('error', reject)
        request.end(body)
      })
    const query = (padding: number) => JSON.stringify({ query: '{ __typename }', variables: { padding: 'x'.repeat(padding) } })
    const atLimit = query(MAX_REQUEST_BODY_BYTES - query(0).length)
    expect(Buffer.byteLength(atLimit)).toBe(MAX_REQUEST_BODY_BYTES)

    expect(await post(atLimit, { 'content-length': String(MAX_REQUEST_BODY_BYTES) })).toEqual({ status: 200, body: { data: { __typename: 'Query' } } })
    expect(await post(`${atLimit} `, { 'content-length': String(MAX_REQUEST_BODY_BYTES + 1) })).toEqual({
      status: 413,
      body: { errors: [{ message: `Request body too large: at most ${MAX_REQUEST_BODY_BYTES} bytes.`, extensions: { code: 'REQUEST_ENTITY_TOO_LARGE' } }] },
    })
    // Without Content-Length node's client sends the body chunked.
    expect(await post(query(0), { 'transfer-encoding': 'chunked' })).toEqual({
      status: 411,
      body: { errors: [{ message: 'A request body must come with a Content-Length header.', extensions: { code: 'LENGTH_REQUIRED' } }] },
    })
  })

  it("refuses operations past graphql-armor's limits as failed validation, with a code and before anything runs", async () => {
    const tooManyAliases = `{ ${Array.from({ length: 51 }, (_, index) => `a${index}: authLogPublicKey`).join(' ')} }`
    const tooDeep = '{ me { person { identity { person { identity { person { identity { person { identity { person { identity { person { id } } } } } } } } } } } } }'
    const tooCostly = `{ ${Array.from({ length: 50 }, (_, index) => `a${index}: me { ${'person { identity { '.repeat(5)}id${' } }'.repeat(5)} }`).join(' ')} }`
    const refusals = [
      [tooManyAliases, 'Aliases limit of 50 exceeded, found 51.'],
      [tooDeep, 'Query depth limit of 12 exceeded, found 13.'],
      [tooCostly, /^Query Cost limit of 20000 exceeded, found [\d.]+\.$/],
    ] as const
    for (const [query, message] of refusals) {
      const response = await app.gql(query, { token: app.rootToken })
      expect(response.status).toBe(400)
      expect(response.data).toBeUndefined()
      expect(response.errors).toEqual([{ message: expect.stringMatching(message), extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }])
      // GraphQL over HTTP: a client that accepts only application/json gets 200 and the same errors.
      const plain = await app.gql(query, { token: app.rootToken, headers: { accept: 'application/json' } })
      expect(plain.status).toBe(200)
      expect(plain.errors).toEqual(response.errors)
    }
  })

  it('refuses an operation that reads the audit log more than five times, however the reads are spelled', async () => {
    const reads = (count: number, field = 'authLog { hasMore }') => Array.from({ length: count }, (_, index) => `r${index}: ${field}`).join(' ')
    const refused = async (query: string, keys: string) => {
      const response = await app.gql(query, { token: app.rootToken })
      expect(response.status, query).toBe(400)
      expect(response.data).toBeUndefined()
      expect(response.errors).toEqual([
        { message: expect.stringMatching(new RegExp(`^An operation may read the audit log at most 5 times; this one reads it \\d+ times \\(${keys}\\)\\.$`)), locations: expect.any(Array), extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } },
      ])
    }
    await refused(`{ ${reads(6)} }`, 'r0, r1, r2, r3, r4, r5')
    await refused(`{ ${reads(3)} ...more } fragment more on Query { ... on Query { x: authLogStats { total } y: verifyAuthLog { ok } z: authLogTypes { type } } }`, 'r0, r1, r2, x, y, z')
    const checkpoints = async () => (await app.gql('{ authLogCheckpoints(limit: 500) { sequence } }', { token: app.rootToken })).data.authLogCheckpoints.length
    const before = await checkpoints()
    await refused(`mutation { ${reads(6, 'createAuthLogCheckpoint { ok }')} }`, 'r0, r1, r2, r3, r4, r5')
    expect(await checkpoints()).toBe(before)

    // Five reads, and fields that merge into one read, run.
    const allowed = await app.gql(`{ ${reads(5)} r0: authLog { nextCursor } authLogPublicKey ...again } fragment again on Query { r1: authLog { hasMore } }`, { token: app.rootToken })
    expect(allowed.errors).toBeUndefined()
    expect(Object.keys(allowed.data)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'authLogPublicKey'])
  })

  it('refuses a batch whose operations together read the audit log more than five times, and runs none of them', async () => {
    const checkpoints = async () => (await app.gql('{ authLogCheckpoints(limit: 500) { sequence } }', { token: app.rootToken })).data.authLogCheckpoints.length
    const before = await checkpoints()
    const threeReads = '{ a: authLog { hasMore } ...more } fragment more on Query { b: authLogStats { total } ... on Query { c: authLogTypes { count } } }'
    const batch = [
      { query: 'mutation { createAuthLogCheckpoint { ok } }' },
      { query: threeReads },
      { query: 'query Other { authLogPublicKey } query Reads { x: verifyAuthLog { ok } y: authLogTypes { type } }', operationName: 'Reads' },
      { query: '{ me { id } }' },
    ]
    const refused = await tenantRequest(app, { body: batch, token: app.rootToken })
    expect(refused.status).toBe(200)
    const refusal = { message: 'A request may read the audit log at most 5 times; this batch reads it 6 times.', extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }
    expect(refused.body).toEqual(batch.map(() => ({ errors: [refusal] })))
    expect(await checkpoints()).toBe(before)

    // Five reads in a batch run, and the refused batch left nothing behind for its operations on their own.
    const allowed = await tenantRequest(app, { body: batch.slice(1), token: app.rootToken })
    expect(allowed.body.map((result: { errors?: unknown }) => result.errors)).toEqual([undefined, undefined, undefined])
    expect((await tenantRequest(app, { body: [batch[0], batch[1], { query: '{ authLogPublicKey }' }], token: app.rootToken })).body[0]).toEqual({ data: { createAuthLogCheckpoint: { ok: true } } })
    expect(await checkpoints()).toBe(before + 1)
  })

  it('serves JSON, not GraphiQL, to an API client on GET', async () => {
    const response = await tenantRequest(app, { query: { query: '{ __typename }' } })
    expect(response.body).toEqual({ data: { __typename: 'Query' } })
  })
})

describe('server log', () => {
  it('is JSON lines that never carry a password, token or hash', async () => {
    const person = await signUpPerson(app)
    const session = await signIn(app, person)
    await grantRoles(app, person.identityId, ['project_admin'])
    await app.gql('mutation ($e: String!, $p: String!) { signIn(email: $e, password: $p) { ok } }', {
      variables: { e: person.email, p: `${person.password}-typo` },
      token: app.loginToken,
    })
    // A password typed into the query text itself, not passed as a variable.
    await app.gql(`mutation { signIn(email: "${person.email}", password: "${person.password}-literal") { ok } }`, { token: app.loginToken })
    const key = await createGlobalApiKey(app, ['login'])
    await app.gql('{ me { id } }', { token: `${session}-wrong` })
    const [stored] = await sql<{ password_hash: string }>(app, 'SELECT password_hash FROM person WHERE id = $1', [person.id])
    const [keyHash] = await sql<{ token_hash: string }>(app, 'SELECT token_hash FROM api_key WHERE id = $1', [key.id])

    const log = app.logOutput()
    const lines = log.trim().split('\n')
    expect(lines.length).toBeGreaterThan(10)
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow()
    // Something was logged about these requests, so the check below looks at real output.
    expect(log).toContain('"path":"/tenant"')
    for (const secret of [person.password, `${person.password}-typo`, `${person.password}-literal`, session, key.token, app.rootToken, app.loginToken, stored!.password_hash, keyHash!.token_hash]) {
      expect(log).not.toContain(secret)
    }
  })
})

describe('readiness', () => {
  it('answers 503 once the database is gone', async () => {
    const doomed = await startTestApp()
    try {
      await doomed.app.services.db.close()
      const response = await fetch(`${doomed.url}/ready`)
      expect(response.status).toBe(503)
      expect(await response.json()).toEqual({ status: 'database unreachable' })
    } finally {
      // The database is already closed; stopping the rest may complain about it.
      await doomed.stop().catch(() => {})
    }
  })
})
