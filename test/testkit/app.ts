import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { type RunningApp, startApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { createLogger } from '../../src/logger.js'
import { type TestDatabase, createTestDatabase } from './database.js'

export interface GraphQLResponse<Data = any> {
  status: number
  data?: Data
  errors?: { message: string; extensions?: Record<string, unknown>; path?: (string | number)[] }[]
}

export interface TestApp {
  readonly url: string
  readonly app: RunningApp
  readonly rootToken: string
  readonly loginToken: string
  /** Everything the server logged, as text. */
  logOutput(): string
  /** Posts a GraphQL operation to /tenant. */
  gql<Data = any>(
    query: string,
    options?: { variables?: Record<string, unknown>; token?: string; headers?: Record<string, string> },
  ): Promise<GraphQLResponse<Data>>
  stop(): Promise<void>
}

export interface TestAppOptions {
  /**
   * Keep the built-in per-IP rate limits. By default they are raised, since
   * every test request comes from 127.0.0.1; rate-limit tests configure their own.
   */
  readonly defaultRateLimits?: boolean
  /** Run on this database and leave it when stopping, so a later start finds what this one wrote (see durableTestDatabase). */
  readonly database?: TestDatabase
}

const generousWindow = { limit: 1_000_000, window: 'PT1M' }
const generousRateLimits = { signUpPerIp: generousWindow, loginPerIp: generousWindow, passwordResetPerIp: generousWindow, passwordlessInitPerIp: generousWindow }

/**
 * A server of its own on a fresh database (in-memory PGlite, or a new
 * PostgreSQL database when TEST_DATABASE_URL is set), with known root and login tokens.
 */
export async function startTestApp(environment: Record<string, string> = {}, options: TestAppOptions = {}): Promise<TestApp> {
  const database = options.database ?? (await createTestDatabase({ migrated: true }))
  const rootToken = `root-${randomBytes(16).toString('hex')}`
  const loginToken = `login-${randomBytes(16).toString('hex')}`
  // Key files of the embedded default go to a directory of this app's own.
  const dataDir = await mkdtemp(join(tmpdir(), 'custos-test-'))
  const config = loadConfig({
    PORT: '0',
    CUSTOS_DATA_DIR: dataDir,
    CUSTOS_ROOT_TOKEN: rootToken,
    CUSTOS_LOGIN_TOKEN: loginToken,
    LOG_LEVEL: 'debug',
    CUSTOS_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    // PostgreSQL needs a signing key from the environment; the embedded default generates one into dataDir.
    ...(database.url ? { DATABASE_URL: database.url, CUSTOS_SIGNING_KEY: testSigningKey() } : {}),
    ...environment,
  })
  const chunks: string[] = []
  const sink = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk))
      done()
    },
  })
  const running = await startApp(config, createLogger(config.logLevel, sink), database.target)
  if (!options.defaultRateLimits) {
    const data = { data: { rateLimits: generousRateLimits } }
    await running.services.db.prisma.config.upsert({ where: { id: 1 }, create: { id: 1, ...data }, update: data })
  }
  return {
    url: running.url,
    app: running,
    rootToken,
    loginToken,
    logOutput: () => chunks.join(''),
    async gql(query, options = {}) {
      const response = await fetch(`${running.url}/tenant`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json, application/json',
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...options.headers,
        },
        body: JSON.stringify({ query, variables: options.variables }),
      })
      return { status: response.status, ...((await response.json()) as object) }
    },
    async stop() {
      try {
        await running.stop()
      } finally {
        // Also when stopping fails (a test that closed the database itself): nothing outlives the run.
        if (!options.database) await database.drop()
        await rm(dataDir, { recursive: true, force: true })
      }
    },
  }
}

/** A fresh Ed25519 private key, PEM. */
export const testSigningKey = () => generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
