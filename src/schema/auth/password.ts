import { changeMyPassword, changePassword } from '../../tenant/auth/passwordChange.js'
import { builder } from '../builder.js'
import { defineResponse } from '../responses.js'
import { retryAfterField, weakPasswordReasonsField } from './signIn.js'

const ChangePasswordResponse = defineResponse('ChangePassword', ['PERSON_NOT_FOUND', 'TOO_WEAK'] as const, {
  extendError: weakPasswordReasonsField,
})
const ChangeMyPasswordResponse = defineResponse('ChangeMyPassword', ['TOO_WEAK', 'NOT_A_PERSON', 'INVALID_PASSWORD', 'NO_PASSWORD_SET', 'RATE_LIMIT_EXCEEDED'] as const, {
  extendError: (t) => ({ ...weakPasswordReasonsField(t), ...retryAfterField(t) }),
})

builder.mutationFields((t) => ({
  changePassword: t.field({
    type: ChangePasswordResponse,
    nullable: true,
    description: "Sets another person's password; their sessions end.",
    authScopes: { privilege: 'person:changePassword' },
    args: { personId: t.arg.string({ required: true }), password: t.arg.string({ required: true }) },
    resolve: (_root, args, context) => changePassword(context, args.personId, args.password),
  }),
  changeMyPassword: t.field({
    type: ChangeMyPasswordResponse,
    nullable: true,
    description: "Changes the caller's password; their other sessions end.",
    authScopes: { privilege: 'person:self' },
    args: { currentPassword: t.arg.string({ required: true }), newPassword: t.arg.string({ required: true }) },
    resolve: (_root, args, context) => changeMyPassword(context, args.currentPassword, args.newPassword),
  }),
}))
