import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { auditRowsAsText, enableOtp, enableOtpWithBackupCodes, readLog, signedInPerson, totpCode } from '../testkit/fixtures.js'

let app: TestApp

beforeAll(async () => {
  app = await startTestApp()
})
afterAll(async () => {
  await app.stop()
})

const signInWithOtp = (email: string, password: string, otpToken?: string) =>
  app.gql(
    `mutation ($email: String!, $password: String!, $otpToken: String) {
      signIn(email: $email, password: $password, otpToken: $otpToken) { ok error { code } result { token person { otpEnabled } } }
    }`,
    { variables: { email, password, otpToken }, token: app.loginToken },
  )

const lastEntry = async (type: string, personId: string) => (await readLog(app, { filter: { types: [type], personId }, limit: 1 })).entries[0]

describe('prepareOtp / confirmOtp / disableOtp', () => {
  it('enrols a second factor: a secret and otpauth URI, then 2fa_enable on a valid code', async () => {
    const person = await signedInPerson(app)
    const prepared = await app.gql(`mutation { prepareOtp(label: "my phone") { ok result { otpSecret otpUri } } }`, { token: person.token })
    const { otpSecret, otpUri } = prepared.data.prepareOtp.result
    expect(otpSecret).toMatch(/^[A-Z2-7]{32}$/)
    expect(otpUri).toBe(`otpauth://totp/Custos:my%20phone?secret=${otpSecret}&issuer=Custos`)

    const wrong = await app.gql(`mutation { confirmOtp(otpToken: "000000") { ok error { code } } }`, { token: person.token })
    expect(wrong.data.confirmOtp.error.code).toBe('INVALID_OTP_TOKEN')
    expect(await lastEntry('2fa_enable', person.id)).toMatchObject({ success: false, errorCode: 'INVALID_OTP_TOKEN', personId: person.id })

    const confirmed = await app.gql(`mutation ($code: String!) { confirmOtp(otpToken: $code) { ok error { code } } }`, {
      variables: { code: await totpCode(otpSecret) },
      token: person.token,
    })
    expect(confirmed.data.confirmOtp).toEqual({ ok: true, error: null })
    expect(await lastEntry('2fa_enable', person.id)).toMatchObject({ success: true, errorCode: null, personId: person.id, invokedByIdentityId: person.identityId })
    const me = await app.gql(`{ me { person { otpEnabled } } }`, { token: person.token })
    expect(me.data.me.person.otpEnabled).toBe(true)
  })

  it('stores the secret encrypted, never in base32', async () => {
    const person = await signedInPerson(app)
    const secret = await enableOtp(app, person)
    const row = await app.app.services.db.prisma.person.findUniqueOrThrow({ where: { id: person.id } })
    expect(row.otpSecret).not.toContain(secret)
    expect(Buffer.from(row.otpSecret!, 'base64').toString('latin1')).not.toContain(secret)
    expect(row.otpPendingSecret).toBeNull()
  })

  it('refuses confirmOtp without prepareOtp (NOT_PREPARED)', async () => {
    const person = await signedInPerson(app)
    const response = await app.gql(`mutation { confirmOtp(otpToken: "123456") { ok error { code } } }`, { token: person.token })
    expect(response.data.confirmOtp.error.code).toBe('NOT_PREPARED')
    expect(await lastEntry('2fa_enable', person.id)).toMatchObject({ success: false, errorCode: 'NOT_PREPARED' })
  })

  it('keeps an active factor working while a new one is prepared', async () => {
    const person = await signedInPerson(app)
    const secret = await enableOtp(app, person)
    await app.gql(`mutation { prepareOtp { ok } }`, { token: person.token })
    const response = await signInWithOtp(person.email, person.password, await totpCode(secret, 1))
    expect(response.data.signIn.ok).toBe(true)
  })

  it('disables the factor (2fa_disable), then refuses OTP_NOT_ACTIVE', async () => {
    const person = await signedInPerson(app)
    await enableOtp(app, person)
    const disabled = await app.gql(`mutation { disableOtp { ok error { code } } }`, { token: person.token })
    expect(disabled.data.disableOtp).toEqual({ ok: true, error: null })
    expect(await lastEntry('2fa_disable', person.id)).toMatchObject({ success: true, personId: person.id })
    expect((await signInWithOtp(person.email, person.password)).data.signIn.ok).toBe(true)

    const again = await app.gql(`mutation { disableOtp { ok error { code } } }`, { token: person.token })
    expect(again.data.disableOtp.error.code).toBe('OTP_NOT_ACTIVE')
    expect(await lastEntry('2fa_disable', person.id)).toMatchObject({ success: false, errorCode: 'OTP_NOT_ACTIVE' })
  })

  it('is for persons only: the login key is refused', async () => {
    const response = await app.gql(`mutation { prepareOtp { ok } }`, { token: app.loginToken })
    expect(response.errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
  })
})

describe('signIn with a second factor', () => {
  it('answers OTP_REQUIRED without a code and INVALID_OTP_TOKEN with a wrong one, each a failed login entry', async () => {
    const person = await signedInPerson(app)
    await enableOtp(app, person)

    const missing = await signInWithOtp(person.email, person.password)
    expect(missing.data.signIn).toMatchObject({ ok: false, error: { code: 'OTP_REQUIRED' } })
    expect(await lastEntry('login', person.id)).toMatchObject({
      success: false,
      errorCode: 'OTP_REQUIRED',
      personInputIdentifier: person.email,
      personId: person.id,
    })

    const wrong = await signInWithOtp(person.email, person.password, '000000')
    expect(wrong.data.signIn).toMatchObject({ ok: false, error: { code: 'INVALID_OTP_TOKEN' } })
    expect(await lastEntry('login', person.id)).toMatchObject({ success: false, errorCode: 'INVALID_OTP_TOKEN' })
  })

  it('accepts one step of drift either way, never two, and never the same code twice', async () => {
    const person = await signedInPerson(app)
    const secret = await enableOtp(app, person)
    // The confirming code's step is used up.
    expect((await signInWithOtp(person.email, person.password, await totpCode(secret))).data.signIn.error?.code).toBe('INVALID_OTP_TOKEN')
    await new Promise((resolve) => setTimeout(resolve, 1_100)) // past the backoff of that failure

    const twoAhead = await signInWithOtp(person.email, person.password, await totpCode(secret, 2))
    expect(twoAhead.data.signIn.error?.code).toBe('INVALID_OTP_TOKEN')
    await new Promise((resolve) => setTimeout(resolve, 2_100))

    const oneAhead = await totpCode(secret, 1)
    const accepted = await signInWithOtp(person.email, person.password, oneAhead)
    expect(accepted.data.signIn.ok).toBe(true)
    const entry = await lastEntry('login', person.id)
    expect(entry).toMatchObject({ success: true, errorCode: null })
    expect(entry!.metadata).toMatchObject({ sessionId: expect.any(String) })

    const replay = await signInWithOtp(person.email, person.password, oneAhead)
    expect(replay.data.signIn.error?.code).toBe('INVALID_OTP_TOKEN')
  })

  it('accepts the code of the previous step', async () => {
    const person = await signedInPerson(app)
    const prepared = await app.gql(`mutation { prepareOtp { result { otpSecret } } }`, { token: person.token })
    const secret = prepared.data.prepareOtp.result.otpSecret
    const confirmed = await app.gql(`mutation ($code: String!) { confirmOtp(otpToken: $code) { ok } }`, {
      variables: { code: await totpCode(secret, -1) },
      token: person.token,
    })
    expect(confirmed.data.confirmOtp.ok).toBe(true)
    const twoBehind = await app.gql(`mutation { prepareOtp { result { otpSecret } } }`, { token: person.token })
    const next = twoBehind.data.prepareOtp.result.otpSecret
    const refused = await app.gql(`mutation ($code: String!) { confirmOtp(otpToken: $code) { ok error { code } } }`, {
      variables: { code: await totpCode(next, -2) },
      token: person.token,
    })
    expect(refused.data.confirmOtp.error.code).toBe('INVALID_OTP_TOKEN')
  })
})

describe('backup codes', () => {
  const signInWithBackupCode = (person: { email: string; password: string }, backupCode: string) =>
    app.gql(
      `mutation ($email: String!, $password: String!, $backupCode: String) {
        signIn(email: $email, password: $password, backupCode: $backupCode) { ok error { code } result { token } }
      }`,
      { variables: { email: person.email, password: person.password, backupCode }, token: app.loginToken },
    )
  const regenerate = (token: string) =>
    app.gql(`mutation { regenerateBackupCodes { ok error { code developerMessage } result { backupCodes } } }`, { token })
  const storedHashes = async (personId: string) =>
    (await app.app.services.db.prisma.personBackupCode.findMany({ where: { personId } })).map((row) => row.codeHash).sort()
  const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')

  it('confirmOtp answers ten distinct random codes, stored only as their sha256', async () => {
    const person = await signedInPerson(app)
    const { backupCodes } = await enableOtpWithBackupCodes(app, person)
    expect(backupCodes).toHaveLength(10)
    expect(new Set(backupCodes).size).toBe(10)
    for (const code of backupCodes) expect(code).toMatch(/^[0-9a-v]{4}-[0-9a-v]{4}-[0-9a-v]{4}-[0-9a-v]{4}$/)
    expect(await storedHashes(person.id)).toEqual(backupCodes.map((code) => sha256(code.replaceAll('-', ''))).sort())
    const rowsText = JSON.stringify(await app.app.services.db.prisma.personBackupCode.findMany({ where: { personId: person.id } }))
    for (const code of backupCodes) {
      expect(rowsText).not.toContain(code)
      expect(rowsText).not.toContain(code.replaceAll('-', ''))
    }
  })

  it('signs in once with each code (login entry with metadata.backupCodeUsed); a used code is INVALID_OTP_TOKEN, logged as INVALID_BACKUP_CODE', async () => {
    const person = await signedInPerson(app)
    const { backupCodes } = await enableOtpWithBackupCodes(app, person)
    const [first, second] = backupCodes as [string, string]

    expect((await signInWithBackupCode(person, first)).data.signIn).toMatchObject({ ok: true, result: { token: expect.any(String) } })
    const entry = await lastEntry('login', person.id)
    expect(entry).toMatchObject({ success: true, errorCode: null, personId: person.id })
    expect(entry!.metadata).toEqual({ sessionId: expect.any(String), backupCodeUsed: true })
    // Typed back in capitals without dashes, a code still works.
    expect((await signInWithBackupCode(person, second.toUpperCase().replaceAll('-', ''))).data.signIn.ok).toBe(true)
    expect(await storedHashes(person.id)).toHaveLength(8)

    expect((await signInWithBackupCode(person, first)).data.signIn).toMatchObject({ ok: false, error: { code: 'INVALID_OTP_TOKEN' } })
    const refused = await lastEntry('login', person.id)
    expect(refused).toMatchObject({ success: false, errorCode: 'INVALID_BACKUP_CODE', personId: person.id })
    expect(refused!.metadata).toEqual({})
    const texts = (await auditRowsAsText(app)).join('\n')
    for (const code of [first, second]) for (const spelling of [code, code.replaceAll('-', '')]) expect(texts).not.toContain(spelling)
  })

  it('a TOTP sign-in does not touch the codes, and a password sign-in without a factor ignores a backup code', async () => {
    const person = await signedInPerson(app)
    const { secret } = await enableOtpWithBackupCodes(app, person)
    expect((await signInWithOtp(person.email, person.password, await totpCode(secret, 1))).data.signIn.ok).toBe(true)
    expect((await lastEntry('login', person.id))!.metadata).toEqual({ sessionId: expect.any(String) })
    expect(await storedHashes(person.id)).toHaveLength(10)

    const plain = await signedInPerson(app)
    expect((await signInWithBackupCode(plain, 'aaaa-bbbb-cccc-dddd')).data.signIn.ok).toBe(true)
  })

  it('regenerateBackupCodes replaces every code (2fa_backup_codes_regenerate)', async () => {
    const person = await signedInPerson(app)
    const { backupCodes: old } = await enableOtpWithBackupCodes(app, person)
    const response = await regenerate(person.token)
    expect(response.data.regenerateBackupCodes).toMatchObject({ ok: true, error: null })
    const fresh: string[] = response.data.regenerateBackupCodes.result.backupCodes
    expect(fresh).toHaveLength(10)
    expect(fresh.filter((code) => old.includes(code))).toEqual([])
    expect(await storedHashes(person.id)).toEqual(fresh.map((code) => sha256(code.replaceAll('-', ''))).sort())
    const entries = (await readLog(app, { filter: { types: ['2fa_backup_codes_regenerate'], personId: person.id } })).entries
    expect(entries).toEqual([
      expect.objectContaining({ success: true, errorCode: null, personId: person.id, invokedByIdentityId: person.identityId, eventData: {}, metadata: {} }),
    ])
    expect((await signInWithBackupCode(person, fresh[0]!)).data.signIn.ok).toBe(true)
  })

  it('regenerateBackupCodes refuses OTP_NOT_ACTIVE without a factor and NOT_A_PERSON to an API key, each recorded', async () => {
    const person = await signedInPerson(app)
    expect((await regenerate(person.token)).data.regenerateBackupCodes).toMatchObject({ ok: false, error: { code: 'OTP_NOT_ACTIVE' }, result: null })
    expect(await lastEntry('2fa_backup_codes_regenerate', person.id)).toMatchObject({ success: false, errorCode: 'OTP_NOT_ACTIVE', personId: person.id })
    expect(await storedHashes(person.id)).toEqual([])

    expect((await regenerate(app.rootToken)).data.regenerateBackupCodes).toMatchObject({ ok: false, error: { code: 'NOT_A_PERSON' } })
    const [entry] = (await readLog(app, { filter: { types: ['2fa_backup_codes_regenerate'], success: false }, limit: 1 })).entries
    expect(entry).toMatchObject({ success: false, errorCode: 'NOT_A_PERSON', personId: null })
  })

  it('disableOtp removes the codes', async () => {
    const person = await signedInPerson(app)
    await enableOtpWithBackupCodes(app, person)
    expect((await app.gql(`mutation { disableOtp { ok } }`, { token: person.token })).data.disableOtp.ok).toBe(true)
    expect(await storedHashes(person.id)).toEqual([])
  })
})
