import { decryptText, encryptText } from '../../crypto/encryption.js'
import type { Person } from '../../generated/prisma/client.js'
import { runCommand, type Transaction } from '../command.js'
import type { TenantContext } from '../context.js'
import { fail, succeed } from '../outcome.js'
import { callerPerson } from '../persons/persons.js'
import { removeBackupCodes, replaceBackupCodes, useBackupCode } from './backupCodes.js'
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

export type SecondFactorProblem = 'OTP_REQUIRED' | 'INVALID_OTP_TOKEN' | 'INVALID_BACKUP_CODE'

/** What a sign-in offers as its second factor: a TOTP code, or else one of the person's backup codes. */
export interface SecondFactorProof {
  readonly otpToken?: string | null
  readonly backupCode?: string | null
}

export type SecondFactorCheck = { readonly problem: SecondFactorProblem } | { readonly problem: null; readonly backupCodeUsed: boolean }

/** Contember's error codes have no INVALID_BACKUP_CODE: the client is told INVALID_OTP_TOKEN, the log the real reason. */
export const visibleSecondFactorProblem = (problem: SecondFactorProblem) => (problem === 'INVALID_BACKUP_CODE' ? 'INVALID_OTP_TOKEN' : problem)

/**
 * The second factor of a sign-in: nothing to check without active OTP, else a
 * fresh valid TOTP code or an unused backup code (which is used up with the sign-in).
 */
export async function checkSecondFactor(tx: Transaction, key: Buffer, person: Person, proof: SecondFactorProof): Promise<SecondFactorCheck> {
  if (!person.otpActivatedAt || !person.otpSecret) return { problem: null, backupCodeUsed: false }
  if (proof.otpToken) {
    return (await useTotpCode(tx, key, person, person.otpSecret, proof.otpToken)) ? { problem: null, backupCodeUsed: false } : { problem: 'INVALID_OTP_TOKEN' }
  }
  if (proof.backupCode) {
    return (await useBackupCode(tx, person.id, proof.backupCode)) ? { problem: null, backupCodeUsed: true } : { problem: 'INVALID_BACKUP_CODE' }
  }
  return { problem: 'OTP_REQUIRED' }
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

/** Activates the pending secret once the person proves their app has it (`2fa_enable`); answers a new set of backup codes. */
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
    const backupCodes = await replaceBackupCodes(tx, person.id)
    audit({ type: '2fa_enable', success: true })
    return succeed({ backupCodes })
  })
}

/**
 * Runs `work` on the caller's person when their second factor is active and
 * records `type`; a caller that is not a person, or has no active factor, is
 * refused (recorded too).
 */
function onActiveFactor<Result>(
  context: TenantContext,
  type: '2fa_disable' | '2fa_backup_codes_regenerate',
  work: (tx: Transaction, person: Person) => Promise<Result>,
) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    const person = await callerPerson(context, tx)
    const refuse = (code: 'NOT_A_PERSON' | 'OTP_NOT_ACTIVE', message: string) => {
      audit({ type, success: false, errorCode: code })
      return fail(code, message)
    }
    if (!person) return refuse('NOT_A_PERSON', 'Only a person has a second factor.')
    if (!person.otpActivatedAt) return refuse('OTP_NOT_ACTIVE', 'No second factor is active.')
    const result = await work(tx, person)
    audit({ type, success: true })
    return succeed(result)
  })
}

/** The person's TOTP factor, confirmed or pending, and its backup codes, gone. */
export async function removeSecondFactor(tx: Transaction, personId: string): Promise<void> {
  await tx.person.update({
    where: { id: personId },
    data: { otpSecret: null, otpPendingSecret: null, otpActivatedAt: null, otpLastUsedStep: null },
  })
  await removeBackupCodes(tx, personId)
}

/** Removes the second factor and its backup codes (`2fa_disable`). */
export const disableOtp = (context: TenantContext) =>
  onActiveFactor(context, '2fa_disable', async (tx, person) => {
    await removeSecondFactor(tx, person.id)
    return null
  })

/** A new set of backup codes for the caller's active factor, the old ones void (`2fa_backup_codes_regenerate`). */
export const regenerateBackupCodes = (context: TenantContext) =>
  onActiveFactor(context, '2fa_backup_codes_regenerate', async (tx, person) => ({ backupCodes: await replaceBackupCodes(tx, person.id) }))
