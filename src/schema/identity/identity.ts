import { changeGlobalRoles } from '../../tenant/identity/globalRoles.js'
import { builder } from '../builder.js'
import { defineResponse } from '../responses.js'

export const Person = builder.prismaObject('Person', {
  fields: (t) => ({
    id: t.exposeString('id'),
    email: t.exposeString('email', { nullable: true }),
    name: t.exposeString('name', { nullable: true }),
    otpEnabled: t.boolean({ resolve: (person) => person.otpActivatedAt !== null }),
    passwordlessEnabled: t.exposeBoolean('passwordlessEnabled', { nullable: true }),
    emailVerified: t.boolean({ resolve: () => false }),
    identity: t.relation('identity'),
  }),
})

export const Identity = builder.prismaObject('Identity', {
  fields: (t) => ({
    id: t.exposeString('id'),
    description: t.exposeString('description', { nullable: true }),
    roles: t.exposeStringList('roles', { nullable: true }),
    person: t.relation('person', { nullable: true }),
  }),
})

builder.queryField('me', (t) =>
  t.prismaField({
    type: 'Identity',
    description: 'The identity behind the bearer token.',
    authScopes: { authenticated: true },
    resolve: (query, _root, _args, context) =>
      context.prisma.identity.findUniqueOrThrow({ ...query, where: { id: context.caller!.identityId } }),
  }),
)

const roleChangeResponse = (name: string) =>
  defineResponse(name, ['IDENTITY_NOT_FOUND', 'INVALID_ROLE'] as const, {
    result: builder.simpleObject(`${name}Result`, { fields: (t) => ({ identity: t.field({ type: Identity }) }) }),
  })
const AddGlobalIdentityRolesResponse = roleChangeResponse('AddGlobalIdentityRoles')
const RemoveGlobalIdentityRolesResponse = roleChangeResponse('RemoveGlobalIdentityRoles')

builder.mutationFields((t) => ({
  addGlobalIdentityRoles: t.field({
    type: AddGlobalIdentityRolesResponse,
    nullable: true,
    authScopes: { privilege: 'identity:addGlobalRoles' },
    args: { identityId: t.arg.string({ required: true }), roles: t.arg.stringList({ required: true }) },
    resolve: (_root, args, context) => changeGlobalRoles(context, 'grant', args.identityId, args.roles),
  }),
  removeGlobalIdentityRoles: t.field({
    type: RemoveGlobalIdentityRolesResponse,
    nullable: true,
    authScopes: { privilege: 'identity:removeGlobalRoles' },
    args: { identityId: t.arg.string({ required: true }), roles: t.arg.stringList({ required: true }) },
    resolve: (_root, args, context) => changeGlobalRoles(context, 'revoke', args.identityId, args.roles),
  }),
}))
