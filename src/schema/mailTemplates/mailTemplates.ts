import { type MailType, mailTypes, signInSecretMailTypes } from '../../mail/templates.js'
import { addMailTemplate, removeMailTemplate, visibleMailTemplates } from '../../tenant/mailTemplates/mailTemplates.js'
import { builder } from '../builder.js'
import { defineResponse } from '../responses.js'

const MailType = builder.enumType('MailType', { values: mailTypes })

type TemplateRow = Awaited<ReturnType<typeof visibleMailTemplates>>[number]

const MailTemplateData = builder.objectRef<TemplateRow>('MailTemplateData').implement({
  fields: (t) => ({
    projectSlug: t.string({ nullable: true, resolve: (template) => template.project?.slug ?? null }),
    type: t.field({ type: MailType, resolve: (template) => template.mailType as (typeof mailTypes)[number] }),
    variant: t.string({ nullable: true, resolve: (template) => template.variant || null }),
    subject: t.exposeString('subject'),
    content: t.exposeString('content'),
    useLayout: t.exposeBoolean('useLayout'),
    replyTo: t.exposeString('replyTo', { nullable: true }),
  }),
})

const MailTemplateInput = builder.inputType('MailTemplate', {
  fields: (t) => ({
    projectSlug: t.string({ required: false }),
    type: t.field({ type: MailType, required: true }),
    variant: t.string({ required: false, description: 'Custom mail variant identifier, e.g. a locale.' }),
    subject: t.string({ required: true }),
    content: t.string({ required: true }),
    useLayout: t.boolean({ required: false }),
    replyTo: t.string({ required: false }),
  }),
})

const MailTemplateIdentifier = builder.inputType('MailTemplateIdentifier', {
  fields: (t) => ({
    projectSlug: t.string({ required: false }),
    type: t.field({ type: MailType, required: true }),
    variant: t.string({ required: false }),
  }),
})

const AddMailTemplateResponse = defineResponse('AddMailTemplate', ['MISSING_VARIABLE', 'PROJECT_NOT_FOUND', 'INVALID_REPLY_EMAIL_FORMAT'] as const)
const RemoveMailTemplateResponse = defineResponse('RemoveMailTemplate', ['PROJECT_NOT_FOUND', 'TEMPLATE_NOT_FOUND'] as const)

/**
 * Global templates need mailTemplate:manage globally; a project's, in that project, except those
 * of mails carrying a sign-in secret: a project admin can make anyone a member, and writing such
 * a template would route, say, the super admin's reset token through text of their choosing.
 */
const manageTemplatesOf = (template: { readonly projectSlug?: string | null; readonly type: MailType }) => ({
  projectPrivilege: {
    privilege: 'mailTemplate:manage' as const,
    projectSlug: signInSecretMailTypes.includes(template.type) ? null : (template.projectSlug ?? null),
  },
})

builder.queryField('mailTemplates', (t) =>
  t.field({
    type: [MailTemplateData],
    description: 'The templates you may manage: global ones with a global mailTemplate:manage, and those of projects you administer.',
    authScopes: { authenticated: true },
    resolve: (_root, _args, context) => visibleMailTemplates(context),
  }),
)

builder.mutationFields((t) => ({
  addMailTemplate: t.field({
    type: AddMailTemplateResponse,
    nullable: true,
    description: 'Adds or replaces a mail template (mail_template_change, action add).',
    authScopes: (_root, args) => manageTemplatesOf(args.template),
    args: { template: t.arg({ type: MailTemplateInput, required: true }) },
    resolve: (_root, args, context) => addMailTemplate(context, args.template),
  }),
  removeMailTemplate: t.field({
    type: RemoveMailTemplateResponse,
    nullable: true,
    authScopes: (_root, args) => manageTemplatesOf(args.templateIdentifier),
    args: { templateIdentifier: t.arg({ type: MailTemplateIdentifier, required: true }) },
    resolve: (_root, args, context) => removeMailTemplate(context, args.templateIdentifier),
  }),
}))
