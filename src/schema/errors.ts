import { GraphQLError } from 'graphql'
import { InvalidInputError } from '../tenant/invalidInput.js'

/** The caller lacks the privilege; nothing ran and nothing was recorded. */
export const forbiddenError = (message: string) => new GraphQLError(message, { extensions: { code: 'FORBIDDEN', http: { status: 200 } } })

/** An argument is out of range or malformed; nothing ran. */
export const badInputError = (message: string, argument?: string) =>
  new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', ...(argument ? { argument } : {}) } })

/** The bearer token is unknown, expired or disabled. */
export const unauthenticatedError = (message: string) =>
  new GraphQLError(message, { extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } } })

/** Runs a resolver, turning the tenant's InvalidInputError into BAD_USER_INPUT (its transaction is already rolled back). */
export async function rejectingInvalidInput<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (error) {
    if (error instanceof InvalidInputError) throw badInputError(error.message, error.argument)
    throw error
  }
}
