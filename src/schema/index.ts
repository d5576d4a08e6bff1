import { lexicographicSortSchema } from 'graphql'
import { builder } from './builder.js'
import './apiKeys/apiKeys.js'
import './audit/authLog.js'
import './audit/integrity.js'
import './auth/signIn.js'
import './identity/identity.js'

/** The tenant API schema: each domain file registers its types and fields on the builder. */
export const schema = lexicographicSortSchema(builder.toSchema())
