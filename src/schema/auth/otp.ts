import { confirmOtp, disableOtp, prepareOtp, regenerateBackupCodes } from '../../tenant/auth/otp.js'
import { builder } from '../builder.js'
import { defineResponse } from '../responses.js'

const PrepareOtpResponse = defineResponse('PrepareOtp', ['NOT_A_PERSON'] as const, {
  result: builder.simpleObject('PrepareOtpResult', { fields: (t) => ({ otpUri: t.string(), otpSecret: t.string() }) }),
})
/** Backup codes are in this one answer only: the server keeps just their hashes. */
const backupCodesResult = (name: string) =>
  builder.simpleObject(name, {
    fields: (t) => ({ backupCodes: t.stringList({ description: 'Single-use codes that stand in for a TOTP code (signIn backupCode); shown only now.' }) }),
  })
const ConfirmOtpResponse = defineResponse('ConfirmOtp', ['INVALID_OTP_TOKEN', 'NOT_PREPARED', 'NOT_A_PERSON'] as const, {
  result: backupCodesResult('ConfirmOtpResult'),
})
const DisableOtpResponse = defineResponse('DisableOtp', ['OTP_NOT_ACTIVE', 'NOT_A_PERSON'] as const)
const RegenerateBackupCodesResponse = defineResponse('RegenerateBackupCodes', ['OTP_NOT_ACTIVE', 'NOT_A_PERSON'] as const, {
  result: backupCodesResult('RegenerateBackupCodesResult'),
})

builder.mutationFields((t) => ({
  prepareOtp: t.field({
    type: PrepareOtpResponse,
    nullable: true,
    description: 'A new TOTP secret for the caller, active once confirmOtp accepts a code from it.',
    authScopes: { privilege: 'person:self' },
    args: { label: t.arg.string({ required: false, description: 'The account name the authenticator app shows; the email by default.' }) },
    resolve: (_root, args, context) => prepareOtp(context, args.label),
  }),
  confirmOtp: t.field({
    type: ConfirmOtpResponse,
    nullable: true,
    authScopes: { privilege: 'person:self' },
    args: { otpToken: t.arg.string({ required: true }) },
    resolve: (_root, args, context) => confirmOtp(context, args.otpToken),
  }),
  disableOtp: t.field({
    type: DisableOtpResponse,
    nullable: true,
    authScopes: { privilege: 'person:self' },
    resolve: (_root, _args, context) => disableOtp(context),
  }),
  regenerateBackupCodes: t.field({
    type: RegenerateBackupCodesResponse,
    nullable: true,
    description: "New backup codes for the caller's active TOTP factor; the earlier ones stop working.",
    authScopes: { privilege: 'person:self' },
    resolve: (_root, _args, context) => regenerateBackupCodes(context),
  }),
}))
