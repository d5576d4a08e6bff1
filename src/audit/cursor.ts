import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { AppConfig } from '../config.js'
import { loadOrCreateKeyFile } from '../crypto/keyFiles.js'
import { isUuid } from '../tenant/ids.js'

/**
 * Opaque authLog cursors. A cursor names the last entry a page showed, by its place in the
 * order (created_at, id), the filter that page was read with, and the chain head when the walk's
 * first page was read:
 * `base64url(JSON [createdAt, id, filterDigest, headSequence]) "." base64url(HMAC-SHA256)`.
 * The MAC makes a tampered cursor, or one minted by another installation, detectable;
 * the digest makes a cursor read with a different filter detectable.
 */

/** A place in the log's order: entries after it are older. `createdAt` keeps microseconds. */
export interface AuthLogPosition {
  readonly createdAt: string
  readonly id: string
  /**
   * The chain's last sequence when the walk began. An entry written since then can share
   * `createdAt` (a millisecond) with the position and sort after it by its random id: this keeps
   * such an entry out of the walk's later pages.
   */
  readonly throughSequence?: string
}

export type DecodedCursor = { ok: true; position: AuthLogPosition } | { ok: false; problem: string }

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/

export class CursorCodec {
  constructor(private readonly key: Buffer) {}

  encode(position: AuthLogPosition, filterDigest: string): string {
    const payload = Buffer.from(JSON.stringify([position.createdAt, position.id, filterDigest, position.throughSequence])).toString('base64url')
    return `${payload}.${this.sign(payload)}`
  }

  decode(cursor: string, filterDigest: string): DecodedCursor {
    const [payload, mac, ...rest] = cursor.split('.')
    if (!payload || !mac || rest.length > 0 || !this.verify(payload, mac)) {
      return { ok: false, problem: 'cursor is not valid: it was changed, or made by another installation' }
    }
    const parsed: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
    if (!Array.isArray(parsed) || parsed.length !== 4) return { ok: false, problem: 'cursor is not valid' }
    const [createdAt, id, digest, throughSequence] = parsed as unknown[]
    if (
      typeof createdAt !== 'string' ||
      !ISO_INSTANT.test(createdAt) ||
      typeof id !== 'string' ||
      !isUuid(id) ||
      typeof throughSequence !== 'string' ||
      !/^\d{1,19}$/.test(throughSequence)
    ) {
      return { ok: false, problem: 'cursor is not valid' }
    }
    if (digest !== filterDigest) return { ok: false, problem: 'cursor was made for a different filter' }
    return { ok: true, position: { createdAt, id, throughSequence } }
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url')
  }

  private verify(payload: string, mac: string): boolean {
    const expected = Buffer.from(this.sign(payload))
    const given = Buffer.from(mac)
    return given.length === expected.length && timingSafeEqual(given, expected)
  }
}

/**
 * The installation's cursor key: derived from CUSTOS_CURSOR_SECRET (set the same value on every
 * instance behind one load balancer), else from a key file created in the data directory.
 */
export async function loadCursorCodec(config: Pick<AppConfig, 'cursorSecret' | 'dataDir'>): Promise<CursorCodec> {
  const secret =
    config.cursorSecret ?? (await loadOrCreateKeyFile(config.dataDir, 'cursor.key', () => randomBytes(32).toString('base64url')))
  // A key of its own, so the secret could serve other purposes without cursors revealing anything.
  return new CursorCodec(createHash('sha256').update('custos authLog cursor\0').update(secret).digest())
}
