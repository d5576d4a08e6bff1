import { decryptText, encryptText } from '../../crypto/encryption.js'
import type { Person } from '../../generated/prisma/client.js'
import { runCommand, type Transaction } from '../command.js'
import type { TenantContext } from '../context.js'
import { fail, succeed } from '../outcome.js'
import { callerPerson } from '../persons/persons.js'
import { acceptedTotpStep, newTotpSecret, totpUri } from './totp.js'

/** TOTP secrets are sealed with the person's id as associated data: a secret copied to another row will not open. */
const sealSecret = (key: Buffer, personId: string, secret: string) => encryptText(key, secret, `otp:${personId}`)
const openSecret = (key: Buffer, personId: string, sealed: string) => decryptText(key, sealed, `otp:${personId}`)

/**
 * Accepts `code` for `sealedSecret` and remembers its time step, so the same
 * code (or an older one) is refused afterwards, also by a concurrent request.
 */
async function useTotpCode(tx: Transaction, key: Buffer, person: Person, sealedSecret: string, code: string): Promise<boolean> {
  const step = await acceptedTotpStep(openSecret(key, person.id, sealedSecret), code, person.otpLastUsedStep)
  if (step === null) return false
  const { count } = await tx.person.updateMany({
    where: { id: person.id, OR: [{ otpLastUsedStep: null }, { otpLastUsedStep: { lt: step } }] },
    data: { otpLastUsedStep: step },
  })
  return count === 1
}

export type SecondFactorProblem = 'OTP_REQUIRED' | 'INVALID_OTP_TOKEN'

/** The second factor of a sign-in: nothing to check without active OTP, else a fresh valid code. */
export async function checkSecondFactor(
  tx: Transaction,
  key: Buffer,
  person: Person,
  code: string | null | undefined,
): Promise<SecondFactorProblem | null> {
  if (!person.otpActivatedAt || !person.otpSecret) return null
  if (!code) return 'OTP_REQUIRED'
  return (await useTotpCode(tx, key, person, person.otpSecret, code)) ? null : 'INVALID_OTP_TOKEN'
}

/**
 * Starts TOTP enrolment: a new secret, kept pending until confirmOtp, so a
 * factor that is already active keeps working meanwhile. The secret and its
 * otpauth URI go to the caller only; nothing is logged until confirmation.
 */
export function prepareOtp(context: TenantContext, label: string | null | undefined) {
  return runCommand(context.prisma, context.actor, async ({ tx }) => {
    const person = await callerPerson(context, tx)
    if (!person) return fail('NOT_A_PERSON' as const, 'Only a person can set up a second factor.')
    const secret = newTotpSecret()
    await tx.person.update({ where: { id: person.id }, data: { otpPendingSecret: sealSecret(context.encryptionKey, person.id, secret) } })
    return succeed({ otpSecret: secret, otpUri: totpUri(label || person.email || person.id, secret) })
  })
}

export type ConfirmOtpErrorCode = 'NOT_A_PERSON' | 'NOT_PREPARED' | 'INVALID_OTP_TOKEN'

/** Activates the pending secret once the person proves their app has it (`2fa_enable`). */
export function confirmOtp(context: TenantContext, otpToken: string) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    const person = await callerPerson(context, tx)
    const refuse = (code: ConfirmOtpErrorCode, message: string) => {
      audit({ type: '2fa_enable', success: false, errorCode: code })
      return fail(code, message)
    }
    if (!person) return refuse('NOT_A_PERSON', 'Only a person can set up a second factor.')
    if (!person.otpPendingSecret) return refuse('NOT_PREPARED', 'Call prepareOtp first.')
    // The confirming code's step is remembered, so it cannot sign in afterwards.
    if (!(await useTotpCode(tx, context.encryptionKey, person, person.otpPendingSecret, otpToken))) {
      return refuse('INVALID_OTP_TOKEN', 'The one-time code is not valid.')
    }
    await tx.person.update({
      where: { id: person.id },
      data: { otpSecret: person.otpPendingSecret, otpPendingSecret: null, otpActivatedAt: new Date() },
    })
    audit({ type: '2fa_enable', success: true })
    return succeed(null)
  })
}

/** Removes the second factor (`2fa_disable`). */
export function disableOtp(context: TenantContext) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    const person = await callerPerson(context, tx)
    const refuse = (code: 'NOT_A_PERSON' | 'OTP_NOT_ACTIVE', message: string) => {
      audit({ type: '2fa_disable', success: false, errorCode: code })
      return fail(code, message)
    }
    if (!person) return refuse('NOT_A_PERSON', 'Only a person has a second factor.')
    if (!person.otpActivatedAt) return refuse('OTP_NOT_ACTIVE', 'No second factor is active.')
    await tx.person.update({
      where: { id: person.id },
      data: { otpSecret: null, otpPendingSecret: null, otpActivatedAt: null, otpLastUsedStep: null },
    })
    audit({ type: '2fa_disable', success: true })
    return succeed(null)
  })
}
