/** Mail types, as in Contember's MailType enum. */
export const mailTypes = [
  'EXISTING_USER_INVITED',
  'NEW_USER_INVITED',
  'RESET_PASSWORD_REQUEST',
  'PASSWORDLESS_SIGN_IN',
  'FORCED_SIGN_OUT',
  'EMAIL_OTP',
  'BACKUP_CODES_EXHAUSTED',
  'EMAIL_VERIFICATION',
  'EMAIL_CHANGE_VERIFY',
  'EMAIL_CHANGE_NOTIFY',
] as const
export type MailType = (typeof mailTypes)[number]

/** Mails that carry a secret which signs in or sets a password (a reset token, a sign-in link and code). */
export const signInSecretMailTypes: readonly MailType[] = ['RESET_PASSWORD_REQUEST', 'PASSWORDLESS_SIGN_IN']

export interface MailTemplateContent {
  readonly subject: string
  readonly content: string
}

/** Used when the mail_template table has no template for a type (Mustache syntax). */
export const defaultTemplates: Partial<Record<MailType, MailTemplateContent>> = {
  RESET_PASSWORD_REQUEST: {
    subject: 'Reset your password',
    content: 'Someone asked to reset the password of {{email}}.\n\nRequest: {{requestId}}\nReset token: {{token}}\n{{#url}}Link: {{url}}\n{{/url}}\nThe token expires at {{expiresAt}}. If it was not you, ignore this mail.',
  },
  PASSWORDLESS_SIGN_IN: {
    subject: 'Your sign-in link',
    content: 'Sign in to your account ({{email}}).\n\nRequest: {{requestId}}\nToken: {{token}}\nCode: {{code}}\n{{#url}}Link: {{url}}\n{{/url}}\nThe link and code expire at {{expiresAt}}.',
  },
  NEW_USER_INVITED: {
    subject: 'You have been invited to {{project}}',
    content: 'You have been invited to {{project}} as {{email}}.\n{{#token}}Set your password with this token: {{token}}\n{{/token}}',
  },
  EXISTING_USER_INVITED: {
    subject: 'You have been added to {{project}}',
    content: 'Your account {{email}} has been added to {{project}}.',
  },
  EMAIL_CHANGE_NOTIFY: {
    subject: 'The email address of your account changed',
    content: 'The email address of your account changed from {{email}} to {{newEmail}}, and this address no longer signs in.\n\nIf you did not ask for this, contact your administrator at once.',
  },
  FORCED_SIGN_OUT: {
    subject: 'You have been signed out',
    content: 'An administrator signed {{email}} out of every session.{{#reason}} Reason: {{reason}}{{/reason}}',
  },
}
