import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type TestApp, startTestApp, testSigningKey } from '../testkit/app.js'
import { type TestDatabase, createTestDatabase, onPostgres } from '../testkit/database.js'
import { configureTenant, outbox, signUpPerson, sql, uniqueEmail } from '../testkit/fixtures.js'

/**
 * The throttles read from the log (sign-in backoff, per-email backoff of the mailing flows) hold
 * with two server instances on one database, as behind a load balancer: attempts for one key take
 * turns in the database too, not only within each process. Without that, each instance's first
 * attempt read the same past and passed (8 guesses at once: 2 checked).
 *
 * The second instance is a process of its own: a second app in this process would share its turns.
 */
describe.runIf(onPostgres)('two server instances on one database', () => {
  let database: TestDatabase
  let first: TestApp
  let second: ChildProcess | undefined
  let secondUrl: string
  let secondDataDir: string | undefined

  beforeAll(async () => {
    database = await createTestDatabase({ migrated: true })
    const shared = { CUSTOS_ENCRYPTION_KEY: randomBytes(32).toString('base64'), CUSTOS_SIGNING_KEY: testSigningKey() }
    first = await startTestApp(shared, { database })
    await configureTenant(first, { passwordless: { enabled: 'always' }, login: { baseBackoff: 'PT1H', maxBackoff: 'PT1H', attemptWindow: 'PT5M' } })
    secondDataDir = await mkdtemp(join(tmpdir(), 'custos-second-'))
    second = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      env: {
        PATH: process.env.PATH,
        PORT: '0',
        LOG_LEVEL: 'warn',
        CUSTOS_DATA_DIR: secondDataDir,
        DATABASE_URL: database.url,
        CUSTOS_ROOT_TOKEN: first.rootToken,
        CUSTOS_LOGIN_TOKEN: first.loginToken,
        ...shared,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    secondUrl = await new Promise<string>((resolve, reject) => {
      second!.stderr!.on('data', (chunk) => {
        stderr += String(chunk)
        const url = /GraphiQL at (\S+)/.exec(stderr)?.[1]
        if (url) resolve(url)
      })
      second!.once('exit', (code) => reject(new Error(`the second instance exited with ${code}: ${stderr}`)))
    })
  }, 120_000)
  afterAll(async () => {
    if (second?.exitCode === null) {
      const exited = new Promise((resolve) => second!.once('exit', resolve))
      second.kill('SIGTERM')
      await exited
    }
    await first?.stop()
    await database?.drop()
    if (secondDataDir) await rm(secondDataDir, { recursive: true, force: true })
  })

  /** Posts a GraphQL operation with the login token to the first instance (even `index`) or the second (odd). */
  async function send(index: number, query: string, variables: Record<string, unknown>): Promise<any> {
    if (index % 2 === 0) return (await first.gql(query, { variables, token: first.loginToken })).data
    const response = await fetch(secondUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${first.loginToken}` },
      body: JSON.stringify({ query, variables }),
    })
    return ((await response.json()) as { data: unknown }).data
  }

  /** `count` requests for `email` sent at once, alternately to each instance, each instance's in two spellings. */
  const atOnce = (count: number, email: string, query: string, variables: Record<string, unknown> = {}) =>
    Promise.all(Array.from({ length: count }, (_, index) => send(index, query, { ...variables, email: Math.floor(index / 2) % 2 ? email.toUpperCase() : email })))

  /**
   * atOnce, after each instance has run the operation once for another email: an instance slowed by
   * its first run would come late enough to see the other's attempt without taking turns.
   */
  async function race(count: number, email: string, query: string, variables: Record<string, unknown> = {}) {
    await atOnce(2, uniqueEmail('warm-up'), query, variables)
    return atOnce(count, email, query, variables)
  }

  /** Error codes of the `type` entries for `email` in any spelling, sorted (null for a success). */
  const recorded = async (type: string, email: string) =>
    (await sql<{ error_code: string | null }>(first, 'SELECT error_code FROM person_auth_log WHERE type = $1 AND lower(person_input_identifier) = $2', [type, email]))
      .map((row) => row.error_code)
      .sort()

  it('sign-in: 8 wrong passwords at once across both, 1 checked, 7 refused', async () => {
    const person = await signUpPerson(first)
    const answers = await race(8, person.email, 'mutation ($email: String!, $password: String!) { signIn(email: $email, password: $password) { ok error { code } } }', {
      password: 'wrong-password',
    })
    expect(answers.map((answer) => answer.signIn.error.code).sort()).toEqual(['INVALID_CREDENTIALS', ...Array(7).fill('RATE_LIMIT_EXCEEDED')])
    expect(await recorded('login', person.email)).toEqual(['INVALID_PASSWORD', ...Array(7).fill('RATE_LIMIT_EXCEEDED')])
  })

  it.each([
    { mutation: 'createResetPasswordRequest', type: 'password_reset_init' },
    { mutation: 'initSignInPasswordless', type: 'passwordless_login_init' },
  ])('$mutation: 6 requests at once across both, 1 mails', async ({ mutation, type }) => {
    const person = await signUpPerson(first)
    const answers = await race(6, person.email, `mutation ($email: String!) { ${mutation}(email: $email) { ok error { code } } }`)
    expect(answers.map((answer) => answer[mutation].error?.code ?? 'ok').sort()).toEqual([...Array(5).fill('RATE_LIMIT_EXCEEDED'), 'ok'])
    expect(await recorded(type, person.email)).toEqual([...Array(5).fill('RATE_LIMIT_EXCEEDED'), null])
    // Into the outbox (no SMTP_URL here), in the background.
    await expect.poll(async () => (await outbox(first)).filter((mail) => mail.recipient === person.email).length).toBe(1)
  })
})
