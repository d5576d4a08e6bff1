import { z } from 'zod'

/**
 * Every event type that may appear in person_auth_log, what it means, and the
 * shape of its event_data. The schemas are allow-lists: parsing drops every
 * key they do not declare, so a new input field can never leak by default.
 * The database's CHECK constraint lists the same types (a test compares them).
 */

/** Authentication events are recorded on failure too; administrative ones only on success. */
export type EventCategory = 'authentication' | 'administrative'

interface EventDefinition {
  readonly category: EventCategory
  readonly description: string
  readonly eventData: z.ZodType<Record<string, unknown>>
}

const nothing = z.object({})
const roles = z.object({ roles: z.array(z.string()) })
const roleChange = z.object({ before: roles, after: roles })
const membership = z.object({
  role: z.string(),
  variables: z.array(z.object({ name: z.string(), values: z.array(z.string()) })),
})
const membershipChange = z.object({
  projectId: z.string(),
  identityId: z.string(),
  before: z.array(membership),
  after: z.array(membership),
})
const passwordlessChoice = z.object({ passwordlessEnabled: z.boolean().nullable() })
/** Absent when the caller is not a person. */
const passwordlessChange = z.object({ before: passwordlessChoice, after: passwordlessChoice }).partial()
const idpChange = z.object({
  identityProvider: z.string(),
  type: z.string().optional(),
  /** Sorted key names only: values hold client secrets and URLs. */
  configurationKeys: z.array(z.string()).optional(),
  options: z.record(z.string(), z.boolean()).optional(),
})
const jsonValue = z.json()
/** A configuration section with exactly these keys: an undeclared one is dropped like anywhere else. */
const settings = (...keys: string[]) =>
  z.object(Object.fromEntries(keys.map((key) => [key, z.union([z.string(), z.number(), z.boolean(), z.null()]).optional()]))).optional()
const rateLimitWindow = z.object({ limit: z.number().optional(), window: z.string().optional() }).optional()
const configInput = z.object({
  signup: settings('requireEmailVerification'),
  passwordless: settings('enabled', 'url', 'expiration'),
  password: settings(
    'minLength',
    'requireUppercase',
    'requireLowercase',
    'requireDigit',
    'requireSpecial',
    'pattern',
    'checkBlacklist',
    'checkHibp',
  ),
  login: settings(
    'baseBackoff',
    'maxBackoff',
    'attemptWindow',
    'revealUserExists',
    'revealLoginMethod',
    'defaultTokenExpiration',
    'maxTokenExpiration',
    'mfaGraceDuration',
  ),
  captcha: z
    .object({
      provider: z.string().nullable().optional(),
      secret: z.string().nullable().optional().transform((secret) => (secret == null ? secret : '***')),
      threshold: z.number().nullable().optional(),
    })
    .optional(),
  rateLimits: z
    .object({
      signUpPerIp: rateLimitWindow,
      loginPerIp: rateLimitWindow,
      passwordResetPerIp: rateLimitWindow,
      passwordlessInitPerIp: rateLimitWindow,
    })
    .optional(),
})

const event = (category: EventCategory, description: string, eventData: EventDefinition['eventData'] = nothing) =>
  ({ category, description, eventData }) satisfies EventDefinition

