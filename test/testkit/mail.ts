import type { AddressInfo } from 'node:net'
import { SMTPServer } from 'smtp-server'

/** A message as a real SMTP server on loopback received it. */
export interface ReceivedMail {
  readonly to: string[]
  readonly subject: string
  /** The text body, transfer encoding undone. */
  readonly text: string
}

export interface MailCatcher {
  /** For SMTP_URL. */
  readonly url: string
  readonly received: ReceivedMail[]
  /** Waits (bounded) for the next message to `to` that arrives after the call, or one already there that `since` counts. */
  waitFor(to: string, options?: { since?: number; timeoutMs?: number }): Promise<ReceivedMail>
  close(): Promise<void>
}

/** Undoes quoted-printable (soft line breaks and =XX escapes). */
const decodeQuotedPrintable = (text: string) =>
  Buffer.from(
    text.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_match, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))),
    'latin1',
  ).toString('utf8')

/** Reads a single-part text message: headers, then the body in its transfer encoding. */
function parseMessage(raw: string, to: string[]): ReceivedMail {
  const [head = '', ...rest] = raw.split(/\r?\n\r?\n/)
  const body = rest.join('\n\n')
  const headers = head.replace(/\r?\n[ \t]+/g, ' ')
  const header = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(headers)?.[1]?.trim() ?? ''
  const encoding = header('content-transfer-encoding').toLowerCase()
  const text =
    encoding === 'quoted-printable' ? decodeQuotedPrintable(body) : encoding === 'base64' ? Buffer.from(body, 'base64').toString('utf8') : body
  return { to, subject: header('subject'), text }
}

/** A real SMTP server on 127.0.0.1 that keeps what it receives. */
export async function startMailCatcher(): Promise<MailCatcher> {
  const received: ReceivedMail[] = []
  const waiters = new Set<() => void>()
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('end', () => {
        received.push(parseMessage(Buffer.concat(chunks).toString('utf8'), session.envelope.rcptTo.map((rcpt) => rcpt.address)))
        for (const wake of waiters) wake()
        callback()
      })
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.server.address() as AddressInfo
  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    async waitFor(to, options = {}) {
      const since = options.since ?? received.length
      const deadline = Date.now() + (options.timeoutMs ?? 10_000)
      for (;;) {
        const mail = received.slice(since).find((candidate) => candidate.to.includes(to.toLowerCase()) || candidate.to.includes(to))
        if (mail) return mail
        if (Date.now() > deadline) throw new Error(`no mail to ${to} arrived`)
        await new Promise<void>((resolve) => {
          const wake = () => {
            waiters.delete(wake)
            resolve()
          }
          waiters.add(wake)
          setTimeout(wake, 200)
        })
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

/** The value after `label:` in a mail body (e.g. "Token", "Request", "Code"). */
export function mailField(mail: ReceivedMail, label: string): string {
  const match = new RegExp(`^${label}:\\s*(\\S+)`, 'm').exec(mail.text)
  if (!match?.[1]) throw new Error(`mail has no ${label}: ${mail.text}`)
  return match[1]
}
