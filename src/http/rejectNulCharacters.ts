import { BREAK, GraphQLError, type DocumentNode, visit } from 'graphql'
import type { Plugin } from 'graphql-yoga'

const NUL = '\u0000'

/** Whether a JSON value holds U+0000 in any string or key. */
function holdsNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes(NUL)
  if (Array.isArray(value)) return value.some(holdsNul)
  if (typeof value === 'object' && value !== null) return Object.entries(value).some(([key, inner]) => key.includes(NUL) || holdsNul(inner))
  return false
}

// Yoga's parser cache hands out the same document object for the same query text, so each
// document's literals are scanned once, not on every request.
const literalNulByDocument = new WeakMap<DocumentNode, boolean>()

/** Whether a string literal of the document holds U+0000 (written as \u0000 in the query). */
function literalHoldsNul(document: DocumentNode): boolean {
  const known = literalNulByDocument.get(document)
  if (known !== undefined) return known
  let found = false
  visit(document, {
    StringValue(node) {
      if (!node.value.includes(NUL)) return undefined
      found = true
      return BREAK
    },
  })
  literalNulByDocument.set(document, found)
  return found
}

/**
 * PostgreSQL text and jsonb cannot hold U+0000, so an operation carrying one
 * (in a literal or a variable) is refused as bad input before any resolver
 * runs, rather than failing halfway as an internal error.
 */
export function rejectNulCharacters(): Plugin {
  return {
    onExecute: ({ args, setResultAndStopExecution }) => {
      if (holdsNul(args.variableValues) || literalHoldsNul(args.document)) {
        setResultAndStopExecution({
          errors: [new GraphQLError('Text must not contain the NUL character (U+0000).', { extensions: { code: 'BAD_USER_INPUT' } })],
        })
      }
    },
  }
}
