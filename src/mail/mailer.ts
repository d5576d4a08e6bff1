import Mustache from 'mustache'
import nodemailer from 'nodemailer'
import type { Logger } from 'pino'
import type { PrismaClient } from '../generated/prisma/client.js'
import { type MailType, defaultTemplates } from './templates.js'

export interface OutgoingMail {
  readonly to: string
  readonly type: MailType
  /** Values for the template's {{placeholders}}. */
  readonly variables: Record<string, string | number | null | undefined>
  readonly projectId?: string | null
  readonly variant?: string | null
}

export interface Mailer {
  /** Sends; rejects when the mail cannot be rendered or delivered. */
  send(mail: OutgoingMail): Promise<void>
  /**
   * Sends after a change committed: the change stands whether or not the mail
   * goes out, so a failure is logged (mail type and recipient domain only)
   * instead of failing a request that did succeed. Never rejects.
   */
  deliver(mail: OutgoingMail): Promise<void>
  /**
   * deliver() without making the caller wait: an answer must not take longer
   * when a mail goes out (that would tell whether an email is known).
   */
  sendInBackground(mail: OutgoingMail): void
}

/**
 * Renders a mail from the mail_template table (project and variant first,
 * then the global one) or the built-in default, and delivers it over SMTP,
 * or, without SMTP_URL, into the mail_outbox table. Its contents (tokens!)
 * never reach the log: only the type and recipient domain do.
 */
export function createMailer(prisma: PrismaClient, logger: Logger, smtpUrl: string | undefined, from = 'Custos <no-reply@custos.local>'): Mailer {
  const transport = smtpUrl ? nodemailer.createTransport(smtpUrl) : undefined
  const mailer: Mailer = {
    deliver: (mail) =>
      mailer.send(mail).catch((error: unknown) => {
        logger.error({ mailType: mail.type, recipientDomain: mail.to.split('@')[1], error: (error as Error).message }, 'mail delivery failed')
      }),
    sendInBackground(mail) {
      void mailer.deliver(mail)
    },
    async send(mail) {
      const variant = mail.variant ?? ''
      const projectId = mail.projectId ?? null
      const candidates = await prisma.mailTemplate.findMany({
        where: {
          mailType: mail.type,
          OR: [{ projectId: null }, ...(projectId ? [{ projectId }] : [])],
          variant: { in: [variant, ''] },
        },
      })
      // Most specific first: the project's own variant, the project's default, the global variant, the global default.
      const rank = (template: { projectId: string | null; variant: string }) =>
        (template.projectId === projectId && projectId ? 0 : 2) + (template.variant === variant ? 0 : 1)
      const stored = candidates.sort((a, b) => rank(a) - rank(b))[0]
      const template = stored ?? defaultTemplates[mail.type]
      if (!template) throw new Error(`no template for mail type ${mail.type}`)
      const view = { ...mail.variables, email: mail.variables.email ?? mail.to }
      // Plain-text mail: no HTML escaping of values.
      const render = (text: string) => Mustache.render(text, view, {}, { escape: (value: string) => value })
      const subject = render(template.subject)
      const body = render(template.content)
      if (transport) await transport.sendMail({ from, to: mail.to, subject, text: body, replyTo: stored?.replyTo ?? undefined })
      else await prisma.mailOutbox.create({ data: { recipient: mail.to, subject, body } })
      logger.info({ mailType: mail.type, recipientDomain: mail.to.split('@')[1], via: transport ? 'smtp' : 'outbox' }, 'mail sent')
    },
  }
  return mailer
}
