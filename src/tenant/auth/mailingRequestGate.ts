import type { CommandScope } from '../command.js'
import { type TenantConfig, loadTenantConfig } from '../config/tenantConfig.js'
import type { TenantContext } from '../context.js'
import { CAPTCHA_REFUSED, captchaPasses } from './captcha.js'
import { inTurn } from './inTurn.js'
import { emailBackoff, ipLimitInTurn, mailingIpLimit, mailingRequestWait, tooManyRequests } from './throttle.js'

export type MailingRequestType = 'password_reset_init' | 'passwordless_login_init'

/** Why a mailing request is turned away, with the client's message; a throttle says how long to wait. */
export interface MailingRequestRefusal {
  readonly code: 'RATE_LIMIT_EXCEEDED' | 'INVALID_CAPTCHA'
  readonly message: string
  readonly wait?: { readonly retryAfter: number; readonly reason: 'ip' | 'email' }
}

/**
 * Called first in the flow's transaction: holds the email's turn in the database, lets the flow's
 * refusals commit with their entries, and answers why the request is turned away, if it is.
 */
export type PassMailingRequestGate = (scope: Pick<CommandScope, 'tx' | 'commitRefusal'>) => Promise<MailingRequestRefusal | null>

const throttled = (wait: NonNullable<MailingRequestRefusal['wait']>): MailingRequestRefusal => ({
  code: 'RATE_LIMIT_EXCEEDED',
  message: tooManyRequests[wait.reason],
  wait,
})

/**
 * The gate in front of the flows that mail (password reset, passwordless sign-in): the per-address
 * and per-email throttles, then the captcha. Decided before the flow's transaction opens, so the
 * call to the captcha provider holds no connection; requests for one email (in any spelling, as the
 * per-email throttle matches them) take turns, so each reads the ones before it. Across server
 * instances the flow's transaction takes the turn (passGate) and reads the per-email backoff again.
 */
export function throughMailingRequestGate<T>(
  context: TenantContext,
  type: MailingRequestType,
  email: string,
  captchaToken: string | null | undefined,
  flow: (config: TenantConfig, passGate: PassMailingRequestGate) => Promise<T>,
): Promise<T> {
  return inTurn(`${type}:${email.trim().toLowerCase()}`, async (holdTurn) => {
    const config = await loadTenantConfig(context.prisma)
    const refusal = await refusalBeforeTransaction(context, config, type, email, captchaToken)
    return flow(config, async ({ tx, commitRefusal }) => {
      await holdTurn(tx)
      // The flows refuse before they change anything: a refusal commits with its entry while the
      // turn is held, for the next request to count.
      commitRefusal()
      if (refusal) return refusal
      // Read again holding the turns (the email's, then the address's): requests elsewhere may have gone through meanwhile.
      const ipRetry = await ipLimitInTurn(tx, type, mailingIpLimit(config, type), context.actor.client.ip)
      if (ipRetry !== null) return throttled({ retryAfter: ipRetry, reason: 'ip' })
      const retryAfter = await emailBackoff(tx, config.login, type, email)
      return retryAfter === null ? null : throttled({ retryAfter, reason: 'email' })
    })
  })
}

async function refusalBeforeTransaction(
  context: TenantContext,
  config: TenantConfig,
  type: MailingRequestType,
  email: string,
  captchaToken: string | null | undefined,
): Promise<MailingRequestRefusal | null> {
  const wait = await mailingRequestWait(context.prisma, config, type, email, context.actor.client.ip)
  if (wait) return throttled(wait)
  if (!(await captchaPasses(context, config.captcha, captchaToken))) return { code: 'INVALID_CAPTCHA', message: CAPTCHA_REFUSED }
  return null
}
