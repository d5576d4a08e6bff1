import { z } from 'zod'
import type { Transaction } from '../command.js'
import type { TenantContext } from '../context.js'
import { isUuid } from '../ids.js'
import { lockRow } from '../rowLock.js'

/** Emails are compared and stored lower-cased and trimmed. */
export const normalizeEmail = (email: string) => email.trim().toLowerCase()

/** An address longer than this (RFC 5321's path limit less the brackets) cannot be delivered to, and could outgrow the email index. */
const MAX_EMAIL_LENGTH = 254
const emailSchema = z.email().max(MAX_EMAIL_LENGTH)
export const isValidEmail = (email: string) => emailSchema.safeParse(email).success

/**
 * The person with this id, its row locked until the transaction ends, for the command that reads it
 * to change it (lockRow); null for an unknown or malformed id.
 */
export async function findPersonById(tx: Transaction, personId: string) {
  if (!isUuid(personId)) return null
  await lockRow(tx, 'person', { id: personId })
  return tx.person.findUnique({ where: { id: personId } })
}

/** The caller's own person, locked as findPersonById locks it; null for a caller that is not a person (an API key). */
export const callerPerson = (context: Pick<TenantContext, 'caller'>, tx: Transaction) =>
  context.caller?.personId ? findPersonById(tx, context.caller.personId) : Promise.resolve(null)

export const findPersonByEmail = (tx: Transaction, email: string) =>
  tx.person.findUnique({ where: { email: normalizeEmail(email) }, include: { identity: true } })

/** The person an identity belongs to, if any: the subject of changes made to that identity. */
export async function personIdOfIdentity(tx: Transaction, identityId: string): Promise<string | null> {
  const person = await tx.person.findUnique({ where: { identityId }, select: { id: true } })
  return person?.id ?? null
}
