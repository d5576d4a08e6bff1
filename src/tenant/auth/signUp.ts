import { runCommand } from '../command.js'
import { loadTenantConfig } from '../config/tenantConfig.js'
import type { TenantContext } from '../context.js'
import { fail, succeed } from '../outcome.js'
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

/**
 * Creates a person with its identity. Sign-up has no log event, so its per-IP
 * limit is counted in rate_limit_hit; every attempt counts, also a failed one
 * (one refused for its captcha too).
 */
export async function signUp(context: TenantContext, input: SignUpInput) {
  const { rateLimits, captcha } = await loadTenantConfig(context.prisma)
  const retryAfter = await ipLimitFromCounter(context.prisma, 'signUp', rateLimits.signUpPerIp, context.actor.client.ip)
  if (retryAfter !== null) return fail('RATE_LIMIT_EXCEEDED' as const, 'Too many sign-ups from this address; try again later.', { retryAfter })
  if (!(await captchaPasses(context, captcha, input.captchaToken))) return fail('INVALID_CAPTCHA' as const, CAPTCHA_REFUSED)
  const email = normalizeEmail(input.email)
  if (!isValidEmail(email)) return fail('INVALID_EMAIL_FORMAT' as const, 'The email address is not valid.')
  const password = input.password != null ? await prepareNewPassword(context.prisma, input.password) : null
  if (password?.weakReasons) {
    return fail('TOO_WEAK' as const, 'The password does not meet the password policy.', { weakPasswordReasons: password.weakReasons })
  }
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    if (await tx.person.findUnique({ where: { email }, select: { id: true } })) {
      return fail('EMAIL_ALREADY_EXISTS' as const, 'A person with this email already exists.')
    }
    const roles = [...new Set(['person', ...(input.roles ?? [])])]
    const identity = await tx.identity.create({ data: { roles } })
    const person = await tx.person.create({
      data: { email, name: input.name ?? null, identityId: identity.id, passwordHash: password?.hash ?? null },
    })
    // Roles beyond `person` are a grant like any other, and are recorded as one.
    if (roles.length > 1) {
      audit({ type: 'global_role_grant', success: true, targetPersonId: person.id, eventData: { before: { roles: [] }, after: { roles } } })
    }
    return succeed({ person })
  })
}
