import { Prisma } from '../generated/prisma/client.js'
import type { Transaction } from './command.js'

/**
 * Tables whose rows commands read, change and record as they were: two commands on one row take
 * turns, or both read it before either writes, one change is lost and the log keeps a `before`
 * that was already gone (two role changes at once had undone a super_admin revocation).
 */
const lockableTables = {
  identity: 'identity',
  person: 'person',
  project: 'project',
  apiKey: 'api_key',
  identityProvider: 'identity_provider',
  personToken: 'person_token',
} as const

/**
 * Locks the row with this id (a uuid) or slug, if there is one, until the transaction ends. Read
 * the row after this: the read then sees what any command before it committed.
 */
export async function lockRow(tx: Transaction, table: keyof typeof lockableTables, where: { readonly id: string } | { readonly slug: string }): Promise<void> {
  const match = 'id' in where ? Prisma.sql`id = ${where.id}::uuid` : Prisma.sql`slug = ${where.slug}`
  await tx.$queryRaw`SELECT 1 FROM ${Prisma.raw(lockableTables[table])} WHERE ${match} FOR UPDATE`
}
