import { signIn } from '../../tenant/auth/signIn.js'
import { signUp } from '../../tenant/auth/signUp.js'
import { globalRoleChangeProblem } from '../../tenant/identity/globalRoles.js'
import { badInputError, forbiddenError, rejectingInvalidInput } from '../errors.js'
import { createSessionToken, signOut } from '../../tenant/auth/sessionToken.js'
import { builder } from '../builder.js'
import { Person } from '../identity/identity.js'
import { type SchemaTypesOf, defineResponse } from '../responses.js'
import type { ObjectFieldBuilder } from '@pothos/core'
import type { OperationError } from '../../tenant/outcome.js'

export const WeakPasswordReason = builder.enumType('WeakPasswordReason', {
  values: ['TOO_SHORT', 'MISSING_UPPERCASE', 'MISSING_LOWERCASE', 'MISSING_DIGIT', 'MISSING_SPECIAL', 'INVALID_PATTERN', 'BLACKLISTED', 'COMPROMISED'] as const,
})

export const SignInOptions = builder.inputType('SignInOptions', {
  fields: (t) => ({
    trustForwardedClientInfo: t.boolean({
      required: false,
      description: 'With a caller key that trusts forwarded client info, the new session trusts X-Contember-Client-IP/-User-Agent too.',
    }),
  }),
})

/** The error field that tells how long a rate-limited caller must wait. */
export const CAPTCHA_TOKEN_DESCRIPTION = 'Verified with the configured captcha provider (config captcha); ignored when none is configured.'

export const retryAfterField = <Code extends string>(t: ObjectFieldBuilder<SchemaTypesOf, OperationError<Code>>) => ({
  retryAfter: t.int({ nullable: true, description: 'Seconds to wait before the next attempt.', resolve: (error) => (error.retryAfter as number) ?? null }),
})

/** The result every sign-in returns: a session token and its person. */
export const signInResult = (name: string) =>
  builder.simpleObject(name, {
    fields: (t) => ({ token: t.string(), person: t.field({ type: Person }) }),
  })

/** The error field that lists why a password was refused. */
export const weakPasswordReasonsField = <Code extends string>(t: ObjectFieldBuilder<SchemaTypesOf, OperationError<Code>>) => ({
  weakPasswordReasons: t.field({
    type: [WeakPasswordReason],
    nullable: true,
    resolve: (error) => (error.weakPasswordReasons as never) ?? null,
  }),
})

const SignUpResponse = defineResponse('SignUp', ['EMAIL_ALREADY_EXISTS', 'INVALID_EMAIL_FORMAT', 'TOO_WEAK', 'INVALID_CAPTCHA', 'RATE_LIMIT_EXCEEDED'] as const, {
  result: builder.simpleObject('SignUpResult', { fields: (t) => ({ person: t.field({ type: Person }) }) }),
  extendError: (t) => ({ ...weakPasswordReasonsField(t), ...retryAfterField(t) }),
})

const SignInResponse = defineResponse(
  'SignIn',
  ['INVALID_CREDENTIALS', 'UNKNOWN_EMAIL', 'INVALID_PASSWORD', 'PERSON_DISABLED', 'NO_PASSWORD_SET', 'OTP_REQUIRED', 'INVALID_OTP_TOKEN', 'RATE_LIMIT_EXCEEDED'] as const,
  {
    result: signInResult('SignInResult'),
    extendError: (t) => ({
      ...retryAfterField(t),
    }),
  },
)

const CreateSessionTokenResponse = defineResponse('CreateSessionToken', ['UNKNOWN_EMAIL', 'UNKNOWN_PERSON_ID', 'PERSON_DISABLED'] as const, {
  result: signInResult('CreateSessionTokenResult'),
})

const SignOutResponse = defineResponse('SignOut', ['NOT_A_PERSON', 'NOT_POSSIBLE_SIGN_OUT_WITH_PERMANENT_API_KEY'] as const)

builder.mutationFields((t) => ({
  signUp: t.field({
    type: SignUpResponse,
    nullable: true,
    // Roles beyond `person` are handed out only by those who may grant roles.
    authScopes: (_root, args) =>
      args.roles?.some((role) => role !== 'person')
        ? { $all: { privilege: 'person:signUp', $any: { privilege: 'identity:addGlobalRoles' } } }
        : { privilege: 'person:signUp' },
    args: {
      email: t.arg.string({ required: true }),
      password: t.arg.string({ required: false }),
      roles: t.arg.stringList({ required: false }),
      name: t.arg.string({ required: false }),
      captchaToken: t.arg.string({ required: false, description: CAPTCHA_TOKEN_DESCRIPTION }),
    },
    resolve: (_root, args, context) => {
      // Bound like addGlobalIdentityRoles; SignUp's error codes have no word for it, so it is a GraphQL error and nothing runs.
      const problem = globalRoleChangeProblem(context.permissions, args.roles ?? [])
      if (problem?.kind === 'notHeld') throw forbiddenError(problem.message)
      if (problem) throw badInputError(problem.message, 'roles')
      return rejectingInvalidInput(() => signUp(context, args))
    },
  }),
  signIn: t.field({
    type: SignInResponse,
    nullable: true,
    authScopes: { privilege: 'person:signIn' },
    args: {
      email: t.arg.string({ required: true }),
      password: t.arg.string({ required: true }),
      expiration: t.arg.int({ required: false, description: 'Idle lifetime of the session, in minutes.' }),
      otpToken: t.arg.string({ required: false }),
      backupCode: t.arg.string({ required: false, description: 'A TOTP backup code instead of otpToken; it works once.' }),
      options: t.arg({ type: SignInOptions, required: false }),
    },
    resolve: (_root, args, context) => signIn(context, { ...args, trustForwardedClientInfo: args.options?.trustForwardedClientInfo }),
  }),
  createSessionToken: t.field({
    type: CreateSessionTokenResponse,
    nullable: true,
    authScopes: { privilege: 'person:createSessionToken' },
    args: {
      email: t.arg.string({ required: false }),
      personId: t.arg.string({ required: false }),
      expiration: t.arg.int({ required: false }),
      options: t.arg({ type: SignInOptions, required: false }),
    },
    resolve: (_root, args, context) =>
      rejectingInvalidInput(() => createSessionToken(context, { ...args, trustForwardedClientInfo: args.options?.trustForwardedClientInfo })),
  }),
  signOut: t.field({
    type: SignOutResponse,
    nullable: true,
    authScopes: { privilege: 'person:self' },
    args: { all: t.arg.boolean({ required: false }) },
    resolve: (_root, args, context) => signOut(context, args.all ?? false),
  }),
}))
