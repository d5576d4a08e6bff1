import { invite, unmanagedInvite } from '../../tenant/invites/invites.js'
import { builder } from '../builder.js'
import { membershipValidationField } from '../apiKeys/apiKeys.js'
import { badInputError, rejectingInvalidInput } from '../errors.js'
import { Person } from '../identity/identity.js'
import { MembershipInput } from '../projects/membershipTypes.js'
import { defineResponse } from '../responses.js'

const InviteMethod = builder.enumType('InviteMethod', { values: ['CREATE_PASSWORD', 'RESET_PASSWORD'] as const })

const InviteOptions = builder.inputType('InviteOptions', {
  fields: (t) => ({
    method: t.field({
      type: InviteMethod,
      required: false,
      description: 'Either way a new person is mailed a token to set their password; Custos never mails a password.',
    }),
    mailVariant: t.string({ required: false }),
  }),
})

const UnmanagedInviteOptions = builder.inputType('UnmanagedInviteOptions', {
  fields: (t) => ({
    password: t.string({ required: false, description: 'The new person\'s password.' }),
    resetTokenHash: t.string({ required: false, description: 'sha256 hex of a password reset token you deliver yourself.' }),
  }),
})

const InviteResponse = defineResponse('Invite', ['PROJECT_NOT_FOUND', 'ALREADY_MEMBER', 'INVALID_MEMBERSHIP', 'INVALID_EMAIL_FORMAT'] as const, {
  result: builder.simpleObject('InviteResult', { fields: (t) => ({ person: t.field({ type: Person }), isNew: t.boolean() }) }),
  extendError: membershipValidationField,
})

const inviteArgs = (t: Parameters<Parameters<typeof builder.mutationFields>[0]>[0]) => ({
  email: t.arg.string({ required: true }),
  name: t.arg.string({ required: false }),
  projectSlug: t.arg.string({ required: true }),
  memberships: t.arg({ type: [MembershipInput], required: true }),
})

builder.mutationFields((t) => ({
  invite: t.field({
    type: InviteResponse,
    nullable: true,
    description: 'Adds a person (created when new) to a project and mails them (person_invite).',
    authScopes: (_root, args) => ({ projectPrivilege: { privilege: 'person:invite', projectSlug: args.projectSlug } }),
    args: { ...inviteArgs(t), options: t.arg({ type: InviteOptions, required: false }) },
    resolve: (_root, args, context) => rejectingInvalidInput(() => invite(context, args, args.options ?? {})),
  }),
  unmanagedInvite: t.field({
    type: InviteResponse,
    nullable: true,
    description: 'Like invite, but sends no mail; a new person gets the given password or reset token hash.',
    authScopes: (_root, args) => ({ projectPrivilege: { privilege: 'person:unmanagedInvite', projectSlug: args.projectSlug } }),
    args: {
      ...inviteArgs(t),
      options: t.arg({ type: UnmanagedInviteOptions, required: false }),
      password: t.arg.string({ required: false, deprecationReason: 'Use options' }),
    },
    resolve: (_root, args, context) => {
      // Two passwords, one of them dropped unseen: which did the caller mean?
      if (args.password != null && args.options?.password != null) throw badInputError('Give the password once, as options.password (password is deprecated).', 'password')
      return rejectingInvalidInput(() =>
        unmanagedInvite(context, args, {
          password: args.options?.password ?? args.password,
          resetTokenHash: args.options?.resetTokenHash,
        }),
      )
    },
  }),
}))
