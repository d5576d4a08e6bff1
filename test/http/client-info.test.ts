import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type TestApp, startTestApp } from '../testkit/app.js'
import {
  type LogEntry,
  apiKeyIdOfToken,
  createGlobalApiKey,
  grantRoles,
  readLog,
  signUpPerson,
  sql,
  uniqueEmail,
} from '../testkit/fixtures.js'

/** Trusts 127.0.0.1 (where the tests connect from) as a proxy. */
let proxied: TestApp
/** Trusts no proxy. */
let direct: TestApp
/** A login-role key of `proxied` allowed to forward its client's details. */
let trustedLoginKey: string

const UA = 'client-info-test/1.0'

beforeAll(async () => {
  ;[proxied, direct] = await Promise.all([startTestApp({ CUSTOS_TRUSTED_PROXIES: '127.0.0.1, 10.0.0.1' }), startTestApp()])
  trustedLoginKey = (await createGlobalApiKey(proxied, ['login'], { trustForwardedClientInfo: true })).token
})

afterAll(async () => {
  await proxied?.stop()
  await direct?.stop()
})

/** Makes a failed sign-in with `headers` and returns the login entry it left. */
async function loginEntry(app: TestApp, token: string, headers: Record<string, string>): Promise<LogEntry> {
  const email = uniqueEmail('client')
  const response = await app.gql(`mutation ($email: String!) { signIn(email: $email, password: "irrelevant-1") { ok } }`, {
    variables: { email },
    token,
    headers: { 'user-agent': UA, ...headers },
  })
  expect(response.data.signIn.ok).toBe(false)
  const { entries } = await readLog(app, { filter: { personInputIdentifier: email } })
  expect(entries).toHaveLength(1)
  return entries[0]!
}

