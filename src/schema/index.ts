import { lexicographicSortSchema } from 'graphql'
import { builder } from './builder.js'
import './apiKeys/apiKeys.js'
import './audit/authLog.js'
import './auth/idp.js'
import './auth/otp.js'
import './auth/password.js'
import './auth/passwordless.js'
import './auth/passwordReset.js'
import './auth/signIn.js'
import './config/configuration.js'
import './identity/identity.js'
import './identity/profile.js'

/** The tenant API schema: each domain file registers its types and fields on the builder. */
export const schema = lexicographicSortSchema(builder.toSchema())
