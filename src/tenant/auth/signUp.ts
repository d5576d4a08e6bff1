import { runCommand } from '../command.js'
import { loadTenantConfig } from '../config/tenantConfig.js'
import type { TenantContext } from '../context.js'
import { type Failure, fail, succeed } from '../outcome.js'
import { requireTextWithinLimit } from '../invalidInput.js'
import { isValidEmail, normalizeEmail } from '../persons/persons.js'
import { prepareNewPassword } from './passwords.js'
import { CAPTCHA_REFUSED, captchaPasses } from './captcha.js'
import { ipLimitFromCounter } from './throttle.js'

export interface SignUpInput {
  readonly email: string
  readonly password?: string | null
  readonly name?: string | null
  /** Global roles beyond `person`; the schema lets only role granters pass them. */
  readonly roles?: readonly string[] | null
  readonly captchaToken?: string | null
}

type SignUpProblem = 'RATE_LIMIT_EXCEEDED' | 'INVALID_CAPTCHA' | 'INVALID_EMAIL_FORMAT' | 'TOO_WEAK' | 'EMAIL_ALREADY_EXISTS'

/**
 * Creates a person with its identity (`sign_up`; a refusal is recorded with its reason). Its per-IP
 * limit is counted in rate_limit_hit, where every attempt counts, also a refused one (one refused
 * for its captcha too); the limit's own refusals are recorded but never counted.
 */
export async function signUp(context: TenantContext, input: SignUpInput) {
  requireTextWithinLimit(input.name, 'name')
  const { rateLimits, captcha } = await loadTenantConfig(context.prisma)
  const email = normalizeEmail(input.email)
  // Checked before the transaction opens, so the password work holds no connection.
  const early = await (async () => {
    const retryAfter = await ipLimitFromCounter(context.prisma, 'signUp', rateLimits.signUpPerIp, context.actor.client.ip)
    if (retryAfter !== null) return fail('RATE_LIMIT_EXCEEDED' as SignUpProblem, 'Too many sign-ups from this address; try again later.', { retryAfter })
    if (!(await captchaPasses(context, captcha, input.captchaToken))) return fail('INVALID_CAPTCHA' as SignUpProblem, CAPTCHA_REFUSED)
    if (!isValidEmail(email)) return fail('INVALID_EMAIL_FORMAT' as SignUpProblem, 'The email address is not valid.')
    const password = input.password != null ? await prepareNewPassword(context.prisma, input.password) : null
    if (password?.weakReasons) {
      return fail('TOO_WEAK' as SignUpProblem, 'The password does not meet the password policy.', { weakPasswordReasons: password.weakReasons })
    }
    return { ok: true as const, passwordHash: password?.hash ?? null }
  })()
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    const entry = { type: 'sign_up' as const, personInputIdentifier: input.email }
    const refuse = (refusal: Failure<SignUpProblem>) => {
      const { code, retryAfter } = refusal.error
      audit({ ...entry, success: false, errorCode: code, ...(typeof retryAfter === 'number' ? { metadata: { retryAfter, reason: 'ip' } } : {}) })
      return refusal
    }
    if (!early.ok) return refuse(early)
    if (await tx.person.findUnique({ where: { email }, select: { id: true } })) {
      return refuse(fail('EMAIL_ALREADY_EXISTS' as SignUpProblem, 'A person with this email already exists.'))
    }
    const roles = [...new Set(['person', ...(input.roles ?? [])])]
    const identity = await tx.identity.create({ data: { roles } })
    const person = await tx.person.create({
      data: { email, name: input.name ?? null, identityId: identity.id, passwordHash: early.passwordHash },
    })
    audit({ ...entry, success: true, personId: person.id })
    // Roles beyond `person` are a grant like any other, and are recorded as one.
    if (roles.length > 1) {
      audit({ type: 'global_role_grant', success: true, targetPersonId: person.id, eventData: { before: { roles: [] }, after: { roles } } })
    }
    return succeed({ person })
  })
}
