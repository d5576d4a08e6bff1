import { GraphQLError, Kind } from 'graphql'
import { type ConfigInput as ConfigInputValue, captchaProviders, configure, passwordlessPolicies } from '../../tenant/config/configure.js'
import { type RateLimitWindow, type TenantConfig, loadTenantConfig } from '../../tenant/config/tenantConfig.js'
import { builder } from '../builder.js'
import { defineResponse } from '../responses.js'

const notAnInterval = () => new GraphQLError('An Interval is a string holding an ISO 8601 duration, e.g. "PT15M".', { extensions: { code: 'BAD_USER_INPUT' } })

// Any string passes here; configure checks the duration and answers INVALID_CONFIG.
builder.scalarType('Interval', {
  description: 'Interval is a string in the format ISO 8601, e.g. "PT1H" for 1 hour',
  serialize: (value) => value,
  parseValue: (value) => {
    if (typeof value !== 'string') throw notAnInterval()
    return value
  },
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.STRING) throw notAnInterval()
    return ast.value
  },
})

const ConfigPolicy = builder.enumType('ConfigPolicy', { values: passwordlessPolicies })
const CaptchaProvider = builder.enumType('CaptchaProvider', { values: captchaProviders })

type Section<K extends keyof TenantConfig> = TenantConfig[K]

const ConfigSignup = builder.objectRef<Section<'signup'>>('ConfigSignup').implement({
  fields: (t) => ({ requireEmailVerification: t.exposeBoolean('requireEmailVerification') }),
})
const ConfigPasswordless = builder.objectRef<Section<'passwordless'>>('ConfigPasswordless').implement({
  fields: (t) => ({
    enabled: t.field({ type: ConfigPolicy, resolve: (config) => config.enabled }),
    url: t.exposeString('url', { nullable: true }),
    expiration: t.expose('expiration', { type: 'Interval' }),
  }),
})
const ConfigPassword = builder.objectRef<Section<'password'>>('ConfigPassword').implement({
  fields: (t) => ({
    minLength: t.exposeInt('minLength'),
    requireUppercase: t.exposeInt('requireUppercase'),
    requireLowercase: t.exposeInt('requireLowercase'),
    requireDigit: t.exposeInt('requireDigit'),
    requireSpecial: t.exposeInt('requireSpecial'),
    pattern: t.exposeString('pattern', { nullable: true }),
    checkBlacklist: t.exposeBoolean('checkBlacklist'),
    checkHibp: t.exposeBoolean('checkHibp'),
  }),
})
const ConfigLogin = builder.objectRef<Section<'login'>>('ConfigLogin').implement({
  fields: (t) => ({
    baseBackoff: t.expose('baseBackoff', { type: 'Interval' }),
    maxBackoff: t.expose('maxBackoff', { type: 'Interval' }),
    attemptWindow: t.expose('attemptWindow', { type: 'Interval' }),
    revealUserExists: t.exposeBoolean('revealUserExists'),
    revealLoginMethod: t.exposeBoolean('revealLoginMethod'),
    defaultTokenExpiration: t.expose('defaultTokenExpiration', { type: 'Interval' }),
    maxTokenExpiration: t.expose('maxTokenExpiration', { type: 'Interval', nullable: true }),
  }),
})
const ConfigCaptcha = builder.objectRef<Section<'captcha'>>('ConfigCaptcha').implement({
  description: 'Captcha config. The secret is write-only: it is never returned.',
  fields: (t) => ({
    provider: t.field({ type: CaptchaProvider, nullable: true, resolve: (config) => config.provider as (typeof captchaProviders)[number] | null }),
    threshold: t.exposeFloat('threshold', { nullable: true }),
  }),
})
const ConfigRateLimitWindow = builder.objectRef<RateLimitWindow>('ConfigRateLimitWindow').implement({
  fields: (t) => ({ limit: t.exposeInt('limit'), window: t.expose('window', { type: 'Interval' }) }),
})
const ConfigRateLimits = builder.objectRef<Section<'rateLimits'>>('ConfigRateLimits').implement({
  description: 'Per-IP limits: at most `limit` attempts from one client address within `window` (limit 0 turns a limit off).',
  fields: (t) => ({
    signUpPerIp: t.expose('signUpPerIp', { type: ConfigRateLimitWindow }),
    loginPerIp: t.expose('loginPerIp', { type: ConfigRateLimitWindow }),
    passwordResetPerIp: t.expose('passwordResetPerIp', { type: ConfigRateLimitWindow }),
    passwordlessInitPerIp: t.expose('passwordlessInitPerIp', { type: ConfigRateLimitWindow }),
  }),
})
const Config = builder.objectRef<TenantConfig>('Config').implement({
  fields: (t) => ({
    signup: t.expose('signup', { type: ConfigSignup }),
    passwordless: t.expose('passwordless', { type: ConfigPasswordless }),
    password: t.expose('password', { type: ConfigPassword }),
    login: t.expose('login', { type: ConfigLogin }),
    captcha: t.expose('captcha', { type: ConfigCaptcha }),
    rateLimits: t.expose('rateLimits', { type: ConfigRateLimits }),
  }),
})

