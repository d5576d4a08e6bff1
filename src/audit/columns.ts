/**
 * The columns of a person_auth_log entry, once for every reader: the chain's
 * canonical encoding (ChainEntry), the authLog page (AuthLogRow) and the
 * export (AuthLogEntryJson) differ only in how they hold times, JSON and the
 * sequence. A new column added here reaches them all; it then also needs the
 * chain trigger's canonical form (a new migration), canonicalEntry, and the
 * SELECT lists of query.ts and integrity.ts.
 */
export interface AuthLogColumns<Instant, Json, Sequence = bigint> {
  readonly sequence: Sequence
  readonly id: string
  readonly createdAt: Instant
  readonly type: string
  readonly success: boolean
  readonly personId: string | null
  readonly identityId: string | null
  readonly targetPersonId: string | null
  /** As PostgreSQL prints an inet: 192.0.2.1, 2001:db8::1 (a /n suffix only for a network). */
  readonly clientIp: string | null
  readonly userAgent: string | null
  readonly personInputIdentifier: string | null
  readonly errorCode: string | null
  readonly metadata: Json
  readonly eventData: Json
}
