import { type TenantConfig, loadTenantConfig } from '../config/tenantConfig.js'
import type { TenantContext } from '../context.js'
import { CAPTCHA_REFUSED, captchaPasses } from './captcha.js'
import { inTurn } from './inTurn.js'
import { mailingRequestWait, tooManyRequests } from './throttle.js'

export type MailingRequestType = 'password_reset_init' | 'passwordless_login_init'

/** Why a mailing request is turned away before its transaction, with the client's message; a throttle says how long to wait. */
export interface MailingRequestRefusal {
  readonly code: 'RATE_LIMIT_EXCEEDED' | 'INVALID_CAPTCHA'
  readonly message: string
  readonly wait?: { readonly retryAfter: number; readonly reason: 'ip' | 'email' }
}

/**
 * The gate in front of the flows that mail (password reset, passwordless sign-in): the per-address
 * and per-email throttles, then the captcha. Decided before the flow's transaction opens, so the
 * call to the captcha provider holds no connection; requests for one email (in any spelling, as the
 * per-email throttle matches them) take turns in this process, so each reads the ones before it.
 */
export function throughMailingRequestGate<T>(
  context: TenantContext,
  type: MailingRequestType,
  email: string,
  captchaToken: string | null | undefined,
  flow: (config: TenantConfig, refusal: MailingRequestRefusal | null) => Promise<T>,
): Promise<T> {
  return inTurn(`${type}:${email.trim().toLowerCase()}`, async () => {
    const config = await loadTenantConfig(context.prisma)
    const wait = await mailingRequestWait(context.prisma, config, type, email, context.actor.client.ip)
    if (wait) return flow(config, { code: 'RATE_LIMIT_EXCEEDED', message: tooManyRequests[wait.reason], wait })
    if (!(await captchaPasses(context, config.captcha, captchaToken))) return flow(config, { code: 'INVALID_CAPTCHA', message: CAPTCHA_REFUSED })
    return flow(config, null)
  })
}
