import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../../src/config.js'

/** The ConfigError loadConfig throws for `environment`. */
function configError(environment: Record<string, string>): ConfigError {
  try {
    loadConfig(environment)
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    return error as ConfigError
  }
  throw new Error(`accepted ${JSON.stringify(environment)}`)
}

describe('configuration', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({})
    expect(config).toMatchObject({
      port: 4000,
      databaseUrl: undefined,
      dataDir: resolve('./data'),
      rootToken: undefined,
      loginToken: undefined,
      logLevel: 'info',
    })
    expect([...config.trustedProxies]).toEqual([])
  })

  it('reads every variable', () => {
    const config = loadConfig({
      PORT: '8080',
      DATABASE_URL: 'postgresql://custos@db:5432/custos',
      CUSTOS_DATA_DIR: '/var/lib/custos',
      CUSTOS_ROOT_TOKEN: 'r'.repeat(20),
      CUSTOS_LOGIN_TOKEN: 'l'.repeat(24),
      CUSTOS_TRUSTED_PROXIES: ' 10.0.0.1 ,::ffff:10.0.0.2, 2001:db8::1 ',
      LOG_LEVEL: 'warn',
    })
    expect(config).toMatchObject({
      port: 8080,
      databaseUrl: 'postgresql://custos@db:5432/custos',
      dataDir: '/var/lib/custos',
      rootToken: 'r'.repeat(20),
      loginToken: 'l'.repeat(24),
      logLevel: 'warn',
    })
    expect([...config.trustedProxies]).toEqual(['10.0.0.1', '10.0.0.2', '2001:db8::1'])
  })

  it('treats an empty DATABASE_URL as unset', () => {
    expect(loadConfig({ DATABASE_URL: '' }).databaseUrl).toBeUndefined()
  })

  it.each([
    ['PORT', { PORT: 'eighty' }],
    ['PORT', { PORT: '70000' }],
    ['PORT', { PORT: '80.5' }],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://root@db/custos' }],
    ['CUSTOS_TRUSTED_PROXIES', { CUSTOS_TRUSTED_PROXIES: '10.0.0.1, proxy.internal' }],
    ['CUSTOS_TRUSTED_PROXIES', { CUSTOS_TRUSTED_PROXIES: '10.0.0.0/8' }],
    ['CUSTOS_ROOT_TOKEN', { CUSTOS_ROOT_TOKEN: 'short' }],
    ['CUSTOS_LOGIN_TOKEN', { CUSTOS_LOGIN_TOKEN: 'short' }],
    ['LOG_LEVEL', { LOG_LEVEL: 'loud' }],
    // Empty or odd numbers once read as 0 (a random port; checkpoints off) or as hex and exponents.
    ['PORT', { PORT: '' }],
    ['PORT', { PORT: ' ' }],
    ['PORT', { PORT: '0x50' }],
    ['CUSTOS_AUDIT_CHECKPOINT_ENTRIES', { CUSTOS_AUDIT_CHECKPOINT_ENTRIES: '' }],
    ['CUSTOS_AUDIT_CHECKPOINT_SECONDS', { CUSTOS_AUDIT_CHECKPOINT_SECONDS: '  ' }],
    ['CUSTOS_AUDIT_FORWARD_MONTHS', { CUSTOS_AUDIT_FORWARD_MONTHS: '1e1' }],
    ['CUSTOS_AUDIT_RETENTION_MONTHS', { CUSTOS_AUDIT_RETENTION_MONTHS: ' ' }],
    // The Authorization header carries one run of non-space characters: such a token could never be used.
    ['CUSTOS_ROOT_TOKEN', { CUSTOS_ROOT_TOKEN: 'a root token with spaces in it' }],
    ['CUSTOS_LOGIN_TOKEN', { CUSTOS_LOGIN_TOKEN: ' login-token-with-a-leading-space' }],
  ])('names %s when it is invalid (%o)', (variable, environment) => {
    const error = configError(environment)
    expect(error.message).toMatch(new RegExp(`^\\s+${variable}: `, 'm'))
  })

  it('names every problem in one error', () => {
    const error = configError({ PORT: '-1', DATABASE_URL: 'sqlite://x', CUSTOS_TRUSTED_PROXIES: 'nope' })
    expect(error.message).toContain('PORT')
    expect(error.message).toContain('DATABASE_URL: must be a postgres:// or postgresql:// URL')
    expect(error.message).toContain('CUSTOS_TRUSTED_PROXIES: not IP addresses: nope')
  })

  it('stops `npm start` with the message and exit code 2, before touching any database', async () => {
    const root = fileURLToPath(new URL('../..', import.meta.url))
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: root,
      env: { PATH: process.env.PATH, PORT: 'not-a-port', DATABASE_URL: 'postgresql://nobody@127.0.0.1:1/none' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (chunk) => (stderr += String(chunk)))
    const code = await new Promise<number | null>((done) => child.on('close', done))
    expect(code).toBe(2)
    expect(stderr).toContain('Invalid configuration:')
    expect(stderr).toMatch(/^\s+PORT: /m)
    expect(stderr).not.toMatch(/\bat .+:\d+:\d+/)
  })
})

describe('CUSTOS_ROLE_GRANTS', () => {
  it('accepts known roles with known privileges or wildcards', () => {
    const grants = { project_admin: ['system:viewAuthLog'], person: ['idp:*'] }
    expect(loadConfig({ CUSTOS_ROLE_GRANTS: JSON.stringify(grants) }).roleGrants).toEqual(grants)
    expect(loadConfig({}).roleGrants).toEqual({})
  })

  it.each([
    ['not json', /must be a JSON object/],
    ['["system:viewAuthLog"]', /must be a JSON object/],
    ['{"auditor": ["system:viewAuthLog"]}', /unknown roles: auditor/],
    ['{"person": ["system:everything"]}', /unknown privileges: system:everything/],
    ['{"person": ["nope:*"]}', /unknown privileges: nope:\*/],
  ])('refuses %s', (value, message) => {
    expect(() => loadConfig({ CUSTOS_ROLE_GRANTS: value })).toThrow(message)
  })
})
