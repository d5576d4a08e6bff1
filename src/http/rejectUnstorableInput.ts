import { BREAK, GraphQLError, type DocumentNode, Kind, visit } from 'graphql'
import type { Plugin } from 'graphql-yoga'

const NUL = '\u0000'
/** A UTF-16 surrogate not paired with its other half: not Unicode, so PostgreSQL's jsonb refuses it. */
const LONE_SURROGATE = /\p{Surrogate}/u
/** JSON nested deeper than this is refused: no input needs it, and walking it (ours, Prisma's) recurses. */
export const MAX_INPUT_DEPTH = 64

const unstorableText = (text: string) => text.includes(NUL) || LONE_SURROGATE.test(text)

/** Why a variable's value cannot be taken, if it cannot: an unstorable string or key, or nesting past MAX_INPUT_DEPTH. Walked without recursion. */
function inputProblem(value: unknown): string | undefined {
  // The value itself is level 1 when it is an object or a list.
  const pending: [unknown, number][] = [[value, 1]]
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [current, depth] = next
    if (typeof current === 'string') {
      if (unstorableText(current)) return TEXT_PROBLEM
    } else if (typeof current === 'object' && current !== null) {
      if (depth > MAX_INPUT_DEPTH) return DEPTH_PROBLEM
      for (const [key, inner] of Object.entries(current)) {
        if (key === '__proto__') return KEY_PROBLEM
        if (unstorableText(key)) return TEXT_PROBLEM
        pending.push([inner, depth + 1])
      }
    }
  }
  return undefined
}

/** The first variable whose value cannot be taken, and why. */
function variableProblem(variables: Record<string, unknown>): { variable: string; problem: string } | undefined {
  for (const [variable, value] of Object.entries(variables)) {
    const problem = inputProblem(value)
    if (problem) return { variable, problem }
  }
  return undefined
}

const TEXT_PROBLEM = 'Text must not contain the NUL character (U+0000) or an unpaired UTF-16 surrogate.'
const DEPTH_PROBLEM = `Input values may be nested at most ${MAX_INPUT_DEPTH} levels deep.`
// Prisma and zod copy objects by assignment, and assigning "__proto__" sets a prototype instead: such
// a key was stored, logged or dropped inconsistently.
const KEY_PROBLEM = 'A JSON object must not have the key "__proto__".'

// Yoga's parser cache hands out the same document object for the same query text, so each
// document's literals are checked once, not on every request.
const literalProblemByDocument = new WeakMap<DocumentNode, string | null>()

/** The same checks for the document's literals (a string written with \u0000, a "__proto__" field, objects and lists nested in arguments). */
function literalProblem(document: DocumentNode): string | undefined {
  let problem = literalProblemByDocument.get(document)
  if (problem === undefined) {
    problem = null
    let depth = 0
    const nest = {
      enter() {
        if (++depth <= MAX_INPUT_DEPTH) return undefined
        problem = DEPTH_PROBLEM
        return BREAK
      },
      leave() {
        depth--
      },
    }
    visit(document, {
      [Kind.OBJECT]: nest,
      [Kind.LIST]: nest,
      StringValue(node) {
        if (!unstorableText(node.value)) return undefined
        problem = TEXT_PROBLEM
        return BREAK
      },
      ObjectField(node) {
        if (node.name.value !== '__proto__') return undefined
        problem = KEY_PROBLEM
        return BREAK
      },
    })
    literalProblemByDocument.set(document, problem)
  }
  return problem ?? undefined
}

/**
 * PostgreSQL text and jsonb cannot hold U+0000 or an unpaired surrogate, a "__proto__" key does not
 * survive being copied, and JSON nested thousands of levels deep overflows the stack of whatever
 * walks it: an operation carrying any of them (in a literal or a variable) is refused as bad input
 * before any resolver runs, rather than failing halfway or being stored other than logged.
 */
export function rejectUnstorableInput(): Plugin {
  return {
    onExecute: ({ args, setResultAndStopExecution }) => {
      const refuse = (problem: string, extensions: Record<string, string> = {}) =>
        setResultAndStopExecution({ errors: [new GraphQLError(problem, { extensions: { code: 'BAD_USER_INPUT', ...extensions } })] })
      const inVariable = variableProblem(args.variableValues ?? {})
      if (inVariable) return refuse(inVariable.problem, { variable: inVariable.variable })
      const inLiteral = literalProblem(args.document)
      if (inLiteral) refuse(inLiteral)
    },
  }
}
