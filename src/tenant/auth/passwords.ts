import { randomBytes } from 'node:crypto'
import { hash, verify } from '@node-rs/argon2'
import type { PrismaClient } from '../../generated/prisma/client.js'
import { loadTenantConfig } from '../config/tenantConfig.js'
import { type WeakPasswordReason, weakPasswordReasons } from './passwordPolicy.js'

// OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane.
// algorithm 2 is argon2id (the package's const enum cannot be imported under isolatedModules).
const options = { algorithm: 2 as const, memoryCost: 19_456, timeCost: 2, parallelism: 1 }

/**
 * Hashing and verifying take tens of milliseconds. Callers do both before their transaction
 * opens, so the work holds no pooled connection (on PGlite, the only one).
 */
export const hashPassword = (password: string) => hash(password, options)

/** A new password the policy accepts, hashed; or why it is too weak, with no hash spent on it. */
export type NewPassword = { readonly hash: string; readonly weakReasons?: never } | { readonly hash?: never; readonly weakReasons: WeakPasswordReason[] }

export async function prepareNewPassword(prisma: PrismaClient, password: string): Promise<NewPassword> {
  const weakReasons = weakPasswordReasons(password, (await loadTenantConfig(prisma)).password)
  return weakReasons.length > 0 ? { weakReasons } : { hash: await hashPassword(password) }
}

/**
 * Verified against when an email is unknown, so the answer takes the same time.
 * Hashed as the module loads: made lazily, the first unknown email would pay for the hash too.
 */
const decoyHash = hashPassword(`decoy-${randomBytes(16).toString('hex')}`)

/** Checks a password; with no stored hash it spends the same work and answers false. */
export async function verifyPassword(storedHash: string | null | undefined, password: string): Promise<boolean> {
  if (!storedHash) {
    await verify(await decoyHash, password).catch(() => false)
    return false
  }
  return verify(storedHash, password).catch(() => false)
}
