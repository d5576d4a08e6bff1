import type { Transaction } from '../command.js'
import type { ClientInfo } from '../../http/clientInfo.js'
import { generateToken, hashToken } from './tokens.js'

export interface NewSession {
  readonly id: string
  readonly token: string
}

/** Opens a sliding session for a person's identity; `expirationMinutes` is its idle lifetime. */
export async function openSession(
  tx: Transaction,
  identityId: string,
  expirationMinutes: number,
  client: ClientInfo,
  trustForwardedInfo = false,
): Promise<NewSession> {
  const token = generateToken()
  const session = await tx.apiKey.create({
    data: {
      tokenHash: hashToken(token),
      type: 'session',
      identityId,
      expiration: expirationMinutes * 60,
      expiresAt: new Date(Date.now() + expirationMinutes * 60_000),
      trustForwardedInfo,
      createdIp: client.ip,
      createdUserAgent: client.userAgent,
    },
  })
  return { id: session.id, token }
}

/** Ends every open session of an identity. */
export async function closeSessions(tx: Transaction, identityId: string, exceptApiKeyId?: string): Promise<number> {
  const { count } = await tx.apiKey.updateMany({
    where: { identityId, type: 'session', disabledAt: null, ...(exceptApiKeyId ? { id: { not: exceptApiKeyId } } : {}) },
    data: { disabledAt: new Date() },
  })
  return count
}
