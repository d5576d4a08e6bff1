import { GraphQLError } from 'graphql'

/** The caller lacks the privilege; nothing ran and nothing was recorded. */
export const forbiddenError = (message: string) => new GraphQLError(message, { extensions: { code: 'FORBIDDEN', http: { status: 200 } } })

/** An argument is out of range or malformed; nothing ran. */
export const badInputError = (message: string, argument?: string) =>
  new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', ...(argument ? { argument } : {}) } })

/** The bearer token is unknown, expired or disabled. */
export const unauthenticatedError = (message: string) =>
  new GraphQLError(message, { extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } } })
