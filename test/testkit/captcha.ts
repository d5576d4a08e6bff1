import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

/** One siteverify request as the provider received it (form fields). */
export interface VerifyRequest {
  readonly secret: string | null
  readonly response: string | null
  readonly remoteip: string | null
}

/** What the provider answers: a JSON verdict, a raw body with a status, or no answer at all (the connection is dropped). */
export type VerifyAnswer = { json: unknown } | { status: number; body: string } | 'hang up'

export interface CaptchaTestProvider {
  /** For CUSTOS_CAPTCHA_VERIFY_URL. */
  readonly url: string
  readonly requests: VerifyRequest[]
  /** How the next requests are answered; by default a token is good when it starts with "good". */
  answerWith(answer: (request: VerifyRequest) => VerifyAnswer): void
  close(): Promise<void>
}

const byToken = (request: VerifyRequest): VerifyAnswer => ({ json: { success: request.response?.startsWith('good') ?? false } })

/** A siteverify endpoint on 127.0.0.1 that answers like Turnstile, hCaptcha and reCAPTCHA (a form POST, a JSON verdict). */
export async function startCaptchaProvider(): Promise<CaptchaTestProvider> {
  const requests: VerifyRequest[] = []
  let answer = byToken
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
      const request = { secret: form.get('secret'), response: form.get('response'), remoteip: form.get('remoteip') }
      requests.push(request)
      const reply = answer(request)
      if (reply === 'hang up') return void req.socket.destroy()
      const [status, body] = 'json' in reply ? [200, JSON.stringify(reply.json)] : [reply.status, reply.body]
      res.writeHead(status, { 'content-type': 'json' in reply ? 'application/json' : 'text/plain' }).end(body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/siteverify`,
    requests,
    answerWith(next) {
      answer = next
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
