import type { TenantConfig } from '../config/tenantConfig.js'

export type WeakPasswordReason =
  | 'TOO_SHORT'
  | 'MISSING_UPPERCASE'
  | 'MISSING_LOWERCASE'
  | 'MISSING_DIGIT'
  | 'MISSING_SPECIAL'
  | 'INVALID_PATTERN'

const count = (password: string, pattern: RegExp) => password.match(pattern)?.length ?? 0

/** Why `password` breaks the configured policy; empty when it is acceptable. */
export function weakPasswordReasons(password: string, policy: TenantConfig['password']): WeakPasswordReason[] {
  const reasons: WeakPasswordReason[] = []
  if ([...password].length < policy.minLength) reasons.push('TOO_SHORT')
  if (count(password, /\p{Lu}/gu) < policy.requireUppercase) reasons.push('MISSING_UPPERCASE')
  if (count(password, /\p{Ll}/gu) < policy.requireLowercase) reasons.push('MISSING_LOWERCASE')
  if (count(password, /\p{Nd}/gu) < policy.requireDigit) reasons.push('MISSING_DIGIT')
  if (count(password, /[^\p{L}\p{Nd}]/gu) < policy.requireSpecial) reasons.push('MISSING_SPECIAL')
  if (policy.pattern && !new RegExp(policy.pattern, 'u').test(password)) reasons.push('INVALID_PATTERN')
  return reasons
}
