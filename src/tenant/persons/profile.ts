import type { AuditEntry } from '../../audit/recorder.js'
import type { Person } from '../../generated/prisma/client.js'
import { Prisma } from '../../generated/prisma/client.js'
import { voidPersonTokens } from '../auth/personTokens.js'
import { type CommandScope, runCommand } from '../command.js'
import type { TenantContext } from '../context.js'
import { type Outcome, fail, succeed } from '../outcome.js'
import { requireTextWithinLimit } from '../invalidInput.js'
import { callerPerson, findPersonById, isValidEmail, normalizeEmail } from './persons.js'

export interface ProfileChange {
  readonly email?: string | null
  readonly name?: string | null
}

type ProfileProblem = 'INVALID_EMAIL_FORMAT' | 'EMAIL_ALREADY_EXISTS'

/** Addresses of a committed email change, for the notice to the old one. */
interface EmailChanged {
  readonly previousEmail: string
  readonly email: string
}

/**
 * Changes a person's email and/or name. A changed email is recorded as
 * `email_change` with the address before and after, refusals included; a changed name as
 * `name_change`.
 */
async function updateProfile(
  { tx, audit }: CommandScope,
  person: Person,
  change: ProfileChange,
  target: Pick<AuditEntry, 'targetPersonId'>,
): Promise<Outcome<EmailChanged | null, ProfileProblem>> {
  requireTextWithinLimit(change.name, 'name')
  const email = change.email != null ? normalizeEmail(change.email) : undefined
  const emailChanges = email !== undefined && email !== person.email
  const nameChanges = change.name !== undefined && change.name !== person.name
  const emailEntry = { ...target, type: 'email_change' as const, eventData: { before: { email: person.email }, after: { email: email ?? null } } }
  const refuse = (code: ProfileProblem, message: string) => {
    audit({ ...emailEntry, success: false, errorCode: code })
    return fail(code, message)
  }
  if (emailChanges) {
    if (!isValidEmail(email)) return refuse('INVALID_EMAIL_FORMAT', 'The email address is not valid.')
    if (await tx.person.findUnique({ where: { email }, select: { id: true } })) return refuse('EMAIL_ALREADY_EXISTS', 'A person with this email already exists.')
  }
  try {
    await tx.person.update({
      where: { id: person.id },
      data: { ...(emailChanges ? { email } : {}), ...(nameChanges ? { name: change.name } : {}) },
    })
  } catch (error) {
    // Another request took the address between the check and the update.
    if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') {
      return refuse('EMAIL_ALREADY_EXISTS', 'A person with this email already exists.')
    }
    throw error
  }
  if (nameChanges) audit({ ...target, type: 'name_change', success: true, eventData: { before: { name: person.name }, after: { name: change.name ?? null } } })
  if (!emailChanges) return succeed(null)
  // Reset and passwordless tokens went to the old address: they must not outlive it there.
  await voidPersonTokens(tx, person.id)
  audit({ ...emailEntry, success: true })
  return succeed(person.email ? { previousEmail: person.email, email } : null)
}

/**
 * Tells the old address that the account's email changed, after the change committed: someone
 * holding a stolen session could otherwise move the account to their own address unnoticed.
 */
async function notifyEmailChange<Code extends string>(context: TenantContext, outcome: Outcome<EmailChanged | null, Code>) {
  if (!outcome.ok) return outcome
  if (outcome.result) {
    await context.mailer.deliver({ to: outcome.result.previousEmail, type: 'EMAIL_CHANGE_NOTIFY', variables: { email: outcome.result.previousEmail, newEmail: outcome.result.email } })
  }
  return succeed(null)
}

/** An admin changes a person's email and/or name. */
export async function changeProfile(context: TenantContext, personId: string, change: ProfileChange) {
  const outcome = await runCommand(context.prisma, context.actor, async (scope) => {
    const person = await findPersonById(scope.tx, personId)
    if (!person) return fail('PERSON_NOT_FOUND' as const, `Person ${personId} not found.`)
    return updateProfile(scope, person, change, { targetPersonId: person.id })
  })
  return notifyEmailChange(context, outcome)
}

/** A person changes their own email and/or name. */
export async function changeMyProfile(context: TenantContext, change: ProfileChange) {
  const outcome = await runCommand(context.prisma, context.actor, async (scope) => {
    const person = await callerPerson(context, scope.tx)
    if (!person) return fail('NOT_A_PERSON' as const, 'Only a person has a profile.')
    return updateProfile(scope, person, change, {})
  })
  return notifyEmailChange(context, outcome)
}
