import { lexicographicSortSchema } from 'graphql'
import { builder } from './builder.js'
import './apiKeys/apiKeys.js'
import './audit/authLog.js'
import './auth/signIn.js'
import './identity/identity.js'
import './identityProviders/identityProviders.js'
import './invites/invites.js'
import './mailTemplates/mailTemplates.js'
import './projects/projects.js'
import './sessions/sessions.js'

/** The tenant API schema: each domain file registers its types and fields on the builder. */
export const schema = lexicographicSortSchema(builder.toSchema())
