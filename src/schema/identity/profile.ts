import { changeMyProfile, changeProfile } from '../../tenant/persons/profile.js'
import { builder } from '../builder.js'
import { rejectingInvalidInput } from '../errors.js'
import { defineResponse } from '../responses.js'

const ChangeProfileResponse = defineResponse('ChangeProfile', ['PERSON_NOT_FOUND', 'INVALID_EMAIL_FORMAT', 'EMAIL_ALREADY_EXISTS'] as const)
const ChangeMyProfileResponse = defineResponse('ChangeMyProfile', ['NOT_A_PERSON', 'INVALID_EMAIL_FORMAT', 'EMAIL_ALREADY_EXISTS'] as const)

builder.mutationFields((t) => ({
  changeProfile: t.field({
    type: ChangeProfileResponse,
    nullable: true,
    authScopes: { privilege: 'person:changeProfile' },
    args: {
      personId: t.arg.string({ required: true }),
      email: t.arg.string({ required: false }),
      name: t.arg.string({ required: false }),
    },
    resolve: (_root, args, context) => rejectingInvalidInput(() => changeProfile(context, args.personId, args)),
  }),
  changeMyProfile: t.field({
    type: ChangeMyProfileResponse,
    nullable: true,
    authScopes: { privilege: 'person:self' },
    args: { email: t.arg.string({ required: false }), name: t.arg.string({ required: false }) },
    resolve: (_root, args, context) => rejectingInvalidInput(() => changeMyProfile(context, args)),
  }),
}))
