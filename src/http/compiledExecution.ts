import type { DocumentNode, GraphQLSchema } from 'graphql'
import { type CompiledQuery, compileQuery, isCompiledQuery } from 'graphql-jit'
import type { Plugin } from 'graphql-yoga'

/**
 * Runs each operation through a function graphql-jit compiles for it once, instead of walking the
 * query for every object of the result: a page of 100 authLog entries is 1,500 fields, and this
 * took about a quarter off the server's CPU for such a request (README, Benchmark).
 *
 * Yoga's parser cache hands out the same document object for the same query text, so documents
 * key the compiled functions and leave this cache together with the parser's. Compiling a new
 * query text costs about what parsing and validating it does (0.4–1.1 ms for authLog's page), and
 * graphql-armor's limits bound both. An operation that
 * graphql-jit cannot compile runs through yoga's executor as before: graphql-jit writes literal
 * arguments into the generated code as JSON, which has no bigint (`verifyAuthLog(to:
 * 99999999999999999999)`), and the executor then answers as it always has.
 */
export function useCompiledExecution(): Plugin {
  const compiled = new WeakMap<DocumentNode, Map<string | undefined, CompiledQuery | null>>()

  function compiledOperation(schema: GraphQLSchema, document: DocumentNode, operationName: string | undefined): CompiledQuery | null {
    let operations = compiled.get(document)
    if (!operations) compiled.set(document, (operations = new Map()))
    let operation = operations.get(operationName)
    if (operation === undefined) {
      const result = compileQuery(schema, document, operationName)
      operation = isCompiledQuery(result) ? result : null
      operations.set(operationName, operation)
    }
    return operation
  }

  return {
    onExecute({ args, setExecuteFn }) {
      const operation = compiledOperation(args.schema, args.document, args.operationName ?? undefined)
      if (operation) setExecuteFn((execution) => operation.query(execution.rootValue, execution.contextValue, execution.variableValues))
    },
  }
}
