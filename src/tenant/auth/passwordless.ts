import { randomInt, randomUUID } from 'node:crypto'
import type { AuditEntry } from '../../audit/recorder.js'
import type { Person } from '../../generated/prisma/client.js'
import type { OutgoingMail } from '../../mail/mailer.js'
import { runCommand } from '../command.js'
import { lockRow } from '../rowLock.js'
import { type TenantConfig, intervalMs, loadTenantConfig } from '../config/tenantConfig.js'
import type { TenantContext } from '../context.js'
import { fail, succeed } from '../outcome.js'
import { callerPerson, findPersonByEmail } from '../persons/persons.js'
import { type MailOptions, mailTemplateChoice } from './mailOptions.js'
import { checkSecondFactor, visibleSecondFactorProblem } from './otp.js'
import { consumePersonToken, findTokenRequest, issuePersonToken, matchesHash, spentProblem } from './personTokens.js'
import { type SessionRequest, openPersonSession } from './sessionLifetime.js'
import { throughMailingRequestGate } from './mailingRequestGate.js'
import { signInBackoff } from './throttle.js'

/** Wrong guesses a request survives; after them it is dead (the mailed code has only a million values). */
export const PASSWORDLESS_MAX_FAILED_ATTEMPTS = 5

/** Whether config.passwordless.enabled lets this person sign in without a password. */
export function passwordlessAllowed(policy: TenantConfig['passwordless']['enabled'], person: Pick<Person, 'passwordlessEnabled'>): boolean {
  switch (policy) {
    case 'always':
      return true
    case 'never':
      return false
    case 'optIn':
      return person.passwordlessEnabled === true
    case 'optOut':
      return person.passwordlessEnabled !== false
  }
}

export type ToggleMyPasswordlessErrorCode = 'CANNOT_TOGGLE' | 'NOT_A_PERSON'

/**
 * The caller turns passwordless sign-in on or off for themselves
 * (`passwordless_enable` / `passwordless_disable`, with the choice before and
 * after). Only the optIn and optOut policies leave the choice to the person;
 * passwordlessAllowed reads it at every sign-in.
 */
export function toggleMyPasswordless(context: TenantContext, enabled: boolean) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    const type = enabled ? 'passwordless_enable' : 'passwordless_disable'
    const person = await callerPerson(context, tx)
    const change = person ? { before: { passwordlessEnabled: person.passwordlessEnabled }, after: { passwordlessEnabled: enabled } } : {}
    const refuse = (code: ToggleMyPasswordlessErrorCode, message: string) => {
      audit({ type, success: false, errorCode: code, eventData: change })
      return fail(code, message)
    }
    if (!person) return refuse('NOT_A_PERSON', 'Only a person can choose how they sign in.')
    const { enabled: policy } = (await loadTenantConfig(tx)).passwordless
    if (policy !== 'optIn' && policy !== 'optOut') {
      return refuse('CANNOT_TOGGLE', `Passwordless sign-in is "${policy}" for everyone (config passwordless.enabled).`)
    }
    // The choice already made: nothing to change or record.
    if (person.passwordlessEnabled === enabled) return succeed(null)
    await tx.person.update({ where: { id: person.id }, data: { passwordlessEnabled: enabled } })
    audit({ type, success: true, eventData: change })
    return succeed(null)
  })
}

/** The sign-in link: config.passwordless.url with requestId and token added to its query. */
function signInLink(base: string | null, requestId: string, token: string): string | null {
  if (!base) return null
  const url = new URL(base)
  url.searchParams.set('requestId', requestId)
  url.searchParams.set('token', token)
  return url.href
}

type InitErrorCode = 'PERSON_NOT_FOUND' | 'PASSWORDLESS_DISABLED' | 'INVALID_CAPTCHA' | 'RATE_LIMIT_EXCEEDED'

/**
 * Mails a sign-in link token and a 6-digit code (`passwordless_login_init`).
 * Unless login.revealUserExists is on, an unknown, disabled or not-enabled
 * person gets an answer like any other (a request id that leads nowhere) and
 * no mail; the log keeps the real reason. Requests pass the mailing-request
 * gate first (throttles, captcha).
 */
