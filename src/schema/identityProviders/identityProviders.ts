import { withoutSecrets } from '../../tenant/identityProviders/configuration.js'
import { addIdentityProvider, setIdentityProviderEnabled, updateIdentityProvider } from '../../tenant/identityProviders/identityProviders.js'
import { builder } from '../builder.js'
import { rejectingInvalidInput } from '../errors.js'
import { defineResponse } from '../responses.js'

const IDPOptionsOutput = builder.simpleObject('IDPOptionsOutput', {
  fields: (t) => ({ autoSignUp: t.boolean(), exclusive: t.boolean(), initReturnsConfig: t.boolean() }),
})

builder.prismaObject('IdentityProvider', {
  fields: (t) => ({
    slug: t.exposeString('slug'),
    type: t.exposeString('type'),
    configuration: t.field({
      type: 'Json',
      description: 'Secret-bearing keys (clientSecret, privateKey, ...) are write-only and left out; use updateIDP with mergeConfiguration to keep them.',
      resolve: (provider) => withoutSecrets(provider.type, provider.configuration),
    }),
    disabledAt: t.expose('disabledAt', { type: 'DateTime', nullable: true }),
    options: t.field({
      type: IDPOptionsOutput,
      resolve: ({ autoSignUp, exclusive, initReturnsConfig }) => ({ autoSignUp, exclusive, initReturnsConfig }),
    }),
  }),
})

const IDPOptions = builder.inputType('IDPOptions', {
  fields: (t) => ({
    autoSignUp: t.boolean({ required: false }),
    exclusive: t.boolean({ required: false }),
    initReturnsConfig: t.boolean({ required: false }),
  }),
})

const AddIDPResponse = defineResponse('AddIDP', ['ALREADY_EXISTS', 'UNKNOWN_TYPE', 'INVALID_CONFIGURATION'] as const)
const UpdateIDPResponse = defineResponse('UpdateIDP', ['NOT_FOUND', 'INVALID_CONFIGURATION'] as const)
const DisableIDPResponse = defineResponse('DisableIDP', ['NOT_FOUND'] as const)
const EnableIDPResponse = defineResponse('EnableIDP', ['NOT_FOUND'] as const)

builder.queryField('identityProviders', (t) =>
  t.prismaField({
    type: ['IdentityProvider'],
    authScopes: { privilege: 'idp:view' },
    resolve: (query, _root, _args, context) => context.prisma.identityProvider.findMany({ ...query, orderBy: { slug: 'asc' } }),
  }),
)

builder.mutationFields((t) => ({
  addIDP: t.field({
    type: AddIDPResponse,
    nullable: true,
    description: 'Adds an identity provider (idp_create records the configuration key names only).',
    authScopes: { privilege: 'idp:manage' },
    args: {
      identityProvider: t.arg.string({ required: true }),
      type: t.arg.string({ required: true }),
      configuration: t.arg({ type: 'Json', required: true }),
      options: t.arg({ type: IDPOptions, required: false }),
    },
    resolve: (_root, args, context) =>
      rejectingInvalidInput(() => addIdentityProvider(context, { ...args, configuration: args.configuration })),
  }),
  updateIDP: t.field({
    type: UpdateIDPResponse,
    nullable: true,
    authScopes: { privilege: 'idp:manage' },
    args: {
      identityProvider: t.arg.string({ required: true }),
      type: t.arg.string({ required: false }),
      configuration: t.arg({ type: 'Json', required: false }),
      options: t.arg({ type: IDPOptions, required: false }),
      mergeConfiguration: t.arg.boolean({ required: false }),
    },
    resolve: (_root, args, context) => updateIdentityProvider(context, args),
  }),
  disableIDP: t.field({
    type: DisableIDPResponse,
    nullable: true,
    authScopes: { privilege: 'idp:manage' },
    args: { identityProvider: t.arg.string({ required: true }) },
    resolve: (_root, args, context) => setIdentityProviderEnabled(context, args.identityProvider, false),
  }),
  enableIDP: t.field({
    type: EnableIDPResponse,
    nullable: true,
    authScopes: { privilege: 'idp:manage' },
    args: { identityProvider: t.arg.string({ required: true }) },
    resolve: (_root, args, context) => setIdentityProviderEnabled(context, args.identityProvider, true),
  }),
}))
