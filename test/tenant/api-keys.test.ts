import { createHash, randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { apiKeyIdOfToken, createGlobalApiKey, readLog, signedInPerson, sql, storedLogRows } from '../testkit/fixtures.js'

let app: TestApp

const CREATE = `mutation ($description: String!, $roles: [String!], $tokenHash: String) {
  createGlobalApiKey(description: $description, roles: $roles, tokenHash: $tokenHash) {
    ok error { code developerMessage membershipValidation { code role } } result { apiKey { id token identity { id roles } } }
  }
}`
const DISABLE = 'mutation ($id: String!) { disableApiKey(id: $id) { ok error { code } } }'

beforeAll(async () => {
  app = await startTestApp()
})

afterAll(() => app?.stop())

const apiKeyCount = async () => Number((await sql<{ n: number }>(app, 'SELECT count(*)::int AS n FROM api_key'))[0]!.n)

describe('createGlobalApiKey', () => {
  it('creates a working key, shows its token once, and records the key without the token', async () => {
    const response = await app.gql(CREATE, { variables: { description: 'deploy bot', roles: ['project_creator'] }, token: app.rootToken })
    const { apiKey } = response.data.createGlobalApiKey.result
    expect(apiKey.identity.roles).toEqual(['project_creator'])
    expect((await app.gql('{ me { id roles } }', { token: apiKey.token })).data.me).toEqual(apiKey.identity)
    const [entry] = (await readLog(app, { filter: { types: ['api_key_create'] }, limit: 1 })).entries
    expect(entry!.eventData).toEqual({ apiKeyId: apiKey.id, identityId: apiKey.identity.id, description: 'deploy bot', roles: ['project_creator'] })
    const stored = JSON.stringify(await storedLogRows(app))
    expect(stored).not.toContain(apiKey.token)
    expect(stored).not.toContain(createHash('sha256').update(apiKey.token).digest('hex'))
  })

  it('takes a hash the caller computed and then returns no token', async () => {
    const token = randomBytes(24).toString('hex')
    const tokenHash = createHash('sha256').update(token).digest('hex')
    const response = await app.gql(CREATE, { variables: { description: 'own token', roles: ['login'], tokenHash }, token: app.rootToken })
    expect(response.data.createGlobalApiKey.result.apiKey.token).toBeNull()
    expect((await app.gql('{ me { roles } }', { token })).data.me.roles).toEqual(['login'])
  })

  it.each([
    ['an unknown role', { roles: ['emperor'] }],
    ['a role listed twice', { roles: ['login', 'login'] }],
  ])('refuses %s, creating and recording nothing', async (_name, variables) => {
    const [before, keys] = [await storedLogRows(app), await apiKeyCount()]
    const response = await app.gql(CREATE, { variables: { description: 'x', ...variables }, token: app.rootToken })
    expect(response.data.createGlobalApiKey).toMatchObject({ ok: false, error: { code: 'INVALID_MEMBERSHIP' }, result: null })
    expect(await storedLogRows(app)).toEqual(before)
    expect(await apiKeyCount()).toBe(keys)
  })

  it('refuses a malformed token hash as BAD_USER_INPUT naming tokenHash, creating and recording nothing', async () => {
    const [before, keys] = [await storedLogRows(app), await apiKeyCount()]
    const response = await app.gql(CREATE, { variables: { description: 'x', roles: [], tokenHash: 'not-hex' }, token: app.rootToken })
    expect(response.errors).toEqual([
      expect.objectContaining({ message: 'tokenHash must be a lowercase hex sha256.', extensions: expect.objectContaining({ code: 'BAD_USER_INPUT', argument: 'tokenHash' }) }),
    ])
    expect(await storedLogRows(app)).toEqual(before)
    expect(await apiKeyCount()).toBe(keys)
  })

  it('refuses a person session with FORBIDDEN, creating and recording nothing', async () => {
    const person = await signedInPerson(app)
    const [before, keys] = [await storedLogRows(app), await apiKeyCount()]
    const response = await app.gql(CREATE, { variables: { description: 'x', roles: ['super_admin'] }, token: person.token })
    expect(response.errors?.[0]).toMatchObject({ extensions: { code: 'FORBIDDEN' }, message: 'You are not allowed to create global API keys.' })
    expect(await storedLogRows(app)).toEqual(before)
    expect(await apiKeyCount()).toBe(keys)
  })
})

describe('disableApiKey', () => {
  it('disables a key, which then stops authenticating, and records it', async () => {
    const key = await createGlobalApiKey(app, ['login'])
    expect((await app.gql(DISABLE, { variables: { id: key.id }, token: app.rootToken })).data.disableApiKey).toEqual({ ok: true, error: null })
    expect((await app.gql('{ me { id } }', { token: key.token })).status).toBe(401)
    const [entry] = (await readLog(app, { filter: { types: ['api_key_disable'] }, limit: 1 })).entries
    expect(entry).toMatchObject({ success: true, targetPersonId: null, eventData: { apiKeyId: key.id } })
  })

  it("names the person whose session was disabled", async () => {
    const person = await signedInPerson(app)
    const sessionId = await apiKeyIdOfToken(app, person.token)
    await app.gql(DISABLE, { variables: { id: sessionId }, token: app.rootToken })
    const [entry] = (await readLog(app, { filter: { types: ['api_key_disable'] }, limit: 1 })).entries
    expect(entry).toMatchObject({ targetPersonId: person.id, eventData: { apiKeyId: sessionId } })
  })

  it.each([
    ['an already disabled key', async () => {
      const key = await createGlobalApiKey(app, [])
      await app.gql(DISABLE, { variables: { id: key.id }, token: app.rootToken })
      return key.id
    }],
    ['a malformed id', async () => 'not-a-uuid'],
    ['an unknown id', async () => '00000000-0000-4000-8000-000000000000'],
  ])('answers KEY_NOT_FOUND for %s and records nothing', async (_name, id) => {
    const keyId = await id()
    const before = await storedLogRows(app)
    expect((await app.gql(DISABLE, { variables: { id: keyId }, token: app.rootToken })).data.disableApiKey).toEqual({ ok: false, error: { code: 'KEY_NOT_FOUND' } })
    expect(await storedLogRows(app)).toEqual(before)
  })
})
