import type { Transaction } from '../command.js'

/** Which template a flow's mail uses (Contember's mailProject / mailVariant options). */
export interface MailOptions {
  readonly mailProject?: string | null
  readonly mailVariant?: string | null
}

/** The project id and variant to render with; an unknown project slug falls back to the global templates. */
export async function mailTemplateChoice(tx: Transaction, options: MailOptions | null | undefined) {
  const project = options?.mailProject ? await tx.project.findUnique({ where: { slug: options.mailProject }, select: { id: true } }) : null
  return { projectId: project?.id ?? null, variant: options?.mailVariant ?? null }
}
