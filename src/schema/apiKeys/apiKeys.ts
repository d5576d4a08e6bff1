import { createGlobalApiKey, createProjectApiKey, disableApiKey } from '../../tenant/apiKeys/apiKeys.js'
import { builder } from '../builder.js'
import { Identity } from '../identity/identity.js'
import { rejectingInvalidInput } from '../errors.js'
import { MembershipInput } from '../projects/membershipTypes.js'
import { defineResponse } from '../responses.js'

export const CreateApiKeyOptions = builder.inputType('CreateApiKeyOptions', {
  fields: (t) => ({
    trustForwardedClientInfo: t.boolean({
      required: false,
      description: 'The key may name its own client with X-Contember-Client-IP / X-Contember-Client-User-Agent.',
    }),
  }),
})

const MembershipValidationError = builder.simpleObject('MembershipValidationError', {
  fields: (t) => ({
    code: t.string(),
    role: t.string(),
    variable: t.string({ nullable: true }),
  }),
})

export const ApiKeyWithToken = builder.simpleObject('ApiKeyWithToken', {
  fields: (t) => ({
    id: t.string(),
    token: t.string({ nullable: true, description: 'Shown only once, at creation.' }),
    identity: t.field({ type: Identity }),
  }),
})

type ErrorFieldBuilder = Parameters<NonNullable<NonNullable<Parameters<typeof defineResponse>[2]>['extendError']>>[0]

/** The `membershipValidation` error field of every response to an operation that takes memberships. */
export const membershipValidationField = (t: ErrorFieldBuilder) => ({
  membershipValidation: t.field({
    type: [MembershipValidationError],
    nullable: true,
    resolve: (error) => (error.membershipValidation as never) ?? null,
  }),
})

export const CreateApiKeyResponse = defineResponse('CreateApiKey', ['PROJECT_NOT_FOUND', 'INVALID_MEMBERSHIP'] as const, {
  result: builder.simpleObject('CreateApiKeyResult', { fields: (t) => ({ apiKey: t.field({ type: ApiKeyWithToken }) }) }),
  extendError: membershipValidationField,
})

const DisableApiKeyResponse = defineResponse('DisableApiKey', ['KEY_NOT_FOUND'] as const)

builder.mutationFields((t) => ({
  createGlobalApiKey: t.field({
    type: CreateApiKeyResponse,
    nullable: true,
    authScopes: { privilege: 'apiKey:createGlobal' },
    args: {
      description: t.arg.string({ required: true }),
      roles: t.arg.stringList({ required: false }),
      tokenHash: t.arg.string({ required: false }),
      options: t.arg({ type: CreateApiKeyOptions, required: false }),
    },
    resolve: (_root, args, context) =>
      rejectingInvalidInput(() =>
        createGlobalApiKey(context, {
          description: args.description,
          roles: args.roles ?? [],
          tokenHash: args.tokenHash,
          trustForwardedClientInfo: args.options?.trustForwardedClientInfo,
        }),
      ),
  }),
  createApiKey: t.field({
    type: CreateApiKeyResponse,
    nullable: true,
    description: 'A permanent API key that is a member of one project (api_key_create).',
    authScopes: (_root, args) => ({ projectPrivilege: { privilege: 'apiKey:create', projectSlug: args.projectSlug } }),
    args: {
      projectSlug: t.arg.string({ required: true }),
      memberships: t.arg({ type: [MembershipInput], required: true }),
      description: t.arg.string({ required: true }),
      tokenHash: t.arg.string({ required: false }),
      options: t.arg({ type: CreateApiKeyOptions, required: false }),
    },
    resolve: (_root, args, context) =>
      rejectingInvalidInput(() =>
        createProjectApiKey(context, { ...args, trustForwardedClientInfo: args.options?.trustForwardedClientInfo }),
      ),
  }),
  disableApiKey: t.field({
    type: DisableApiKeyResponse,
    nullable: true,
    authScopes: { privilege: 'apiKey:disable' },
    args: { id: t.arg.string({ required: true }) },
    resolve: (_root, args, context) => disableApiKey(context, args.id),
  }),
}))
