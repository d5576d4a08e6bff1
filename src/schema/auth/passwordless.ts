import { activatePasswordlessOtp, initSignInPasswordless, signInPasswordless, toggleMyPasswordless } from '../../tenant/auth/passwordless.js'
import { builder } from '../builder.js'
import { badInputError } from '../errors.js'
import { defineResponse } from '../responses.js'
import { MailOptionsFields } from './passwordReset.js'
import { CAPTCHA_TOKEN_DESCRIPTION, SignInOptions, retryAfterField, signInResult } from './signIn.js'

const InitSignInPasswordlessOptions = builder.inputType('InitSignInPasswordlessOptions', {
  fields: (t) => ({ mailVariant: t.string(MailOptionsFields.mailVariant), mailProject: t.string(MailOptionsFields.mailProject) }),
})
const PasswordlessValidationType = builder.enumType('PasswordlessValidationType', { values: ['otp', 'token'] as const })

const InitSignInPasswordlessResponse = defineResponse(
  'InitSignInPasswordless',
  ['PERSON_NOT_FOUND', 'PASSWORDLESS_DISABLED', 'INVALID_CAPTCHA', 'RATE_LIMIT_EXCEEDED'] as const,
  {
    result: builder.simpleObject('InitSignInPasswordlessResult', {
      fields: (t) => ({ requestId: t.string(), expiresAt: t.field({ type: 'DateTime' }) }),
    }),
    extendError: retryAfterField,
  },
)
// TOKEN_NOT_FOUND stays in both enums for Contember's clients, and is never answered: an unknown request is TOKEN_INVALID (src/tenant/auth/passwordless.ts).
const ActivatePasswordlessOtpResponse = defineResponse('ActivatePasswordlessOtp', ['TOKEN_NOT_FOUND', 'TOKEN_INVALID', 'TOKEN_EXPIRED', 'TOKEN_USED'] as const)
const SignInPasswordlessResponse = defineResponse(
  'SignInPasswordless',
  ['TOKEN_NOT_FOUND', 'TOKEN_INVALID', 'TOKEN_EXPIRED', 'TOKEN_USED', 'PERSON_DISABLED', 'OTP_REQUIRED', 'INVALID_OTP_TOKEN', 'RATE_LIMIT_EXCEEDED'] as const,
  { result: signInResult('SignInPasswordlessResult'), extendError: retryAfterField },
)
const ToggleMyPasswordlessResponse = defineResponse('ToggleMyPasswordless', ['CANNOT_TOGGLE', 'NOT_A_PERSON'] as const)

const sha256Hex = /^[0-9a-f]{64}$/i

builder.mutationFields((t) => ({
  initSignInPasswordless: t.field({
    type: InitSignInPasswordlessResponse,
    nullable: true,
    description: 'Mails a sign-in link token and a 6-digit code (config passwordless.enabled decides who may).',
    authScopes: { privilege: 'person:signInPasswordless' },
    args: {
      email: t.arg.string({ required: true }),
      options: t.arg({ type: InitSignInPasswordlessOptions, required: false }),
      captchaToken: t.arg.string({ required: false, description: CAPTCHA_TOKEN_DESCRIPTION }),
    },
    resolve: (_root, args, context) => initSignInPasswordless(context, args.email, args.options, args.captchaToken),
  }),
  activatePasswordlessOtp: t.field({
    type: ActivatePasswordlessOtpResponse,
    nullable: true,
    description: 'From the device that opened the link: sets the sha256 (hex) of a code the asking device then signs in with.',
    authScopes: { privilege: 'person:signInPasswordless' },
    args: {
      requestId: t.arg.string({ required: true }),
      token: t.arg.string({ required: true }),
      otpHash: t.arg.string({ required: true }),
    },
    resolve: (_root, args, context) => {
      if (!sha256Hex.test(args.otpHash)) throw badInputError('otpHash must be a sha256 in hex (64 characters).', 'otpHash')
      return activatePasswordlessOtp(context, args.requestId, args.token, args.otpHash)
    },
  }),
  signInPasswordless: t.field({
    type: SignInPasswordlessResponse,
    nullable: true,
    authScopes: { privilege: 'person:signInPasswordless' },
    args: {
      requestId: t.arg.string({ required: true }),
      validationType: t.arg({ type: PasswordlessValidationType, required: true }),
      token: t.arg.string({ required: true, description: 'The link token, or the code for validationType otp.' }),
      expiration: t.arg.int({ required: false, description: 'Idle lifetime of the session, in minutes.' }),
      mfaOtp: t.arg.string({ required: false, description: 'TOTP code, when the person has a second factor.' }),
      backupCode: t.arg.string({ required: false, description: 'A TOTP backup code instead of mfaOtp; it works once.' }),
      options: t.arg({ type: SignInOptions, required: false }),
    },
    resolve: (_root, args, context) =>
      signInPasswordless(context, { ...args, trustForwardedClientInfo: args.options?.trustForwardedClientInfo }),
  }),
}))

builder.mutationFields((t) => {
  const toggleField = (enabled: boolean) =>
    t.field({
      type: ToggleMyPasswordlessResponse,
      nullable: true,
      description: `Turns passwordless sign-in ${enabled ? 'on' : 'off'} for the caller (only when config passwordless.enabled is optIn or optOut).`,
      authScopes: { privilege: 'person:self' },
      resolve: (_root, _args, context) => toggleMyPasswordless(context, enabled),
    })
  return { enableMyPasswordless: toggleField(true), disableMyPasswordless: toggleField(false) }
})
