import { generateSecret, generateURI, verify } from 'otplib'

/** RFC 6238 TOTP as authenticator apps expect it: SHA-1, 6 digits, 30-second steps. */
const PERIOD_SECONDS = 30
const ISSUER = 'Custos'

export const newTotpSecret = () => generateSecret()

export const totpUri = (label: string, secret: string) => generateURI({ issuer: ISSUER, label, secret })

/**
 * The time step `code` belongs to when it is valid now, allowing one step of
 * clock drift either way and refusing steps at or before `lastUsedStep` (a
 * code is never accepted twice); null otherwise.
 */
export async function acceptedTotpStep(secret: string, code: string, lastUsedStep: bigint | null): Promise<number | null> {
  if (!/^\d{6}$/.test(code)) return null
  const result = await verify({
    secret,
    token: code,
    period: PERIOD_SECONDS,
    epochTolerance: PERIOD_SECONDS,
    ...(lastUsedStep !== null ? { afterTimeStep: Number(lastUsedStep) } : {}),
  })
  // The functional API types HOTP and TOTP results alike; a TOTP result carries its time step.
  return result.valid && 'timeStep' in result ? result.timeStep : null
}
