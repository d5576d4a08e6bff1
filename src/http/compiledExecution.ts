import {
  type DocumentNode,
  type ExecutionResult,
  type GraphQLSchema,
  type OperationDefinitionNode,
  getOperationAST,
  getVariableValues,
  valueFromASTUntyped,
} from 'graphql'
import { type CompiledQuery, compileQuery, isCompiledQuery } from 'graphql-jit'
import type { Plugin } from 'graphql-yoga'

interface CompiledOperation {
  readonly query: CompiledQuery
  readonly definition: OperationDefinitionNode
  /** The variables declared with a default value. */
  readonly defaulted: OperationDefinitionNode['variableDefinitions']
}

/**
 * graphql-jit writes a variable's default into its generated code as the JSON of the *coerced*
 * value, so a DateTime default reached resolvers as a string, not a Date. Defaults are filled in
 * here as the client wrote them instead, and coerced like any variable.
 */
function withDefaults(operation: CompiledOperation, variables: Record<string, unknown>): Record<string, unknown> {
  if (!operation.defaulted?.length) return variables
  const filled = { ...variables }
  for (const { variable, defaultValue } of operation.defaulted) {
    if (filled[variable.name.value] === undefined) filled[variable.name.value] = valueFromASTUntyped(defaultValue!)
  }
  return filled
}

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
 *
 * Variables are checked by graphql-js first, so a bad one is refused with the executor's own
 * message, naming the variable and the path inside it (graphql-jit's names only the innermost field).
 */
export function useCompiledExecution(): Plugin {
  const compiled = new WeakMap<DocumentNode, Map<string | undefined, CompiledOperation | null>>()

  function compiledOperation(schema: GraphQLSchema, document: DocumentNode, operationName: string | undefined): CompiledOperation | null {
    let operations = compiled.get(document)
    if (!operations) compiled.set(document, (operations = new Map()))
    let operation = operations.get(operationName)
    if (operation === undefined) {
      const query = compileQuery(schema, document, operationName)
      const definition = getOperationAST(document, operationName)
      operation =
        isCompiledQuery(query) && definition
          ? { query, definition, defaulted: definition.variableDefinitions?.filter((variable) => variable.defaultValue !== undefined) }
          : null
      operations.set(operationName, operation)
    }
    return operation
  }

  return {
    onExecute({ args, setExecuteFn }) {
      const operation = compiledOperation(args.schema, args.document, args.operationName ?? undefined)
      if (!operation) return
      setExecuteFn((execution): ExecutionResult | Promise<ExecutionResult> => {
        const variables = (execution.variableValues ?? {}) as Record<string, unknown>
        const checked = getVariableValues(args.schema, operation.definition.variableDefinitions ?? [], variables)
        if (checked.errors) return { errors: checked.errors }
        return operation.query.query(execution.rootValue, execution.contextValue, withDefaults(operation, variables))
      })
    },
  }
}