export const auditCatalog = {
  login: event('authentication', 'Password sign-in (signIn); metadata.backupCodeUsed when a backup code stood in for the TOTP code.'),
  create_session_token: event('authentication', 'A session token minted for a person by a privileged caller (createSessionToken).'),
  sign_up: event('authentication', 'A person signed up (signUp), or a sign-up was refused (error_code says why).'),
  logout: event('authentication', 'A person signed out (signOut): metadata.sessionId is the session used; all ends every session of the person.', z.object({ all: z.boolean() })),
  idp_login: event(
    'authentication',
    "Sign-in through an external identity provider (signInIDP); metadata.externalIdentifier is the provider's subject (sub) once it answered.",
    z.object({ identityProvider: z.string() }),
  ),
  passwordless_login_init: event('authentication', 'A passwordless sign-in link and code were requested (initSignInPasswordless).'),
  passwordless_login_exchange: event('authentication', 'A passwordless link was activated for OTP sign-in (activatePasswordlessOtp).'),
  passwordless_login: event('authentication', 'Passwordless sign-in completed (signInPasswordless); metadata.backupCodeUsed as for login.', z.object({ validationType: z.enum(['otp', 'token']) })),
  password_reset_init: event('authentication', 'A password reset was requested (createResetPasswordRequest).'),
  password_reset: event('authentication', 'A password was reset with a reset token (resetPassword).'),
  password_change: event('authentication', 'A password was changed by its owner or an admin (changeMyPassword, changePassword).'),
  email_change: event(
    'authentication',
    'A person\'s email address changed (changeProfile, changeMyProfile).',
    z.object({ before: z.object({ email: z.string().nullable() }), after: z.object({ email: z.string().nullable() }) }),
  ),
  name_change: event(
    'administrative',
    'A person\'s name changed (changeProfile, changeMyProfile).',
    z.object({ before: z.object({ name: z.string().nullable() }), after: z.object({ name: z.string().nullable() }) }),
  ),
  '2fa_enable': event('authentication', 'TOTP second factor confirmed (confirmOtp).'),
  '2fa_disable': event('authentication', 'TOTP second factor removed, with its backup codes (disableOtp).'),
  '2fa_backup_codes_regenerate': event('authentication', 'A person replaced their TOTP backup codes (regenerateBackupCodes). Never a code.'),
  passwordless_enable: event('authentication', 'A person turned passwordless sign-in on for themselves (enableMyPasswordless).', passwordlessChange),
  passwordless_disable: event('authentication', 'A person turned passwordless sign-in off for themselves (disableMyPasswordless).', passwordlessChange),
  session_revoked_by_user: event('administrative', 'A person revoked one of their sessions (revokeSession).'),
  forced_sign_out: event('administrative', 'All sessions of a person were ended by an admin (forceSignOutPerson).'),
  person_disabled: event('administrative', 'A person was disabled; their sessions stop working (disablePerson).'),
  global_role_grant: event('administrative', 'Global roles added to an identity (addGlobalIdentityRoles, or signUp with roles).', roleChange),
  global_role_revoke: event('administrative', 'Global roles removed from an identity (removeGlobalIdentityRoles).', roleChange),
  project_membership_create: event('administrative', 'An identity became a project member (addProjectMember).', membershipChange),
  project_membership_update: event('administrative', 'A project membership changed (updateProjectMember).', membershipChange),
  project_membership_remove: event('administrative', 'An identity left a project (removeProjectMember).', membershipChange),
  api_key_create: event(
    'administrative',
    'An API key was created (createApiKey, createGlobalApiKey); trustForwardedClientInfo when its callers may set the client address recorded. Never the token or its hash.',
    z.object({
      apiKeyId: z.string(),
      identityId: z.string(),
      description: z.string(),
      memberships: z.array(membership).optional(),
      roles: z.array(z.string()).optional(),
      /** The key's callers may set the client address and agent its entries record (options.trustForwardedClientInfo). */
      trustForwardedClientInfo: z.boolean().optional(),
    }),
  ),
  api_key_disable: event('administrative', 'An API key was disabled (disableApiKey).', z.object({ apiKeyId: z.string() })),
  idp_create: event('administrative', 'An identity provider was added (addIDP).', idpChange),
  idp_update: event('administrative', 'An identity provider was changed (updateIDP).', idpChange),
  idp_disable: event('administrative', 'An identity provider was disabled (disableIDP).', idpChange),
  idp_enable: event('administrative', 'An identity provider was enabled (enableIDP).', idpChange),
  project_create: event(
    'administrative',
    'A project was created (createProject). Secret key names only.',
    z.object({ projectSlug: z.string(), name: z.string(), secretKeys: z.array(z.string()) }),
  ),
  project_update: event(
    'administrative',
    'A project\'s name or config changed (updateProject).',
    z.object({
      projectSlug: z.string(),
      before: z.object({ name: z.string().optional(), config: jsonValue.optional() }),
      after: z.object({ name: z.string().optional(), config: jsonValue.optional() }),
    }),
  ),
  project_secret_change: event(
    'administrative',
    'A project secret was set (setProjectSecret). Key name only.',
    z.object({ projectSlug: z.string(), key: z.string() }),
  ),
  mail_template_change: event(
    'administrative',
    'A mail template was added or removed (addMailTemplate, removeMailTemplate).',
    z.object({
      action: z.enum(['add', 'remove']),
      type: z.string(),
      projectSlug: z.string().nullable().optional(),
      variant: z.string().nullable().optional(),
    }),
  ),
  tenant_config_change: event(
    'administrative',
    'Tenant configuration changed (configure): the input, and the settings it names before and after (defaults included). The captcha secret is written as ***.',
    z.object({ input: configInput, before: configInput, after: configInput }),
  ),
  person_invite: event(
    'administrative',
    'A person was invited to a project (invite, unmanagedInvite). Never the password.',
    z.object({ projectSlug: z.string(), email: z.string(), isNew: z.boolean(), memberships: z.array(membership) }),
  ),
  auth_log_retention: event(
    'administrative',
    'A month partition of the log was dropped by retention, after a signed checkpoint of its last entry.',
    z.object({
      partition: z.string(),
      rangeStart: z.string(),
      rangeEnd: z.string(),
      checkpointSequence: z.string().optional(),
      checkpointHash: z.string().optional(),
      /** Base64 Ed25519 signature of the retention statement (README "Retention"): only it lets verification start at the checkpoint. */
      retentionSignature: z.string().optional(),
    }),
  ),
  auth_log_checkpoint: event(
    'administrative',
    'A signed checkpoint was made on request (createAuthLogCheckpoint); the entry follows the head, which is the sequence it signs unless an earlier one was named. ' +
      'Interval checkpoints are not recorded, and retention\'s are part of auth_log_retention.',
    z.object({ checkpointId: z.string(), checkpointSequence: z.string(), checkpointHash: z.string(), reason: z.enum(['interval', 'on_demand', 'retention']) }),
  ),
  auth_log_export: event(
    'administrative',
    'The log was exported (GET /tenant/audit-log/export.jsonl or .csv), with the filter used.',
    z.object({ format: z.enum(['jsonl', 'csv']), filter: z.record(z.string(), jsonValue) }),
  ),
  auth_log_read: event(
    'administrative',
    'The log was read through authLog (recorded only with CUSTOS_AUDIT_READS=true).',
    z.object({ filter: z.record(z.string(), jsonValue), limit: z.number().optional(), offset: z.number().optional(), cursor: z.string().optional() }),
  ),
} as const satisfies Record<string, EventDefinition>

export type AuditEventType = keyof typeof auditCatalog

export const auditEventTypes = Object.keys(auditCatalog) as AuditEventType[]

export function isAuditEventType(value: string): value is AuditEventType {
  return Object.hasOwn(auditCatalog, value)
}

/** The event_data shape of `type`, as a TypeScript type. */
export type EventData<T extends AuditEventType> = z.input<(typeof auditCatalog)[T]['eventData']>
