import {
  type GraphQLNamedType,
  type GraphQLSchema,
  getNamedType,
  isInterfaceType,
  isObjectType,
  isUnionType,
} from 'graphql'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { schema } from '../../src/schema/index.js'
import { type TestApp, startTestApp } from '../testkit/app.js'
import {
  AUTH_LOG_QUERY,
  type GraphQLResponseBody,
  createGlobalApiKey,
  personWithRoles,
  signedInPerson,
  storedLogRows,
  tenantRequest,
} from '../testkit/fixtures.js'

let app: TestApp
const deniedCallers = [
  'the login key',
  'a person session',
  'a project_creator',
  'a project_admin',
  'an API key without roles',
  'an API key with every role but super_admin',
  'an anonymous caller',
] as const
/** Tokens of the callers who must not read the log (undefined: no token). */
const denied: Partial<Record<(typeof deniedCallers)[number], string>> = {}
/** Callers who may. */
const allowed: Record<string, string> = {}
let logIds: string[]

const DENIAL = 'You are not allowed to view the audit log.'

beforeAll(async () => {
  app = await startTestApp()
  denied['the login key'] = app.loginToken
  denied['a person session'] = (await signedInPerson(app)).token
  denied['a project_creator'] = (await personWithRoles(app, ['project_creator'])).token
  denied['a project_admin'] = (await personWithRoles(app, ['project_admin'])).token
  denied['an API key without roles'] = (await createGlobalApiKey(app, [])).token
  denied['an API key with every role but super_admin'] = (await createGlobalApiKey(app, ['login', 'person', 'project_creator', 'project_admin'])).token
  allowed['the root key'] = app.rootToken
  allowed['an API key with super_admin'] = (await createGlobalApiKey(app, ['super_admin'])).token
  allowed['a person granted super_admin'] = (await personWithRoles(app, ['super_admin'])).token
  logIds = (await storedLogRows(app)).map((row) => row.id)
  expect(logIds.length).toBeGreaterThan(5)
})

afterAll(() => app?.stop())

/** A denial: FORBIDDEN with the audit-log words, no data, and no log row anywhere in the answer. */
function expectDenied(body: GraphQLResponseBody) {
  expect(body.data ?? null).toBeNull()
  // Several denied fields may stop at the first: a null root answer ends the execution.
  expect(body.errors?.length).toBeGreaterThanOrEqual(1)
  for (const error of body.errors ?? []) {
    expect(error.extensions?.code).toBe('FORBIDDEN')
    expect(error.message).toBe(DENIAL)
  }
  const text = JSON.stringify(body)
  for (const id of logIds) expect(text).not.toContain(id)
}

describe('authLog permission by role', () => {
  it.each(['the root key', 'an API key with super_admin', 'a person granted super_admin'])('lets %s read the log', async (name) => {
    const response = await app.gql(AUTH_LOG_QUERY, { token: allowed[name] })
    expect(response.errors).toBeUndefined()
    expect(response.data.authLog.entries.map((entry: { id: string }) => entry.id)).toEqual(logIds)
  })

  it.each(deniedCallers)('refuses %s', async (name) => {
    if (name !== 'an anonymous caller') expect(denied[name]).toEqual(expect.any(String))
    const response = await app.gql(AUTH_LOG_QUERY, { token: denied[name] })
    expectDenied(response)
  })

  it('answers UNAUTHENTICATED to an unknown token and to a disabled one, before any field runs', async () => {
    const key = await createGlobalApiKey(app, ['super_admin'])
    const disabled = await app.gql(`mutation ($id: String!) { disableApiKey(id: $id) { ok } }`, { variables: { id: key.id }, token: app.rootToken })
    expect(disabled.data.disableApiKey.ok).toBe(true)
    for (const token of [key.token, 'not-a-token-anyone-has-0000000000', `${app.rootToken}x`]) {
      const response = await app.gql(AUTH_LOG_QUERY, { token })
      expect(response.status).toBe(401)
      expect(response.data ?? null).toBeNull()
      expect(response.errors?.map((error) => error.extensions?.code)).toEqual(['UNAUTHENTICATED'])
    }
  })

  it('records nothing for a denied read', async () => {
    const before = await storedLogRows(app)
    await app.gql(AUTH_LOG_QUERY, { token: denied['a person session'] })
    expect(await storedLogRows(app)).toEqual(before)
  })
})

