import { parse } from 'graphql'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { useCompiledExecution } from '../../src/http/compiledExecution.js'
import { schema } from '../../src/schema/index.js'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { signUpPerson } from '../testkit/fixtures.js'

/** Which execute function the plugin leaves for `query`: a compiled one, or yoga's (undefined). */
function executeFnFor(plugin: ReturnType<typeof useCompiledExecution>, document: ReturnType<typeof parse>, operationName?: string) {
  let chosen: ((args: any) => unknown) | undefined
  plugin.onExecute!({ args: { schema, document, operationName }, setExecuteFn: (fn: typeof chosen) => (chosen = fn) } as any)
  return chosen
}

describe('compiled execution', () => {
  it('runs each operation of a document compiled on its own', async () => {
    const plugin = useCompiledExecution()
    const document = parse('query A { __typename } query B { __schema { queryType { name } } }')
    const first = executeFnFor(plugin, document, 'B')!
    expect(first).toBeTypeOf('function')
    expect(await first({ rootValue: {}, contextValue: {}, variableValues: {} })).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } })
    // The other operation of the same document is compiled on its own.
    expect(await executeFnFor(plugin, document, 'A')!({ rootValue: {}, contextValue: {}, variableValues: {} })).toEqual({ data: { __typename: 'Query' } })
  })

  it("leaves yoga's executor to an operation graphql-jit cannot compile (a bigint literal)", () => {
    const plugin = useCompiledExecution()
    expect(executeFnFor(plugin, parse('{ verifyAuthLog(from: 99999999999999999999) { ok } }'))).toBeUndefined()
    expect(executeFnFor(plugin, parse('{ verifyAuthLog(from: 5) { ok } }'))).toBeTypeOf('function')
  })
})

describe('variables of compiled operations, over HTTP', () => {
  let app: TestApp
  let since: string
  beforeAll(async () => {
    app = await startTestApp()
    since = new Date(Date.now() - 60_000).toISOString()
    await signUpPerson(app)
  })
  afterAll(() => app.stop())

  const rootQuery = (query: string, variables: Record<string, unknown> = {}) => app.gql(query, { variables, token: app.rootToken })

  it('coerces a default value like a value sent (a DateTime default reaches the resolver as a date)', async () => {
    const typesSent = await rootQuery('query ($d: DateTime) { authLogTypes(since: $d) { type count } }', { d: since })
    const typesDefaulted = await rootQuery(`query ($d: DateTime = "${since}") { authLogTypes(since: $d) { type count } }`)
    expect(typesDefaulted).toEqual(typesSent)
    expect(typesSent.data.authLogTypes.length).toBeGreaterThan(0)

    const page = 'authLog(filter: $f, limit: 5) { entries { id } }'
    const pageSent = await rootQuery(`query ($f: AuthLogFilter) { ${page} }`, { f: { createdAfter: since } })
    const pageDefaulted = await rootQuery(`query ($f: AuthLogFilter = { createdAfter: "${since}" }) { ${page} }`)
    expect(pageDefaulted).toEqual(pageSent)
    expect(pageSent.data.authLog.entries.length).toBeGreaterThan(0)

    const stats = await rootQuery(`query ($d: DateTime = "${since}") { authLogStats(filter: { createdAfter: $d }, bucket: HOUR) { from total } }`)
    expect(stats.errors).toBeUndefined()
    expect(stats.data.authLogStats.from).toBe(since)
    // A value sent still wins over the default.
    const later = new Date().toISOString()
    const overridden = await rootQuery(`query ($d: DateTime = "${since}") { authLogStats(filter: { createdAfter: $d }, bucket: HOUR) { from } }`, { d: later })
    expect(overridden.data.authLogStats.from).toBe(later)
  })

  it('refuses a bad variable naming the variable and the path inside it, as BAD_USER_INPUT', async () => {
    const response = await rootQuery('query ($f: AuthLogFilter) { authLog(filter: $f) { hasMore } }', { f: { createdAfter: 'yesterday', success: 'yes' } })
    expect(response.data).toBeUndefined()
    expect(response.errors).toHaveLength(2)
    expect(response.errors![0]!.message).toMatch(/^Variable "\$f" got invalid value "yesterday" at "f\.createdAfter"/)
    expect(response.errors![1]!.message).toMatch(/^Variable "\$f" got invalid value "yes" at "f\.success"/)
    expect(response.errors!.map((error) => error.extensions?.code)).toEqual(['BAD_USER_INPUT', 'BAD_USER_INPUT'])
  })
})
