import { randomBytes } from 'node:crypto'
import { hashToken } from '../apiKeys/tokens.js'
import type { Transaction } from '../command.js'

/**
 * TOTP backup codes: each 80 random bits, written as 16 base32 characters in
 * groups of four. Only their sha256 is stored (the randomness makes a salt
 * unnecessary); a code works once.
 */
const BACKUP_CODE_COUNT = 10
const BACKUP_CODE_BYTES = 10

const newBackupCode = () =>
  BigInt(`0x${randomBytes(BACKUP_CODE_BYTES).toString('hex')}`)
    .toString(32)
    .padStart(16, '0')
    .match(/.{4}/g)!
    .join('-')

/** Case, dashes and spaces do not matter when a code is typed back. */
const backupCodeHash = (code: string) => hashToken(code.toLowerCase().replace(/[\s-]/g, ''))

/** A new set of codes for the person, replacing every earlier one; shown to them once. */
export async function replaceBackupCodes(tx: Transaction, personId: string): Promise<string[]> {
  const codes = Array.from({ length: BACKUP_CODE_COUNT }, newBackupCode)
  await removeBackupCodes(tx, personId)
  await tx.personBackupCode.createMany({ data: codes.map((code) => ({ personId, codeHash: backupCodeHash(code) })) })
  return codes
}

export const removeBackupCodes = (tx: Transaction, personId: string) => tx.personBackupCode.deleteMany({ where: { personId } })

/** Uses up `code` if it is one of the person's; a concurrent request cannot use it too. */
export async function useBackupCode(tx: Transaction, personId: string, code: string): Promise<boolean> {
  const { count } = await tx.personBackupCode.deleteMany({ where: { personId, codeHash: backupCodeHash(code) } })
  return count === 1
}