describe('authLog permission cannot be worked around', () => {
  const personToken = () => denied['a person session']!

  const documents: Record<string, { query: string; operationName?: string }> = {
    'an alias': { query: '{ history: authLog { entries { id } } }' },
    'several aliases': { query: '{ a: authLog { hasMore } b: authLog(limit: 1) { entries { id type } } c: authLog(offset: 1) { hasMore } }' },
    'an alias beside allowed fields': { query: '{ me { id roles } __typename log: authLog { entries { id } } }' },
    'a named fragment': { query: 'query { ...Log } fragment Log on Query { authLog { entries { id } } }' },
    'nested named fragments': { query: '{ ...Outer } fragment Outer on Query { me { id } ...Inner } fragment Inner on Query { authLog { entries { ...Entry } } } fragment Entry on AuthLogEntry { id eventData }' },
    'an inline fragment': { query: '{ ... on Query { authLog { entries { id } } } }' },
    'an untyped inline fragment': { query: '{ ... { authLog { hasMore } } }' },
    '__typename beside it': { query: '{ __typename authLog { __typename hasMore entries { __typename id } } }' },
    '@include(if: true)': { query: 'query ($yes: Boolean = true) { authLog @include(if: $yes) { entries { id } } }' },
    '@skip(if: false)': { query: '{ authLog @skip(if: false) { entries { id } } }' },
    'an operationName picking it from several operations': { query: 'query Me { me { id } } query Log { authLog { entries { id } } }', operationName: 'Log' },
  }

  for (const [name, { query, operationName }] of Object.entries(documents)) {
    it(`refuses ${name}`, async () => {
      const response = await tenantRequest(app, { body: { query, operationName }, token: personToken() })
      expectDenied(response.body)
      // And a super admin gets data from the very same document, so the document itself is sound.
      const root = await tenantRequest(app, { body: { query, operationName }, token: app.rootToken })
      expect(root.body.errors).toBeUndefined()
      expect(root.body.data).toBeTruthy()
    })
  }

  it('refuses it through variables', async () => {
    const response = await app.gql(AUTH_LOG_QUERY, { variables: { filter: { types: ['login'] }, limit: 500, offset: 0 }, token: personToken() })
    expectDenied(response)
  })

  it('refuses it over GET', async () => {
    const response = await tenantRequest(app, { query: { query: '{ authLog { entries { id } } }' }, token: personToken() })
    expectDenied(response.body)
    const root = await tenantRequest(app, { query: { query: '{ authLog { entries { id } } }' }, token: app.rootToken })
    expect(root.body.data.authLog.entries.length).toBeGreaterThan(0)
  })

  it('refuses it inside a batch while answering the allowed operation beside it', async () => {
    const response = await tenantRequest(app, {
      body: [
        { query: '{ me { id } }' },
        { query: '{ authLog { entries { id } } }' },
        { query: 'query ($l: Int) { log: authLog(limit: $l) { hasMore } }', variables: { l: 1 } },
      ],
      token: personToken(),
    })
    expect(response.status).toBe(200)
    expect(response.body).toHaveLength(3)
    const [me, log, aliased] = response.body as GraphQLResponseBody[]
    expect(me!.data.me.id).toEqual(expect.any(String))
    expectDenied(log!)
    expectDenied(aliased!)
  })

  it('refuses a batch beyond the batching limit as a whole', async () => {
    const response = await tenantRequest(app, { body: Array.from({ length: 11 }, () => ({ query: '{ me { id } }' })), token: personToken() })
    expect(response.status).toBeGreaterThanOrEqual(400)
    expect(response.text).not.toContain('"me"')
  })

  it('reaches AuthLogPage and AuthLogEntry only through Query.authLog', () => {
    expect(fieldsReturning(schema, 'AuthLogPage')).toEqual(['Query.authLog'])
    expect(fieldsReturning(schema, 'AuthLogEntry')).toEqual(['AuthLogPage.entries'])
    expect(unionsAndInterfacesHolding(schema, ['AuthLogPage', 'AuthLogEntry'])).toEqual([])
    // Walking from the root types without Query.authLog never meets either type; with it, both.
    const elsewhere = reachableTypes(schema, 'Query.authLog')
    expect(elsewhere.has('AuthLogPage') || elsewhere.has('AuthLogEntry')).toBe(false)
    expect(elsewhere.has('Identity')).toBe(true)
    const everywhere = reachableTypes(schema)
    expect(everywhere.has('AuthLogPage') && everywhere.has('AuthLogEntry')).toBe(true)
  })

  it('guards every root field with a declared scope (fields without one would be open)', () => {
    const unguarded = [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()]
      .flatMap((root) => (root ? Object.values(root.getFields()).map((field) => ({ root: root.name, field })) : []))
      .filter(({ field }) => (field.extensions as { pothosOptions?: { authScopes?: unknown } }).pothosOptions?.authScopes === undefined)
      .map(({ root, field }) => `${root}.${field.name}`)
    expect(unguarded).toEqual([])
  })

  it('counts every root field that needs system:viewAuthLog among the log reads an operation is allowed (src/schema/audit/logReads.ts)', () => {
    const rootFields = [schema.getQueryType(), schema.getMutationType()].flatMap((root) => (root ? Object.values(root.getFields()) : []))
    const needsViewAuthLog = rootFields.filter(
      (field) => (field.extensions as { pothosOptions?: { authScopes?: { privilege?: string } } }).pothosOptions?.authScopes?.privilege === 'system:viewAuthLog',
    )
    const counted = rootFields.filter((field) => field.extensions.readsAuditLog === true)
    expect(counted.map((field) => field.name).sort()).toEqual(needsViewAuthLog.map((field) => field.name).sort())
    expect(counted.length).toBeGreaterThanOrEqual(6)
  })
})

