import type { OutgoingMail } from '../mail/mailer.js'
import type { TenantContext } from './context.js'

/**
 * Sends a mail after its change committed. The change stands whether or not
 * the mail goes out, so a failure is logged (type and domain only) rather than
 * turned into an error for a request that did succeed.
 */
export async function sendNotification(context: TenantContext, mail: OutgoingMail): Promise<void> {
  try {
    await context.mailer.send(mail)
  } catch (error) {
    context.logger.error(
      { mailType: mail.type, recipientDomain: mail.to.split('@')[1], err: { message: (error as Error).message } },
      'mail could not be sent',
    )
  }
}
