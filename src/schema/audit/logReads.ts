import { type ASTVisitor, GraphQLError, Kind, type SelectionSetNode, type ValidationContext } from 'graphql'

/**
 * Root fields with this in their extensions read across the audit log: a page of up to 500
 * entries, counts over a window, a walk of the hash chain. Aliases would let one operation run
 * any of them 50 times (graphql-armor's alias limit), so an operation may hold only a few.
 */
export const READS_AUDIT_LOG = { readsAuditLog: true } as const

const MAX_LOG_READS_PER_OPERATION = 5

/**
 * Validation rule: at most MAX_LOG_READS_PER_OPERATION log-reading root fields per operation,
 * counted by response key (fields that merge run once), through inline fragments and fragment
 * spreads.
 */
export function logReadsPerOperation(context: ValidationContext): ASTVisitor {
  const schema = context.getSchema()
  return {
    OperationDefinition(operation) {
      const rootType = operation.operation === 'mutation' ? schema.getMutationType() : schema.getQueryType()
      if (!rootType) return
      const fields = rootType.getFields()
      const responseKeys = new Set<string>()
      const visitedFragments = new Set<string>()
      const collect = (selectionSet: SelectionSetNode) => {
        for (const selection of selectionSet.selections) {
          if (selection.kind === Kind.FIELD) {
            if (fields[selection.name.value]?.extensions.readsAuditLog) responseKeys.add(selection.alias?.value ?? selection.name.value)
          } else if (selection.kind === Kind.INLINE_FRAGMENT) {
            collect(selection.selectionSet)
          } else if (!visitedFragments.has(selection.name.value)) {
            visitedFragments.add(selection.name.value)
            const fragment = context.getFragment(selection.name.value)
            if (fragment) collect(fragment.selectionSet)
          }
        }
      }
      collect(operation.selectionSet)
      if (responseKeys.size > MAX_LOG_READS_PER_OPERATION) {
        context.reportError(
          new GraphQLError(
            `An operation may read the audit log at most ${MAX_LOG_READS_PER_OPERATION} times; this one reads it ${responseKeys.size} times (${[...responseKeys].join(', ')}).`,
            { nodes: operation },
          ),
        )
      }
    },
  }
}
