import type { Prisma } from '../generated/prisma/client.js'
import type { ClientInfo } from '../http/clientInfo.js'
import { type AuditEventType, type EventData, auditCatalog } from './catalog.js'
import { type AuditMetadata, redactEventData, redactMetadata } from './redaction.js'

/** Who is acting, and from where: taken from the request. */
export interface AuditActor {
  readonly identityId: string | null
  readonly personId: string | null
  readonly client: ClientInfo
}

export interface AuditEntry<T extends AuditEventType = AuditEventType> {
  readonly type: T
  readonly success: boolean
  /** Overrides the actor's person (a sign-in's person is known only after it). */
  readonly personId?: string | null
  readonly identityId?: string | null
  readonly targetPersonId?: string | null
  readonly personInputIdentifier?: string | null
  readonly errorCode?: string | null
  readonly metadata?: AuditMetadata
  readonly eventData?: EventData<T>
}

/** The server itself acting (start-up, retention): no identity, no client. */
export const systemActor: AuditActor = { identityId: null, personId: null, client: { ip: null, userAgent: null } }

/** Anything that can insert: the Prisma client or an interactive transaction. */
type Writer = Pick<Prisma.TransactionClient, 'personAuthLog'>

/**
 * What a caller typed is kept to this many characters: longer text does not fit
 * an index entry (about 2,700 bytes), and an attempt must be recorded whatever was typed.
 */
export const INPUT_IDENTIFIER_LIMIT = 512

/** The first `limit` characters of `text`, counted in code points, as the log's text limits count: no surrogate pair is split. */
export function firstCodePoints(text: string, limit: number): string {
  let end = 0
  for (let count = 0; count < limit && end < text.length; count++) end += text.codePointAt(end)! > 0xffff ? 2 : 1
  return text.slice(0, end)
}

/**
 * The one way an entry reaches person_auth_log. Callers pass the transaction
 * that holds the state change, so both commit together or not at all (on
 * PostgreSQL that commit does not hold the chain head through the disk flush:
 * src/db/flushAfterCommit.ts). sequence, hash and created_at are the database's.
 */
export async function recordAuditEntry(writer: Writer, actor: AuditActor, entry: AuditEntry): Promise<void> {
  if (!entry.success && auditCatalog[entry.type].category === 'administrative') {
    throw new Error(`administrative event ${entry.type} is recorded only on success`)
  }
  const { client } = actor
  await writer.personAuthLog.create({
    data: {
      type: entry.type,
      success: entry.success,
      identityId: entry.identityId !== undefined ? entry.identityId : actor.identityId,
      personId: entry.personId !== undefined ? entry.personId : actor.personId,
      targetPersonId: entry.targetPersonId ?? null,
      personInputIdentifier: entry.personInputIdentifier == null ? null : firstCodePoints(entry.personInputIdentifier, INPUT_IDENTIFIER_LIMIT),
      errorCode: entry.errorCode ?? null,
      clientIp: client.ip,
      userAgent: client.userAgent,
      metadata: redactMetadata({
        ...(client.forwarderIp ? { forwarderIp: client.forwarderIp } : {}),
        ...(client.forwarderUserAgent ? { forwarderUserAgent: client.forwarderUserAgent } : {}),
        ...entry.metadata,
      }) as Prisma.InputJsonObject,
      eventData: redactEventData(entry.type, entry.eventData) as Prisma.InputJsonObject,
    },
  })
}
