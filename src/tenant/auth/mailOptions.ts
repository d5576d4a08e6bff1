import type { Transaction } from '../command.js'

/** Which template a flow's mail uses (Contember's mailProject / mailVariant options). */
export interface MailOptions {
  readonly mailProject?: string | null
  readonly mailVariant?: string | null
}

/**
 * The project id and variant to render a mail to `recipientIdentityId` with. A project's templates
 * are written by its admins and the mail carries a secret (a reset or sign-in token), so they are
 * used only for the project's own members; anyone else's mail, like that of an unknown project
 * slug, falls back to the global templates.
 */
export async function mailTemplateChoice(tx: Transaction, options: MailOptions | null | undefined, recipientIdentityId: string) {
  const project = options?.mailProject
    ? await tx.project.findFirst({ where: { slug: options.mailProject, memberships: { some: { identityId: recipientIdentityId } } }, select: { id: true } })
    : null
  return { projectId: project?.id ?? null, variant: options?.mailVariant ?? null }
}