export function initSignInPasswordless(context: TenantContext, email: string, options: MailOptions | null | undefined, captchaToken?: string | null) {
  return throughMailingRequestGate(context, 'passwordless_login_init', email, captchaToken, async (config, passGate) => {
    const outcome = await runCommand(context.prisma, context.actor, async ({ tx, audit, commitRefusal }) => {
      const refusal = await passGate({ tx, commitRefusal })
      // Looked up first, so a refused request names the person too.
      const person = await findPersonByEmail(tx, email)
      const entry: Omit<AuditEntry<'passwordless_login_init'>, 'success'> = {
        type: 'passwordless_login_init',
        personInputIdentifier: email,
        personId: person?.id ?? null,
      }
      /** `details` go into the recorded entry, whose error code may say more than the one the client sees. */
      const refuse = (code: InitErrorCode, message: string, details: Partial<AuditEntry> & { errorCode?: string } = {}, extra = {}) => {
        audit({ ...entry, success: false, errorCode: code, ...details })
        return fail(code, message, extra)
      }
      if (config.passwordless.enabled === 'never') return refuse('PASSWORDLESS_DISABLED', 'Passwordless sign-in is turned off.')
      if (refusal) {
        return refuse(refusal.code, refusal.message, { metadata: refusal.wait }, { retryAfter: refusal.wait?.retryAfter })
      }

      const lifetimeMs = intervalMs(config.passwordless.expiration)
      const problem = !person?.email
        ? 'PERSON_NOT_FOUND'
        : person.disabledAt
          ? 'PERSON_DISABLED'
          : !passwordlessAllowed(config.passwordless.enabled, person)
            ? 'PASSWORDLESS_DISABLED'
            : null
      if (!person?.email || problem) {
        const details = { errorCode: problem ?? 'PERSON_NOT_FOUND' }
        if (config.login.revealUserExists) {
          return problem === 'PASSWORDLESS_DISABLED'
            ? refuse('PASSWORDLESS_DISABLED', 'Passwordless sign-in is off for this person.', details)
            : refuse('PERSON_NOT_FOUND', 'No person can sign in with this email.', details)
        }
        audit({ ...entry, ...details, success: false })
        return succeed({ answer: { requestId: randomUUID(), expiresAt: new Date(Date.now() + lifetimeMs) }, mail: null })
      }

      const code = randomInt(0, 1_000_000).toString().padStart(6, '0')
      const issued = await issuePersonToken(tx, person.id, 'passwordless', lifetimeMs, code)
      const { template, recorded } = await mailTemplateChoice(tx, options, person.identityId)
      audit({ ...entry, success: true, metadata: { requestId: issued.requestId, ...recorded } })
      const mail: OutgoingMail = {
        to: person.email,
        type: 'PASSWORDLESS_SIGN_IN',
        variables: {
          requestId: issued.requestId,
          token: issued.token,
          code,
          url: signInLink(config.passwordless.url, issued.requestId, issued.token),
          expiresAt: issued.expiresAt.toISOString(),
        },
        ...template,
      }
      return succeed({ answer: { requestId: issued.requestId, expiresAt: issued.expiresAt }, mail })
    })
    if (!outcome.ok) return outcome
    if (outcome.result.mail) context.mailer.sendInBackground(outcome.result.mail)
    return succeed(outcome.result.answer)
  })
}

/** What a client is told of a request's token; an unknown request is TOKEN_INVALID too (UNKNOWN_REQUEST). */
export type PasswordlessTokenErrorCode = 'TOKEN_INVALID' | 'TOKEN_EXPIRED' | 'TOKEN_USED'

/**
 * A request id that names no request is answered like a wrong token, and logged as it is:
 * initSignInPasswordless hands out an id of no request for an email it will not mail, so
 * TOKEN_NOT_FOUND would tell whether the email has an account.
 */
const UNKNOWN_REQUEST = ['TOKEN_INVALID', 'TOKEN_NOT_FOUND'] as const

const tokenMessages: Record<PasswordlessTokenErrorCode, string> = {
  TOKEN_INVALID: 'The token or code is not valid for this request.',
  TOKEN_EXPIRED: 'This request has expired.',
  TOKEN_USED: 'This request was used already.',
}

/**
 * Cross-device sign-in (`passwordless_login_exchange`): the device that opened
 * the mailed link sets the hash (sha256, hex) of a code it shows; the device
 * that asked then signs in with that code. The mailed code stops working.
 */
export function activatePasswordlessOtp(context: TenantContext, requestId: string, token: string, otpHash: string) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    const request = await findTokenRequest(tx, requestId, 'passwordless')
    const entry: Omit<AuditEntry<'passwordless_login_exchange'>, 'success'> = {
      type: 'passwordless_login_exchange',
      personId: request?.personId ?? null,
      metadata: request ? { requestId: request.id } : {},
    }
    const refuse = (code: PasswordlessTokenErrorCode, reason: string = code) => {
      audit({ ...entry, success: false, errorCode: reason })
      return fail(code, tokenMessages[code])
    }
    if (!request) return refuse(...UNKNOWN_REQUEST)
    if (!matchesHash(token, request.tokenHash)) return refuse('TOKEN_INVALID')
    const spent = spentProblem(request)
    if (spent) return refuse(spent)
    await tx.personToken.update({ where: { id: request.id }, data: { otpHash: otpHash.toLowerCase(), otpActivatedAt: new Date() } })
    audit({ ...entry, success: true })
    return succeed(null)
  })
}