/** `Type.field` of every field whose (unwrapped) type is `typeName`. */
function fieldsReturning(schema: GraphQLSchema, typeName: string): string[] {
  return Object.values(schema.getTypeMap())
    .flatMap((type) => (isObjectType(type) || isInterfaceType(type) ? [type] : []))
    .flatMap((type) =>
      Object.values(type.getFields())
        .filter((field) => getNamedType(field.type).name === typeName)
        .map((field) => `${type.name}.${field.name}`),
    )
    .sort()
}

function unionsAndInterfacesHolding(schema: GraphQLSchema, typeNames: string[]): string[] {
  return Object.values(schema.getTypeMap())
    .filter((type) => (isUnionType(type) || isInterfaceType(type)) && schema.getPossibleTypes(type).some((possible) => typeNames.includes(possible.name)))
    .map((type) => type.name)
}

/** Names of the output types reachable from the root types, optionally without one `Type.field`. */
function reachableTypes(schema: GraphQLSchema, skipField?: string): Set<string> {
  const roots = [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()].filter((root) => root != null)
  const seen = new Set<string>(roots.map((root) => root.name))
  const queue: GraphQLNamedType[] = [...roots]
  while (queue.length > 0) {
    const type = queue.shift()!
    const next = [
      ...(isObjectType(type) || isInterfaceType(type)
        ? Object.values(type.getFields())
            .filter((field) => `${type.name}.${field.name}` !== skipField)
            .map((field) => getNamedType(field.type))
        : []),
      ...(isUnionType(type) || isInterfaceType(type) ? schema.getPossibleTypes(type) : []),
    ]
    for (const reached of next) {
      if (seen.has(reached.name)) continue
      seen.add(reached.name)
      queue.push(reached)
    }
  }
  return seen
}
