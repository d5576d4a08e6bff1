import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { testSigningKey } from '../testkit/app.js'
import { type TestDatabase, createTestDatabase } from '../testkit/database.js'
import { strongPassword, uniqueEmail } from '../testkit/fixtures.js'

/**
 * The README's promise, end to end: `npm start` on nothing (a fresh embedded data directory, or a
 * fresh PostgreSQL database with TEST_DATABASE_URL) prints the tokens and the GraphiQL address;
 * a person signs up and in; the root token reads every attempt; SIGTERM stops it cleanly.
 */
let child: ChildProcess
let dataDir: string
let testDatabase: TestDatabase
let stdout = ''
let stderr = ''

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'custos-start-'))
  testDatabase = await createTestDatabase()
  child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    env: { PATH: process.env.PATH, PORT: '0', CUSTOS_DATA_DIR: dataDir, ...(testDatabase.url ? { DATABASE_URL: testDatabase.url, CUSTOS_ENCRYPTION_KEY: randomBytes(32).toString('base64'), CUSTOS_SIGNING_KEY: testSigningKey() } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout!.on('data', (chunk) => (stdout += String(chunk)))
  child.stderr!.on('data', (chunk) => (stderr += String(chunk)))
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (/GraphiQL at \S+/.test(stderr)) resolve()
    }
    child.stderr!.on('data', check)
    child.once('exit', (code) => reject(new Error(`exited with ${code}: ${stderr}`)))
  })
}, 120_000)

afterAll(async () => {
  if (child.exitCode === null) child.kill('SIGKILL')
  await testDatabase.drop()
  await rm(dataDir, { recursive: true, force: true })
})

it('serves a fresh installation, records every attempt for the root token, and shuts down on SIGTERM', async () => {
  const tokens = Object.fromEntries([...stderr.matchAll(/Generated (root|login) token[^:]*: (\S+)/g)].map((match) => [match[1]!, match[2]!]))
  expect(Object.keys(tokens).sort()).toEqual(['login', 'root'])
  const url = /GraphiQL at (\S+)/.exec(stderr)![1]!
  expect(url).toMatch(/^http:\/\/localhost:\d+\/tenant$/)

  const page = await fetch(url, { headers: { accept: 'text/html' } })
  expect(await page.text()).toContain('YogaGraphiQL.renderYogaGraphiQL')

  const gql = async (query: string, variables: Record<string, unknown>, token: string) => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    })
    return ((await response.json()) as { data: any }).data
  }
  const email = uniqueEmail('first-user')
  const password = strongPassword()
  const signIn = 'mutation ($email: String!, $password: String!) { signIn(email: $email, password: $password) { ok } }'
  expect((await gql('mutation ($email: String!, $password: String!) { signUp(email: $email, password: $password) { ok } }', { email, password }, tokens.login!)).signUp.ok).toBe(true)
  // Success first: right after a failure the sign-in backoff would refuse the next attempt.
  expect((await gql(signIn, { email, password }, tokens.login!)).signIn.ok).toBe(true)
  expect((await gql(signIn, { email, password: `${password}x` }, tokens.login!)).signIn.ok).toBe(false)

  const log = await gql('query ($email: String!) { authLog(filter: { personInputIdentifier: $email }) { entries { type success errorCode } } }', { email }, tokens.root!)
  expect(log.authLog.entries).toEqual([
    { type: 'login', success: false, errorCode: 'INVALID_PASSWORD' },
    { type: 'login', success: true, errorCode: null },
    { type: 'sign_up', success: true, errorCode: null },
  ])

  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  expect(await exited).toBe(0)
  // Structured logs on stdout, without the password or the tokens.
  for (const line of stdout.trim().split('\n')) expect(() => JSON.parse(line)).not.toThrow()
  expect(stdout).toContain('"msg":"shutting down"')
  for (const secret of [password, tokens.root!, tokens.login!]) expect(stdout).not.toContain(secret)
})
