import {
  type ASTVisitor,
  type DocumentNode,
  type FragmentDefinitionNode,
  GraphQLError,
  type GraphQLSchema,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  getOperationAST,
  parse,
} from 'graphql'

/**
 * Root fields with this in their extensions read across the audit log: a page of up to 500
 * entries, counts over a window, a walk of the hash chain. Aliases would let one operation run
 * any of them 50 times (graphql-armor's alias limit), and a batch ten times that, so a request may hold only a few.
 */
export const READS_AUDIT_LOG = { readsAuditLog: true } as const

/** At most this many log reads per request: in one operation, or all the operations of a batch together. */
export const MAX_LOG_READS = 5

/**
 * The response keys of the log-reading root fields `operation` selects (fields that merge run
 * once), through inline fragments and fragment spreads.
 */
function logReadKeys(schema: GraphQLSchema, operation: OperationDefinitionNode, fragment: (name: string) => FragmentDefinitionNode | undefined): Set<string> {
  const rootType = operation.operation === 'mutation' ? schema.getMutationType() : schema.getQueryType()
  const responseKeys = new Set<string>()
  if (!rootType) return responseKeys
  const fields = rootType.getFields()
  const visitedFragments = new Set<string>()
  const collect = (selectionSet: SelectionSetNode) => {
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        if (fields[selection.name.value]?.extensions.readsAuditLog) responseKeys.add(selection.alias?.value ?? selection.name.value)
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        collect(selection.selectionSet)
      } else if (!visitedFragments.has(selection.name.value)) {
        visitedFragments.add(selection.name.value)
        const definition = fragment(selection.name.value)
        if (definition) collect(definition.selectionSet)
      }
    }
  }
  collect(operation.selectionSet)
  return responseKeys
}

/** Validation rule: at most MAX_LOG_READS log-reading root fields per operation. */
export function logReadsPerOperation(context: ValidationContext): ASTVisitor {
  return {
    OperationDefinition(operation) {
      const responseKeys = logReadKeys(context.getSchema(), operation, (name) => context.getFragment(name) ?? undefined)
      if (responseKeys.size > MAX_LOG_READS) {
        context.reportError(
          new GraphQLError(
            `An operation may read the audit log at most ${MAX_LOG_READS} times; this one reads it ${responseKeys.size} times (${[...responseKeys].join(', ')}).`,
            { nodes: operation },
          ),
        )
      }
    },
  }
}

/**
 * How many times the operations of a batch read the log together. Each operation's own count is
 * checked by the rule above; an element that is not an operation, does not parse within
 * `maxTokens`, or names no operation of its document, counts 0 here and is refused by yoga.
 */
export function logReadsInBatch(schema: GraphQLSchema, batch: readonly unknown[], maxTokens: number): number {
  let reads = 0
  for (const params of batch) {
    // Yoga answers an element that is not an object with a query string BAD_REQUEST.
    const { query, operationName } = (typeof params === 'object' && params !== null ? params : {}) as { query?: unknown; operationName?: unknown }
    if (typeof query !== 'string') continue
    let document: DocumentNode
    try {
      document = parse(query, { maxTokens })
    } catch {
      continue
    }
    const operation = getOperationAST(document, typeof operationName === 'string' ? operationName : undefined)
    if (!operation) continue
    const fragments = new Map<string, FragmentDefinitionNode>()
    for (const definition of document.definitions) if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition)
    reads += logReadKeys(schema, operation, (name) => fragments.get(name)).size
  }
  return reads
}
