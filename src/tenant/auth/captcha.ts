import { decryptText } from '../../crypto/encryption.js'
import type { TenantConfig } from '../config/tenantConfig.js'
import type { TenantContext } from '../context.js'

/** The providers' siteverify endpoints; CUSTOS_CAPTCHA_VERIFY_URL replaces them (tests, self-hosted proxies). */
const siteverify: Record<string, string> = {
  turnstile: 'https://challenges.cloudflare.com/turnstile/v0/siteverify',
  hcaptcha: 'https://api.hcaptcha.com/siteverify',
  recaptchaV3: 'https://www.google.com/recaptcha/api/siteverify',
}

/** reCAPTCHA v3 scores below this fail when captcha.threshold is not set. */
export const DEFAULT_RECAPTCHA_THRESHOLD = 0.5

const VERIFY_TIMEOUT_MS = 5_000

export const CAPTCHA_REFUSED = 'The captcha is missing or was not solved.'

/**
 * Whether a request may go ahead as far as the captcha is concerned: always
 * when no provider is configured; otherwise only when the provider confirms
 * the token (for reCAPTCHA v3 with a score of at least captcha.threshold).
 * Fails closed: a provider that cannot be reached or answers nonsense refuses
 * the request, with a warning in the server log that never names the secret
 * or the token.
 */
export async function captchaPasses(context: TenantContext, captcha: TenantConfig['captcha'], token: string | null | undefined): Promise<boolean> {
  const { provider } = captcha
  if (!provider) return true
  const refuseWithWarning = (problem: string) => {
    context.logger.warn({ captchaProvider: provider }, `captcha not verified: ${problem}`)
    return false
  }
  if (!captcha.secret) return refuseWithWarning('captcha.provider is set but captcha.secret is not')
  if (!token) return false
  const body = new URLSearchParams({ secret: decryptText(context.encryptionKey, captcha.secret, 'captcha.secret'), response: token })
  if (context.actor.client.ip) body.set('remoteip', context.actor.client.ip)
  let answer: unknown
  try {
    const response = await fetch(context.captchaVerifyUrl ?? siteverify[provider]!, { method: 'POST', body, signal: AbortSignal.timeout(VERIFY_TIMEOUT_MS) })
    if (!response.ok) return refuseWithWarning(`the provider answered HTTP ${response.status}`)
    answer = await response.json()
  } catch (error) {
    // Only the error's kind is logged, nothing of the request (which holds the secret and the token).
    return refuseWithWarning(
      error instanceof SyntaxError ? 'the provider answered something other than JSON' : `the provider could not be reached (${(error as Error).name})`,
    )
  }
  const verdict = answer as { success?: unknown; score?: unknown } | null
  if (typeof verdict?.success !== 'boolean') return refuseWithWarning('the provider answered without a success flag')
  if (!verdict.success || provider !== 'recaptchaV3') return verdict.success
  if (typeof verdict.score !== 'number') return refuseWithWarning('reCAPTCHA answered without a score')
  return verdict.score >= (captcha.threshold ?? DEFAULT_RECAPTCHA_THRESHOLD)
}
