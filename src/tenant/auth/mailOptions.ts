import type { Transaction } from '../command.js'

/** Which template a flow's mail uses (Contember's mailProject / mailVariant options). */
export interface MailOptions {
  readonly mailProject?: string | null
  readonly mailVariant?: string | null
}

/**
 * The project id and variant to render a mail to `recipientIdentityId` with, and what the flow's
 * entry records of that choice. The mail carries a secret (a reset or sign-in token): a project's
 * templates of these types are written only by those who manage global templates (see
 * src/schema/mailTemplates), since a project admin can make anyone a member; and they are used
 * only for the project's own members. Anyone else's mail, like that of an unknown project slug,
 * falls back to the global templates.
 */
export async function mailTemplateChoice(tx: Transaction, options: MailOptions | null | undefined, recipientIdentityId: string) {
  const project = options?.mailProject
    ? await tx.project.findFirst({ where: { slug: options.mailProject, memberships: { some: { identityId: recipientIdentityId } } }, select: { id: true } })
    : null
  return {
    template: { projectId: project?.id ?? null, variant: options?.mailVariant ?? null },
    recorded: { ...(project && options?.mailProject ? { mailProject: options.mailProject } : {}), ...(options?.mailVariant ? { mailVariant: options.mailVariant } : {}) },
  }
}
