import { z } from 'zod'
import { type AuditEventType, auditCatalog } from './catalog.js'

/** The metadata keys an entry may carry; everything else is dropped. */
const metadataSchema = z.object({
  forwarderIp: z.string().optional(),
  forwarderUserAgent: z.string().optional(),
  sessionId: z.string().optional(),
  reason: z.string().optional(),
  retryAfter: z.number().optional(),
  identityProvider: z.string().optional(),
  /** The identity provider's subject (`sub`) of an idp_login: an account identifier, not a credential. */
  externalIdentifier: z.string().optional(),
  /** The id of a password reset or passwordless request (person_token.id); never its token. */
  requestId: z.string().optional(),
  /** A sign-in's second factor was a backup code (never the code). */
  backupCodeUsed: z.boolean().optional(),
  /** An idp_login that linked a person matched by email cleared what was set before it: password, second factor, sessions. */
  credentialsCleared: z.boolean().optional(),
  /** The project whose template a reset or sign-in mail was rendered with (options.mailProject, when it applied). */
  mailProject: z.string().optional(),
  /** The template variant a reset or sign-in mail asked for (options.mailVariant). */
  mailVariant: z.string().optional(),
})
export type AuditMetadata = z.input<typeof metadataSchema>

/** Reduces `data` to what the catalog allows for `type` (unknown keys dropped, secrets masked). */
export function redactEventData(type: AuditEventType, data: unknown): Record<string, unknown> {
  return auditCatalog[type].eventData.parse(data ?? {}) as Record<string, unknown>
}

export function redactMetadata(metadata: unknown): Record<string, unknown> {
  return metadataSchema.parse(metadata ?? {})
}
