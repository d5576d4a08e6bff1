import type { z } from 'zod'

/**
 * An argument the operation's own error codes have no word for (a malformed
 * slug, a config that is not a JSON object). Thrown inside runCommand, it
 * rolls the transaction back; the schema answers BAD_USER_INPUT.
 */
export class InvalidInputError extends Error {
  override readonly name = 'InvalidInputError'
  constructor(
    message: string,
    readonly argument: string,
  ) {
    super(message)
  }
}

/**
 * The longest free text an operation stores and records (a name, a key's description, a reason):
 * anything longer is no name, and would fill the log (a 900 KB description was stored and logged).
 */
export const TEXT_LIMIT = 1000

/** Refuses text longer than TEXT_LIMIT, naming its argument. */
export function requireTextWithinLimit(value: string | null | undefined, argument: string): void {
  if (value != null && value.length > TEXT_LIMIT) throw new InvalidInputError(`${argument} is longer than ${TEXT_LIMIT} characters.`, argument)
}

/** Whether a JSON value is an object (not an array, string or null). */
export const isJsonObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/** A JSON object: what config arguments must be. */
export function requireJsonObject(value: unknown, argument: string): Record<string, unknown> {
  if (!isJsonObject(value)) {
    throw new InvalidInputError(`${argument} must be a JSON object.`, argument)
  }
  return value as Record<string, unknown>
}

/** A zod error as one line: each issue's path (or `subject` for the whole value) and rule, never the value. */
export const describeIssues = (error: z.ZodError, subject: string) =>
  error.issues.map((issue) => `${issue.path.join('.') || subject}: ${issue.message}`).join('; ')
