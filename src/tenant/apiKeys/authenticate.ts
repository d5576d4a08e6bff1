import type { PrismaClient } from '../../generated/prisma/client.js'
import type { Caller } from '../context.js'
import { hashToken } from './tokens.js'

/** Sliding sessions are extended at most this often, to keep reads cheap. */
const EXTEND_AFTER_MS = 60_000

export type Authentication = { ok: true; caller: Caller } | { ok: false; reason: 'UNKNOWN_TOKEN' | 'DISABLED' | 'EXPIRED' | 'PERSON_DISABLED' }

/** Finds the live API key behind a bearer token and the identity it speaks for. */
export async function authenticate(prisma: PrismaClient, token: string): Promise<Authentication> {
  const apiKey = await prisma.apiKey.findUnique({
    where: { tokenHash: hashToken(token) },
    include: { identity: { include: { person: { select: { id: true, disabledAt: true } } } } },
  })
  if (!apiKey) return { ok: false, reason: 'UNKNOWN_TOKEN' }
  if (apiKey.disabledAt) return { ok: false, reason: 'DISABLED' }
  const now = Date.now()
  if (apiKey.expiresAt && apiKey.expiresAt.getTime() <= now) return { ok: false, reason: 'EXPIRED' }
  const person = apiKey.identity.person
  if (person?.disabledAt) return { ok: false, reason: 'PERSON_DISABLED' }

  if (apiKey.type === 'one_off') {
    await prisma.apiKey.update({ where: { id: apiKey.id }, data: { disabledAt: new Date(now), lastUsedAt: new Date(now) } })
  } else if (!apiKey.lastUsedAt || now - apiKey.lastUsedAt.getTime() > EXTEND_AFTER_MS) {
    const slidingExpiry = apiKey.type === 'session' && apiKey.expiration ? new Date(now + apiKey.expiration * 1000) : undefined
    await prisma.apiKey.update({ where: { id: apiKey.id }, data: { lastUsedAt: new Date(now), expiresAt: slidingExpiry } })
  }
  return {
    ok: true,
    caller: {
      identityId: apiKey.identityId,
      personId: person?.id ?? null,
      roles: apiKey.identity.roles,
      apiKeyId: apiKey.id,
      apiKeyType: apiKey.type,
      trustForwardedInfo: apiKey.trustForwardedInfo,
    },
  }
}
