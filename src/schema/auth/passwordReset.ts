import { checkResetPasswordToken, createResetPasswordRequest, resetPassword } from '../../tenant/auth/passwordReset.js'
import { builder } from '../builder.js'
import { defineResponse } from '../responses.js'
import { CAPTCHA_TOKEN_DESCRIPTION, retryAfterField, weakPasswordReasonsField } from './signIn.js'

export const MailOptionsFields = {
  mailProject: { required: false, description: 'Slug of the project whose mail template to use.' },
  mailVariant: { required: false, description: 'Template variant, e.g. a locale.' },
} as const

const CreateResetPasswordRequestOptions = builder.inputType('CreateResetPasswordRequestOptions', {
  fields: (t) => ({ mailProject: t.string(MailOptionsFields.mailProject), mailVariant: t.string(MailOptionsFields.mailVariant) }),
})

const CheckResetPasswordTokenCode = builder.enumType('CheckResetPasswordTokenCode', {
  values: ['VALID', 'REQUEST_NOT_FOUND', 'TOKEN_NOT_FOUND', 'TOKEN_INVALID', 'TOKEN_USED', 'TOKEN_EXPIRED'] as const,
})

const CreatePasswordResetRequestResponse = defineResponse(
  'CreatePasswordResetRequest',
  ['PERSON_NOT_FOUND', 'INVALID_CAPTCHA', 'RATE_LIMIT_EXCEEDED'] as const,
  { extendError: retryAfterField },
)
const ResetPasswordResponse = defineResponse(
  'ResetPassword',
  ['TOKEN_NOT_FOUND', 'TOKEN_INVALID', 'TOKEN_USED', 'TOKEN_EXPIRED', 'PASSWORD_TOO_WEAK'] as const,
  { extendError: weakPasswordReasonsField },
)

builder.queryField('checkResetPasswordToken', (t) =>
  t.field({
    type: CheckResetPasswordTokenCode,
    description: 'Whether a reset token still works (VALID), without using it.',
    authScopes: { privilege: 'person:resetPassword' },
    args: { requestId: t.arg.string({ required: true }), token: t.arg.string({ required: true }) },
    resolve: (_root, args, context) => checkResetPasswordToken(context.prisma, args.requestId, args.token),
  }),
)

builder.mutationFields((t) => ({
  createResetPasswordRequest: t.field({
    type: CreatePasswordResetRequestResponse,
    nullable: true,
    description: 'Mails a reset token. Answers alike for unknown emails unless login.revealUserExists is on.',
    authScopes: { privilege: 'person:resetPassword' },
    args: {
      email: t.arg.string({ required: true }),
      options: t.arg({ type: CreateResetPasswordRequestOptions, required: false }),
      captchaToken: t.arg.string({ required: false, description: CAPTCHA_TOKEN_DESCRIPTION }),
    },
    resolve: (_root, args, context) => createResetPasswordRequest(context, args.email, args.options, args.captchaToken),
  }),
  resetPassword: t.field({
    type: ResetPasswordResponse,
    nullable: true,
    description: 'Sets a new password with a reset token and ends every session of the person.',
    authScopes: { privilege: 'person:resetPassword' },
    args: { token: t.arg.string({ required: true }), password: t.arg.string({ required: true }) },
    resolve: (_root, args, context) => resetPassword(context, args.token, args.password),
  }),
}))
