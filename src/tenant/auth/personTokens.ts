import { timingSafeEqual } from 'node:crypto'
import type { PersonToken } from '../../generated/prisma/client.js'
import { generateToken, hashToken } from '../apiKeys/tokens.js'
import type { Transaction } from '../command.js'
import { isUuid } from '../ids.js'

/**
 * Single-use, expiring tokens mailed to a person (password reset, passwordless
 * sign-in). The row id is the request id; only sha256 hashes of the token and
 * of any code are stored.
 */
export type PersonTokenType = 'password_reset' | 'passwordless'

export type TokenProblem = 'TOKEN_NOT_FOUND' | 'TOKEN_INVALID' | 'TOKEN_USED' | 'TOKEN_EXPIRED'

export interface IssuedToken {
  readonly requestId: string
  readonly token: string
  readonly expiresAt: Date
}

/** A new token for `personId`; earlier unused tokens of the same type stop working. */
export async function issuePersonToken(
  tx: Transaction,
  personId: string,
  type: PersonTokenType,
  lifetimeMs: number,
  code?: string,
): Promise<IssuedToken> {
  const token = generateToken()
  return { ...(await storePersonToken(tx, personId, type, lifetimeMs, hashToken(token), code)), token }
}

/** Makes a person's unused tokens (of one type, or all) stop working, as used at `now`. */
export async function voidPersonTokens(tx: Transaction, personId: string, type?: PersonTokenType, now = new Date()): Promise<void> {
  await tx.personToken.updateMany({ where: { personId, type, usedAt: null }, data: { usedAt: now } })
}

/**
 * Stores a token by its hash (issuePersonToken's, or one the caller made and
 * delivers itself, as unmanagedInvite's resetTokenHash); earlier unused tokens
 * of the same type stop working.
 */
export async function storePersonToken(
  tx: Transaction,
  personId: string,
  type: PersonTokenType,
  lifetimeMs: number,
  tokenHash: string,
  code?: string,
): Promise<Omit<IssuedToken, 'token'>> {
  const now = new Date()
  await voidPersonTokens(tx, personId, type, now)
  const expiresAt = new Date(now.getTime() + lifetimeMs)
  const row = await tx.personToken.create({
    data: {
      personId,
      type,
      tokenHash,
      otpHash: code === undefined ? null : hashToken(code),
      otpActivatedAt: code === undefined ? null : now,
      expiresAt,
    },
  })
  return { requestId: row.id, expiresAt }
}

/** Compares a presented secret with a stored sha256 hex in constant time. */
export function matchesHash(secret: string, storedHash: string | null): boolean {
  if (!storedHash) return false
  const presented = Buffer.from(hashToken(secret), 'hex')
  const stored = Buffer.from(storedHash, 'hex')
  return presented.length === stored.length && timingSafeEqual(presented, stored)
}

export const findTokenRequest = (tx: Transaction, requestId: string, type: PersonTokenType) =>
  isUuid(requestId) ? tx.personToken.findFirst({ where: { id: requestId, type } }) : Promise.resolve(null)

export const findTokenByValue = (tx: Transaction, token: string) => tx.personToken.findUnique({ where: { tokenHash: hashToken(token) } })

/** Why a token that was presented correctly can no longer be used, if it cannot. */
export function spentProblem(row: PersonToken, now = Date.now()): 'TOKEN_USED' | 'TOKEN_EXPIRED' | null {
  if (row.usedAt) return 'TOKEN_USED'
  if (row.expiresAt.getTime() <= now) return 'TOKEN_EXPIRED'
  return null
}

/** Marks the token used; false when a concurrent request used it first. */
export async function consumePersonToken(tx: Transaction, row: PersonToken): Promise<boolean> {
  const { count } = await tx.personToken.updateMany({ where: { id: row.id, usedAt: null }, data: { usedAt: new Date() } })
  return count === 1
}
