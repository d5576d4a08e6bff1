import { prepareNewPassword } from '../auth/passwords.js'
import { requireTokenHash } from '../apiKeys/tokens.js'
import { holdTurnInDatabase } from '../auth/inTurn.js'
import { issuePersonToken, storePersonToken } from '../auth/personTokens.js'
import { runCommand } from '../command.js'
import { lockRow } from '../rowLock.js'
import type { TenantContext } from '../context.js'
import { InvalidInputError, requireTextWithinLimit } from '../invalidInput.js'
import { type Failure, fail, succeed } from '../outcome.js'
import { isValidEmail, normalizeEmail } from '../persons/persons.js'
import { findProjectBySlug, invalidMemberships, type Membership, membershipsOf, writeMemberships } from '../projects/memberships.js'

/** How long the password-reset token an invitation hands out (to set a first password) works. */
const INVITE_TOKEN_LIFETIME_MS = 7 * 24 * 3_600_000

export type InviteMethod = 'CREATE_PASSWORD' | 'RESET_PASSWORD'
export type InviteErrorCode = 'PROJECT_NOT_FOUND' | 'ALREADY_MEMBER' | 'INVALID_MEMBERSHIP' | 'INVALID_EMAIL_FORMAT'

export interface InviteInput {
  readonly email: string
  readonly name?: string | null
  readonly projectSlug: string
  readonly memberships: readonly Membership[]
}

/** How a new person gets their first password. */
type Credentials =
  | { readonly kind: 'mailedToken' }
  | { readonly kind: 'unmanaged'; readonly password: string | null; readonly resetTokenHash: string | null }

/**
 * Makes `email` a member of the project, creating the person (global role
 * `person`) when nobody has that email yet. One person_invite entry; the
 * password of an unmanaged invite is hashed and never recorded.
 */
async function invitePerson(context: TenantContext, input: InviteInput, credentials: Credentials) {
  const email = normalizeEmail(input.email)
  if (!isValidEmail(email)) return fail('INVALID_EMAIL_FORMAT' as InviteErrorCode, 'The email address is not valid.')
  const project = await findProjectBySlug(context.prisma, input.projectSlug)
  if (!project) return fail('PROJECT_NOT_FOUND' as InviteErrorCode, `Project ${input.projectSlug} not found.`)
  const invalid = invalidMemberships(input.memberships)
  if (invalid) return invalid as Failure<InviteErrorCode>
  requireTextWithinLimit(input.name, 'name')
  // The password policy holds here as for any other new password. Hashed before the transaction
  // opens, so the password work holds no connection.
  const password = credentials.kind === 'unmanaged' && credentials.password != null ? await prepareNewPassword(context.prisma, credentials.password) : null
  if (password?.weakReasons) throw new InvalidInputError(`The password is too weak: ${password.weakReasons.join(', ')}.`, 'options.password')
  const passwordHash = password?.hash ?? null
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    // Invitations of one email wait for each other: two would both create the person, or both add them.
    await holdTurnInDatabase(tx, `invite:${email}`)
    const existing = await tx.person.findUnique({ where: { email } })
    if (existing) await lockRow(tx, 'identity', { id: existing.identityId })
    if (existing && (await membershipsOf(tx, project.id, existing.identityId)).length > 0) {
      return fail('ALREADY_MEMBER' as InviteErrorCode, `${email} is already a member of ${project.slug}.`)
    }
    const person =
      existing ??
      (await tx.person.create({
        data: {
          email,
          name: input.name ?? null,
          passwordHash,
          identity: { create: { roles: ['person'] } },
        },
      }))
    const isNew = !existing
    const memberships = await writeMemberships(tx, project.id, person.identityId, input.memberships)
    let token: string | null = null
    if (isNew) {
      if (credentials.kind === 'mailedToken') {
        token = (await issuePersonToken(tx, person.id, 'password_reset', INVITE_TOKEN_LIFETIME_MS)).token
      } else if (credentials.resetTokenHash != null) {
        await storePersonToken(tx, person.id, 'password_reset', INVITE_TOKEN_LIFETIME_MS, credentials.resetTokenHash)
      }
    }
    audit({ type: 'person_invite', success: true, targetPersonId: person.id, eventData: { projectSlug: project.slug, email, isNew, memberships } })
    return succeed({ person, isNew, project, token })
  })
}

/**
 * invite: a new person is mailed NEW_USER_INVITED with a token to set their
 * password (both methods: Custos never mails a password), an existing one
 * EXISTING_USER_INVITED.
 */
export async function invite(context: TenantContext, input: InviteInput, options: { method?: InviteMethod | null; mailVariant?: string | null } = {}) {
  const outcome = await invitePerson(context, input, { kind: 'mailedToken' })
  if (!outcome.ok) return outcome
  const { person, isNew, project, token } = outcome.result
  if (person.email) {
    await context.mailer.deliver({
      to: person.email,
      type: isNew ? 'NEW_USER_INVITED' : 'EXISTING_USER_INVITED',
      variables: { project: project.name, projectSlug: project.slug, name: person.name, token, method: options.method ?? 'CREATE_PASSWORD' },
      projectId: project.id,
      variant: options.mailVariant,
    })
  }
  return succeed({ person, isNew })
}

/** unmanagedInvite: no mail; a new person gets the given password, or the caller's own reset token hash. */
export async function unmanagedInvite(context: TenantContext, input: InviteInput, options: { password?: string | null; resetTokenHash?: string | null }) {
  if (options.resetTokenHash != null) requireTokenHash(options.resetTokenHash, 'options.resetTokenHash')
  const outcome = await invitePerson(context, input, {
    kind: 'unmanaged',
    password: options.password ?? null,
    resetTokenHash: options.resetTokenHash ?? null,
  })
  return outcome.ok ? succeed({ person: outcome.result.person, isNew: outcome.result.isNew }) : outcome
}
