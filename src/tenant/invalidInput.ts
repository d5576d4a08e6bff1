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

/** A JSON object (not an array, string or null): what config arguments must be. */
export function requireJsonObject(value: unknown, argument: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidInputError(`${argument} must be a JSON object.`, argument)
  }
  return value as Record<string, unknown>
}

/** A zod error as one line: each issue's path (or `subject` for the whole value) and rule, never the value. */
export const describeIssues = (error: z.ZodError, subject: string) =>
  error.issues.map((issue) => `${issue.path.join('.') || subject}: ${issue.message}`).join('; ')