const ConfigSignupInput = builder.inputType('ConfigSignupInput', {
  fields: (t) => ({ requireEmailVerification: t.boolean({ required: false }) }),
})
const ConfigPasswordlessInput = builder.inputType('ConfigPasswordlessInput', {
  fields: (t) => ({
    enabled: t.field({ type: ConfigPolicy, required: false }),
    url: t.string({ required: false }),
    expiration: t.field({ type: 'Interval', required: false }),
  }),
})
const ConfigPasswordInput = builder.inputType('ConfigPasswordInput', {
  fields: (t) => ({
    minLength: t.int({ required: false }),
    requireUppercase: t.int({ required: false }),
    requireLowercase: t.int({ required: false }),
    requireDigit: t.int({ required: false }),
    requireSpecial: t.int({ required: false }),
    pattern: t.string({ required: false }),
    checkBlacklist: t.boolean({ required: false }),
    checkHibp: t.boolean({ required: false }),
  }),
})
const ConfigLoginInput = builder.inputType('ConfigLoginInput', {
  fields: (t) => ({
    baseBackoff: t.field({ type: 'Interval', required: false }),
    maxBackoff: t.field({ type: 'Interval', required: false }),
    attemptWindow: t.field({ type: 'Interval', required: false }),
    revealUserExists: t.boolean({ required: false }),
    revealLoginMethod: t.boolean({ required: false }),
    defaultTokenExpiration: t.field({ type: 'Interval', required: false }),
    maxTokenExpiration: t.field({ type: 'Interval', required: false }),
  }),
})
const ConfigCaptchaInput = builder.inputType('ConfigCaptchaInput', {
  description: 'Provider null disables captcha verification. The secret is write-only: null leaves it unchanged, an empty string clears it.',
  fields: (t) => ({
    provider: t.field({ type: CaptchaProvider, required: false }),
    secret: t.string({ required: false }),
    threshold: t.float({ required: false }),
  }),
})
const ConfigRateLimitWindowInput = builder.inputType('ConfigRateLimitWindowInput', {
  fields: (t) => ({ limit: t.int({ required: false }), window: t.field({ type: 'Interval', required: false }) }),
})
const ConfigRateLimitsInput = builder.inputType('ConfigRateLimitsInput', {
  fields: (t) => ({
    signUpPerIp: t.field({ type: ConfigRateLimitWindowInput, required: false }),
    loginPerIp: t.field({ type: ConfigRateLimitWindowInput, required: false }),
    passwordResetPerIp: t.field({ type: ConfigRateLimitWindowInput, required: false }),
    passwordlessInitPerIp: t.field({ type: ConfigRateLimitWindowInput, required: false }),
  }),
})
const ConfigInput = builder.inputType('ConfigInput', {
  fields: (t) => ({
    signup: t.field({ type: ConfigSignupInput, required: false }),
    passwordless: t.field({ type: ConfigPasswordlessInput, required: false }),
    password: t.field({ type: ConfigPasswordInput, required: false }),
    login: t.field({ type: ConfigLoginInput, required: false }),
    captcha: t.field({ type: ConfigCaptchaInput, required: false }),
    rateLimits: t.field({ type: ConfigRateLimitsInput, required: false }),
  }),
})

const ConfigureResponse = defineResponse('Configure', ['INVALID_CONFIG'] as const)

builder.queryField('configuration', (t) =>
  t.field({
    type: Config,
    description: 'The tenant configuration in effect (stored values over the defaults). The captcha secret is never returned.',
    authScopes: { privilege: 'system:configure' },
    resolve: (_root, _args, context) => loadTenantConfig(context.prisma),
  }),
)

builder.mutationField('configure', (t) =>
  t.field({
    type: ConfigureResponse,
    nullable: true,
    description: 'Changes the tenant configuration; invalid input (INVALID_CONFIG) changes nothing. Recorded as tenant_config_change.',
    authScopes: { privilege: 'system:configure' },
    args: { config: t.arg({ type: ConfigInput, required: true }) },
    resolve: (_root, args, context) => configure(context, args.config as ConfigInputValue),
  }),
)