export type SignInPasswordlessErrorCode = PasswordlessTokenErrorCode | 'PERSON_DISABLED' | 'OTP_REQUIRED' | 'INVALID_OTP_TOKEN' | 'RATE_LIMIT_EXCEEDED'

export interface SignInPasswordlessInput extends SessionRequest {
  readonly requestId: string
  readonly validationType: 'otp' | 'token'
  /** The link token, or the code for validationType otp. */
  readonly token: string
  /** The TOTP code when the person has a second factor. */
  readonly mfaOtp?: string | null
  /** One of the person's backup codes instead of mfaOtp. */
  readonly backupCode?: string | null
}

/** Completes a passwordless sign-in (`passwordless_login`); the request is used up. */
export function signInPasswordless(context: TenantContext, input: SignInPasswordlessInput) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit, commitRefusal, attempting }) => {
    const request = await findTokenRequest(tx, input.requestId, 'passwordless')
    // Attempts on one request take turns: each counts the failures before it, which the wrong
    // guesses commit (below) before they let the next one in; 40 guesses at once get 5 checks.
    if (request) await lockRow(tx, 'personToken', { id: request.id })
    const entry: Omit<AuditEntry<'passwordless_login'>, 'success'> = {
      type: 'passwordless_login',
      personId: request?.personId ?? null,
      metadata: request ? { requestId: request.id } : {},
      eventData: { validationType: input.validationType },
    }
    attempting(entry)
    const refuse = (code: SignInPasswordlessErrorCode, reason: string = code) => {
      audit({ ...entry, success: false, errorCode: reason })
      return fail(code, tokenMessages[code as PasswordlessTokenErrorCode] ?? 'The sign-in was refused.')
    }
    if (!request) return refuse(...UNKNOWN_REQUEST)
    const failedAttempts = await tx.personAuthLog.count({
      where: {
        type: 'passwordless_login',
        success: false,
        personId: request.personId,
        createdAt: { gte: request.createdAt },
        metadata: { path: ['requestId'], equals: request.id },
        errorCode: { notIn: ['OTP_REQUIRED', 'RATE_LIMIT_EXCEEDED'] },
      },
    })
    // Nothing has changed yet: these refusals commit their entries while holding the request's lock.
    if (failedAttempts >= PASSWORDLESS_MAX_FAILED_ATTEMPTS) {
      commitRefusal()
      return refuse('TOKEN_INVALID', 'TOO_MANY_ATTEMPTS')
    }
    const expectedHash = input.validationType === 'token' ? request.tokenHash : request.otpActivatedAt ? request.otpHash : null
    if (!matchesHash(input.token, expectedHash)) {
      commitRefusal()
      return refuse('TOKEN_INVALID')
    }
    const spent = spentProblem(request)
    if (spent) return refuse(spent)

    const person = await tx.person.findUniqueOrThrow({ where: { id: request.personId } })
    if (person.disabledAt) return refuse('PERSON_DISABLED')
    const config = await loadTenantConfig(tx)
    if (!passwordlessAllowed(config.passwordless.enabled, person)) return refuse('TOKEN_INVALID', 'PASSWORDLESS_DISABLED')
    if (person.otpActivatedAt) {
      // A second-factor code is guessed here as in signIn: wrong ones count towards the person's sign-in backoff, which holds both back.
      const retryAfter = await signInBackoff(tx, config.login, { identifier: person.email, personId: person.id })
      if (retryAfter !== null) {
        audit({ ...entry, success: false, errorCode: 'RATE_LIMIT_EXCEEDED', metadata: { ...entry.metadata, retryAfter, reason: 'backoff' } })
        return fail('RATE_LIMIT_EXCEEDED' as SignInPasswordlessErrorCode, 'Too many wrong codes; try again later.', { retryAfter })
      }
    }
    const secondFactor = await checkSecondFactor(tx, context.encryptionKey, person, { otpToken: input.mfaOtp, backupCode: input.backupCode })
    if (secondFactor.problem) {
      // A wrong TOTP or backup code is a guess like a wrong mailed code: it commits with the lock held, or guesses at once would each count none before them.
      commitRefusal()
      return refuse(visibleSecondFactorProblem(secondFactor.problem), secondFactor.problem)
    }
    if (!(await consumePersonToken(tx, request))) return refuse('TOKEN_USED')

    const session = await openPersonSession(context, tx, config.login, person.identityId, input)
    audit({
      ...entry,
      success: true,
      metadata: { requestId: request.id, sessionId: session.id, ...(secondFactor.backupCodeUsed ? { backupCodeUsed: true } : {}) },
    })
    return succeed({ token: session.token, person })
  })
}
