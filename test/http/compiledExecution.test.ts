import { parse } from 'graphql'
import { describe, expect, it } from 'vitest'
import { useCompiledExecution } from '../../src/http/compiledExecution.js'
import { schema } from '../../src/schema/index.js'

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