describe('X-Forwarded-For', () => {
  it('is ignored when the peer is not a trusted proxy', async () => {
    const entry = await loginEntry(direct, direct.loginToken, { 'x-forwarded-for': '203.0.113.7' })
    expect(entry).toMatchObject({ clientIp: '127.0.0.1', userAgent: UA, metadata: {} })
  })

  it.each([
    ['one address', '203.0.113.7', '203.0.113.7'],
    ['the nearest of several (the rest could be forged)', '198.51.100.1, 203.0.113.7', '203.0.113.7'],
    ['the nearest untrusted one, skipping our own proxies', '198.51.100.1, 203.0.113.7, 10.0.0.1', '203.0.113.7'],
    ['an IPv6 address', '2001:db8::1', '2001:db8::1'],
    ['an IPv4-mapped address, unmapped', '::ffff:203.0.113.8', '203.0.113.8'],
    ['an IPv4-mapped address in hex, unmapped', '::ffff:cb00:7109', '203.0.113.9'],
    ['an IPv4-mapped address written out, unmapped', '0:0:0:0:0:FFFF:203.0.113.10', '203.0.113.10'],
    ['an IPv6 address in canonical form', '2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['nothing usable: the peer', 'not-an-address', '127.0.0.1'],
    ['an invalid nearest hop: the peer', '203.0.113.7, 999.1.1.1', '127.0.0.1'],
  ])('from a trusted proxy gives %s', async (_name, header, expected) => {
    const entry = await loginEntry(proxied, proxied.loginToken, { 'x-forwarded-for': header })
    expect(entry.clientIp).toBe(expected)
    expect(entry.metadata).toEqual({})
  })
})

describe('X-Contember-Client-IP / -User-Agent', () => {
  const forwarded = { 'x-contember-client-ip': '192.0.2.10', 'x-contember-client-user-agent': 'Browser/99' }

  it('are believed from a key that trusts forwarded info; the caller itself goes to metadata', async () => {
    const entry = await loginEntry(proxied, trustedLoginKey, forwarded)
    expect(entry).toMatchObject({
      clientIp: '192.0.2.10',
      userAgent: 'Browser/99',
      metadata: { forwarderIp: '127.0.0.1', forwarderUserAgent: UA },
    })
  })

  it('name the forwarder as X-Forwarded-For resolved it', async () => {
    const entry = await loginEntry(proxied, trustedLoginKey, { ...forwarded, 'x-forwarded-for': '203.0.113.7' })
    expect(entry).toMatchObject({ clientIp: '192.0.2.10', metadata: { forwarderIp: '203.0.113.7', forwarderUserAgent: UA } })
  })

  it('are ignored from a key that does not trust forwarded info', async () => {
    for (const app of [proxied, direct]) {
      const entry = await loginEntry(app, app.loginToken, forwarded)
      expect(entry).toMatchObject({ clientIp: '127.0.0.1', userAgent: UA, metadata: {} })
    }
  })

  it('ignore an invalid forwarded IP; with a forwarded user agent the client IP is unknown, not the forwarder\'s', async () => {
    const onlyBadIp = await loginEntry(proxied, trustedLoginKey, { 'x-contember-client-ip': '300.1.2.3' })
    expect(onlyBadIp).toMatchObject({ clientIp: '127.0.0.1', userAgent: UA, metadata: {} })
    const badIpAndAgent = await loginEntry(proxied, trustedLoginKey, { 'x-contember-client-ip': 'localhost', 'x-contember-client-user-agent': 'Browser/99' })
    expect(badIpAndAgent).toMatchObject({ clientIp: null, userAgent: 'Browser/99', metadata: { forwarderIp: '127.0.0.1', forwarderUserAgent: UA } })
  })

  it("record no user agent for a forwarded client that sent none: the forwarder's own is only metadata", async () => {
    const onlyIp = await loginEntry(proxied, trustedLoginKey, { 'x-contember-client-ip': '192.0.2.10' })
    expect(onlyIp).toMatchObject({ clientIp: '192.0.2.10', userAgent: null, metadata: { forwarderIp: '127.0.0.1', forwarderUserAgent: UA } })
  })

  it('keep the address of an IPv6 one with a zone id, which no inet can hold', async () => {
    const zoned = await loginEntry(proxied, trustedLoginKey, { 'x-contember-client-ip': 'fe80::1%eth0' })
    expect(zoned).toMatchObject({ type: 'login', clientIp: 'fe80::1', metadata: { forwarderIp: '127.0.0.1' } })
  })

  it('cut user agents to 512 characters, forwarded or not', async () => {
    const long = `${'a'.repeat(510)}ZZZZ-tail`
    const socketUa = await loginEntry(proxied, proxied.loginToken, { 'user-agent': long })
    expect(socketUa.userAgent).toBe(long.slice(0, 512))
    const forwardedUa = await loginEntry(proxied, trustedLoginKey, { 'x-contember-client-user-agent': long, 'user-agent': long })
    expect(forwardedUa.userAgent).toHaveLength(512)
    expect(forwardedUa.metadata).toEqual({ forwarderIp: '127.0.0.1', forwarderUserAgent: long.slice(0, 512) })
  })
})

describe('user agents beyond ASCII', () => {
  /** A header carrying `bytes`: fetch puts each character of a header value on the wire as one byte (Latin-1). */
  const sending = (bytes: Buffer) => bytes.toString('latin1')
  const text = 'Ünï 日本 🚀'

  it('are stored as the UTF-8 text the client sent, forwarded or not', async () => {
    const entry = await loginEntry(direct, direct.loginToken, { 'user-agent': sending(Buffer.from(text)) })
    expect(entry.userAgent).toBe(text)
    const forwarded = await loginEntry(proxied, trustedLoginKey, {
      'user-agent': sending(Buffer.from(`${text} forwarder`)),
      'x-contember-client-user-agent': sending(Buffer.from(text)),
    })
    expect(forwarded).toMatchObject({ userAgent: text, metadata: { forwarderUserAgent: `${text} forwarder` } })
  })

  it('are stored as sent by the export endpoint too', async () => {
    const response = await fetch(`${direct.url}/tenant/audit-log/export.jsonl?types=auth_log_export`, {
      headers: { authorization: `Bearer ${direct.rootToken}`, 'user-agent': sending(Buffer.from(`${text} export`)) },
    })
    expect(response.status).toBe(200)
    await response.text()
    const { entries } = await readLog(direct, { filter: { types: ['auth_log_export'] } })
    expect(entries.map((entry) => entry.userAgent)).toContain(`${text} export`)
  })

  it('keep their Latin-1 reading when their bytes are not UTF-8', async () => {
    const entry = await loginEntry(direct, direct.loginToken, { 'user-agent': sending(Buffer.from([0x41, 0xe9, 0x74, 0xe9, 0xff])) })
    expect(entry.userAgent).toBe('Aétéÿ')
  })

  it('are cut to 512 characters after decoding, never inside one', async () => {
    const emoji = await loginEntry(direct, direct.loginToken, { 'user-agent': sending(Buffer.from(`${'a'.repeat(511)}🚀🚀`)) })
    expect(emoji.userAgent).toBe(`${'a'.repeat(511)}🚀`)
    const whole = `${'a'.repeat(508)}日本語🚀`
    expect((await loginEntry(direct, direct.loginToken, { 'user-agent': sending(Buffer.from(whole)) })).userAgent).toBe(whole)
  })
})

describe('sessions minted with trustForwardedClientInfo', () => {
  const SIGN_IN = `mutation ($email: String!, $password: String!, $options: SignInOptions) {
    signIn(email: $email, password: $password, options: $options) { ok result { token } }
  }`
  const CREATE_SESSION = `mutation ($email: String!, $options: SignInOptions) {
    createSessionToken(email: $email, options: $options) { ok result { token } }
  }`

  const trustsForwarded = async (token: string) =>
    (await sql<{ trust: boolean }>(proxied, 'SELECT trust_forwarded_info AS trust FROM api_key WHERE id = $1', [await apiKeyIdOfToken(proxied, token)]))[0]!.trust

  /** Acts with the session (a role grant, which is recorded) while forwarding a client, and returns the entry. */
  async function actWithSession(token: string) {
    const subject = await signUpPerson(proxied)
    await proxied.gql(`mutation ($id: String!) { addGlobalIdentityRoles(identityId: $id, roles: ["project_creator"]) { ok } }`, {
      variables: { id: subject.identityId },
      token,
      headers: { 'user-agent': UA, 'x-contember-client-ip': '192.0.2.44', 'x-contember-client-user-agent': 'Browser/44' },
    })
    return (await readLog(proxied, { filter: { targetPersonId: subject.id } })).entries[0]!
  }

  /** A person allowed to grant roles, so their sessions have something recorded to do. */
  async function admin() {
    const person = await signUpPerson(proxied)
    await grantRoles(proxied, person.identityId, ['super_admin'])
    return person
  }

  it('say in api_key_create which keys may set the client address their entries record', async () => {
    const trusting = await createGlobalApiKey(proxied, ['login'], { trustForwardedClientInfo: true })
    const plain = await createGlobalApiKey(proxied, ['login'])
    const created = async (id: string) =>
      (await readLog(proxied, { filter: { types: ['api_key_create'] }, limit: 50 })).entries.find((entry) => entry.eventData?.apiKeyId === id)!.eventData
    expect(await created(trusting.id)).toMatchObject({ trustForwardedClientInfo: true })
    expect(await created(plain.id)).not.toHaveProperty('trustForwardedClientInfo')
  })

  it('trust forwarded info when a trusting key signs in with the option', async () => {
    const person = await admin()
    const response = await proxied.gql(SIGN_IN, { variables: { email: person.email, password: person.password, options: { trustForwardedClientInfo: true } }, token: trustedLoginKey })
    const { token } = response.data.signIn.result
    expect(await trustsForwarded(token)).toBe(true)
    expect(await actWithSession(token)).toMatchObject({ clientIp: '192.0.2.44', userAgent: 'Browser/44', metadata: { forwarderIp: '127.0.0.1', forwarderUserAgent: UA } })
  })

  it('do not trust it without the option, or when the signing-in key does not trust it', async () => {
    const person = await admin()
    const withoutOption = await proxied.gql(SIGN_IN, { variables: { email: person.email, password: person.password }, token: trustedLoginKey })
    const fromUntrustedKey = await proxied.gql(SIGN_IN, { variables: { email: person.email, password: person.password, options: { trustForwardedClientInfo: true } }, token: proxied.loginToken })
    for (const token of [withoutOption.data.signIn.result.token, fromUntrustedKey.data.signIn.result.token]) {
      expect(await trustsForwarded(token)).toBe(false)
      expect(await actWithSession(token)).toMatchObject({ clientIp: '127.0.0.1', userAgent: UA, metadata: {} })
    }
  })

  it('follow the same rule for createSessionToken', async () => {
    const person = await admin()
    const trustingAdminKey = (await createGlobalApiKey(proxied, ['super_admin'], { trustForwardedClientInfo: true })).token
    const trusted = await proxied.gql(CREATE_SESSION, { variables: { email: person.email, options: { trustForwardedClientInfo: true } }, token: trustingAdminKey })
    const untrusted = await proxied.gql(CREATE_SESSION, { variables: { email: person.email, options: { trustForwardedClientInfo: true } }, token: proxied.rootToken })
    expect(await trustsForwarded(trusted.data.createSessionToken.result.token)).toBe(true)
    expect(await trustsForwarded(untrusted.data.createSessionToken.result.token)).toBe(false)
    expect((await actWithSession(trusted.data.createSessionToken.result.token)).clientIp).toBe('192.0.2.44')
  })
})
