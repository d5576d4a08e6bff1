import { describe, expect, it } from 'vitest'
import { type AuditEventType, type EventData, auditCatalog, auditEventTypes } from '../../src/audit/catalog.js'
import { redactEventData, redactMetadata } from '../../src/audit/redaction.js'

/**
 * The redactor per event type: a full, valid event_data passes unchanged, and
 * every key the catalog does not declare (at the top and nested) is dropped.
 * A type added to the catalog without a sample here fails to compile.
 */

const membership = { role: 'editor', variables: [{ name: 'language', values: ['cs'] }] }
const idpChange = { identityProvider: 'google', type: 'oidc', configurationKeys: ['clientId', 'clientSecret'], options: { autoSignUp: true } }
const membershipChange = { projectId: 'p', identityId: 'i', before: [], after: [membership] }
const roleChange = { before: { roles: ['person'] }, after: { roles: ['person', 'project_admin'] } }

const samples: { [T in AuditEventType]: EventData<T> } = {
  login: {},
  create_session_token: {},
  sign_up: {},
  logout: { all: false },
  idp_login: { identityProvider: 'google' },
  passwordless_login_init: {},
  passwordless_login_exchange: {},
  passwordless_login: { validationType: 'otp' },
  passwordless_enable: { before: { passwordlessEnabled: null }, after: { passwordlessEnabled: true } },
  passwordless_disable: { before: { passwordlessEnabled: true }, after: { passwordlessEnabled: false } },
  password_reset_init: {},
  password_reset: {},
  password_change: {},
  email_change: { before: { email: 'a@example.test' }, after: { email: 'b@example.test' } },
  name_change: { before: { name: null }, after: { name: 'Ada' } },
  '2fa_enable': {},
  '2fa_disable': {},
  '2fa_backup_codes_regenerate': {},
  session_revoked_by_user: {},
  forced_sign_out: {},
  person_disabled: {},
  global_role_grant: roleChange,
  global_role_revoke: roleChange,
  project_membership_create: membershipChange,
  project_membership_update: { ...membershipChange, before: [membership] },
  project_membership_remove: { ...membershipChange, before: [membership], after: [] },
  api_key_create: { apiKeyId: 'k', identityId: 'i', description: 'CI', memberships: [membership], roles: ['login'], trustForwardedClientInfo: true },
  api_key_disable: { apiKeyId: 'k' },
  idp_create: idpChange,
  idp_update: idpChange,
  idp_disable: { identityProvider: 'google' },
  idp_enable: { identityProvider: 'google' },
  project_create: { projectSlug: 'blog', name: 'Blog', secretKeys: ['smtp'] },
  project_update: { projectSlug: 'blog', before: { name: 'Blog', config: { a: 1 } }, after: { name: 'News', config: { a: [2, null] } } },
  project_secret_change: { projectSlug: 'blog', key: 'smtp' },
  mail_template_change: { action: 'add', type: 'NEW_USER_INVITED', projectSlug: 'blog', variant: 'cs' },
  tenant_config_change: {
    input: { password: { minLength: 10 }, captcha: { provider: 'turnstile', threshold: 0.5 } },
    before: { password: { minLength: 8 }, captcha: { provider: null, threshold: null } },
    after: { password: { minLength: 10 }, captcha: { provider: 'turnstile', threshold: 0.5 } },
  },
  person_invite: { projectSlug: 'blog', email: 'a@example.test', isNew: true, memberships: [membership] },
  auth_log_retention: { partition: 'p_2026_01', rangeStart: '2026-01-01', rangeEnd: '2026-02-01', checkpointSequence: '1', checkpointHash: 'h' },
  auth_log_checkpoint: { checkpointId: 'c', checkpointSequence: '1', checkpointHash: 'h', reason: 'on_demand' },
  auth_log_export: { format: 'jsonl', filter: { types: ['login'] } },
  auth_log_read: { filter: {}, limit: 10, offset: 0 },
}

/** Adds an undeclared key to every object that has a fixed shape (records and arbitrary JSON keep theirs). */
function withIntruders(value: unknown, depth = 0): unknown {
  if (Array.isArray(value)) return value.map((item) => withIntruders(item, depth + 1))
  if (typeof value !== 'object' || value === null) return value
  const copy = Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, freeForm.has(key) ? inner : withIntruders(inner, depth + 1)]))
  return { ...copy, clientSecret: 'hunter2', undeclared: 'tok' }
}
/** Keys whose values are free-form on purpose (JSON configs, filters, option flags). */
const freeForm = new Set(['config', 'filter', 'options'])

describe.each(auditEventTypes)('%s', (type) => {
  it('keeps declared fields and drops unknown ones', () => {
    const sample = samples[type]
    expect(redactEventData(type, sample)).toEqual(sample)
    expect(redactEventData(type, withIntruders(sample))).toEqual(sample)
    expect(JSON.stringify(redactEventData(type, withIntruders(sample)))).not.toContain('hunter2')
  })
})

it('has a sample for exactly the catalog types', () => {
  expect(Object.keys(samples).sort()).toEqual(Object.keys(auditCatalog).sort())
})

it('masks the captcha secret of a configuration change, before and after as in the input', () => {
  const sealed = 'c2VhbGVkLXNlY3JldA=='
  expect(
    redactEventData('tenant_config_change', {
      input: { captcha: { provider: 'hcaptcha', secret: 'hunter2' } },
      before: { captcha: { provider: null, secret: sealed } },
      after: { captcha: { provider: 'hcaptcha', secret: sealed } },
    }),
  ).toEqual({
    input: { captcha: { provider: 'hcaptcha', secret: '***' } },
    before: { captcha: { provider: null, secret: '***' } },
    after: { captcha: { provider: 'hcaptcha', secret: '***' } },
  })
})

it('drops undeclared metadata keys', () => {
  expect(redactMetadata({ sessionId: 's', reason: 'r', password: 'hunter2', token: 't' })).toEqual({ sessionId: 's', reason: 'r' })
})
