import Mustache from 'mustache'
import type { MailType } from '../../mail/templates.js'
import { runCommand } from '../command.js'
import type { TenantContext } from '../context.js'
import { fail, succeed } from '../outcome.js'
import { isValidEmail } from '../persons/persons.js'
import { findProjectBySlug } from '../projects/memberships.js'

/** Placeholders a template of a type must use, or the mail would be useless. */
const requiredVariables: Partial<Record<MailType, readonly string[]>> = {
  RESET_PASSWORD_REQUEST: ['token'],
}

export interface MailTemplateIdentifier {
  readonly projectSlug?: string | null
  readonly type: MailType
  /** A custom variant, e.g. a locale; none means the default one. */
  readonly variant?: string | null
}

export interface MailTemplateInput extends MailTemplateIdentifier {
  readonly subject: string
  readonly content: string
  readonly useLayout?: boolean | null
  readonly replyTo?: string | null
}

/** Every {{name}}, {{#name}} or {{^name}} a Mustache template refers to. */
function placeholders(template: string): Set<string> {
  const names = new Set<string>()
  const walk = (tokens: unknown[][]) => {
    for (const token of tokens) {
      if (['name', '&', '{', '#', '^'].includes(token[0] as string)) names.add(String(token[1]).trim())
      if (Array.isArray(token[4])) walk(token[4] as unknown[][])
    }
  }
  walk(Mustache.parse(template) as unknown[][])
  return names
}

async function projectOf(tx: Parameters<typeof findProjectBySlug>[0], projectSlug: string | null | undefined) {
  if (projectSlug == null) return { id: null }
  return findProjectBySlug(tx, projectSlug)
}

/** Adds a template, or replaces the one with the same project, type and variant. */
export function addMailTemplate(context: TenantContext, template: MailTemplateInput) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    const project = await projectOf(tx, template.projectSlug)
    if (!project) return fail('PROJECT_NOT_FOUND' as const, `Project ${template.projectSlug} not found.`)
    if (template.replyTo != null && !isValidEmail(template.replyTo)) {
      return fail('INVALID_REPLY_EMAIL_FORMAT' as const, 'replyTo is not a valid email address.')
    }
    let used: Set<string>
    try {
      used = placeholders(template.content)
    } catch (error) {
      return fail('MISSING_VARIABLE' as const, `content is not a valid template: ${(error as Error).message}`)
    }
    // The subject is rendered too: a broken one would stop every mail of this type.
    try {
      placeholders(template.subject)
    } catch (error) {
      return fail('MISSING_VARIABLE' as const, `subject is not a valid template: ${(error as Error).message}`)
    }
    const missing = (requiredVariables[template.type] ?? []).filter((name) => !used.has(name))
    if (missing.length > 0) return fail('MISSING_VARIABLE' as const, `content must use ${missing.map((name) => `{{${name}}}`).join(', ')}.`)

    const key = { projectId: project.id, mailType: template.type, variant: template.variant ?? '' }
    const fields = {
      subject: template.subject,
      content: template.content,
      useLayout: template.useLayout ?? true,
      replyTo: template.replyTo ?? null,
    }
    // Insert unless it exists (ON CONFLICT DO NOTHING also covers a concurrent insert), else overwrite
    // unless it is the same already: the same template again is no change, and no entry.
    const { count } = await tx.mailTemplate.createMany({ data: [{ ...key, ...fields }], skipDuplicates: true })
    if (count === 0 && (await tx.mailTemplate.updateMany({ where: { ...key, NOT: fields }, data: fields })).count === 0) return succeed(null)
    audit({ type: 'mail_template_change', success: true, eventData: eventData('add', template) })
    return succeed(null)
  })
}

export function removeMailTemplate(context: TenantContext, identifier: MailTemplateIdentifier) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    const project = await projectOf(tx, identifier.projectSlug)
    if (!project) return fail('PROJECT_NOT_FOUND' as const, `Project ${identifier.projectSlug} not found.`)
    const { count } = await tx.mailTemplate.deleteMany({
      where: { projectId: project.id, mailType: identifier.type, variant: identifier.variant ?? '' },
    })
    if (count === 0) return fail('TEMPLATE_NOT_FOUND' as const, 'No such mail template.')
    audit({ type: 'mail_template_change', success: true, eventData: eventData('remove', identifier) })
    return succeed(null)
  })
}

const eventData = (action: 'add' | 'remove', identifier: MailTemplateIdentifier) => ({
  action,
  type: identifier.type,
  projectSlug: identifier.projectSlug ?? null,
  variant: identifier.variant || null,
})

/** The templates the caller may manage: global ones with a global mailTemplate:manage, and those of projects it manages. */
export async function visibleMailTemplates(context: TenantContext) {
  const templates = await context.prisma.mailTemplate.findMany({
    include: { project: { select: { slug: true } } },
    orderBy: [{ mailType: 'asc' }, { variant: 'asc' }],
  })
  const allowed = new Map<string | null, boolean>([[null, context.permissions.has('mailTemplate:manage')]])
  for (const template of templates) {
    const slug = template.project?.slug ?? null
    if (slug !== null && !allowed.has(slug)) allowed.set(slug, await context.permissions.hasInProject('mailTemplate:manage', slug))
  }
  return templates.filter((template) => allowed.get(template.project?.slug ?? null))
}
