import type { KeyObject } from 'node:crypto'
import type { Logger } from 'pino'
import { randomBytes } from 'node:crypto'
import { loadCursorCodec } from './audit/cursor.js'
import { type AuditMaintenance, startAuditMaintenance } from './audit/maintenance.js'
import { type AppConfig, ConfigError } from './config.js'
import { KEY_BYTES, parseEncryptionKey } from './crypto/encryption.js'
import { loadOrCreateKeyFile } from './crypto/keyFiles.js'
import { type AuditSigner, auditSigner, loadOrCreateSigningKey } from './crypto/signingKey.js'
import { type DatabaseTarget, openDatabase } from './db/database.js'
import { migrate } from './db/migrator.js'
import { type AppServices } from './http/context.js'
import { createHttpServer } from './http/server.js'
import { createMailer } from './mail/mailer.js'
import { ensureBootstrapKeys } from './tenant/apiKeys/bootstrap.js'

export interface RunningApp {
  readonly services: AppServices
  readonly auditMaintenance: AuditMaintenance
  readonly url: string
  /** Stops taking requests, lets in-flight ones finish, then closes the database. */
  stop(): Promise<void>
}

/** Where generated bootstrap tokens are shown, once: the terminal rather than the structured log. */
export type Terminal = Pick<NodeJS.WritableStream, 'write'>

export const databaseTarget = (config: AppConfig): DatabaseTarget =>
  config.databaseUrl ? { url: config.databaseUrl } : { dataDir: config.dataDir }

/**
 * The key that seals secrets at rest: CUSTOS_ENCRYPTION_KEY when given; with
 * the embedded database a key file in the data directory, created on first
 * start. With DATABASE_URL it must be given: a key file on one server's disk
 * would strand the secrets for every other server.
 */
export async function loadEncryptionKey(config: AppConfig): Promise<Buffer> {
  if (config.encryptionKey) return config.encryptionKey
  if (config.databaseUrl) {
    throw new ConfigError(
      'Invalid configuration:\n  CUSTOS_ENCRYPTION_KEY: required with DATABASE_URL (32 random bytes as base64 or hex, e.g. `openssl rand -base64 32`)',
    )
  }
  const stored = await loadOrCreateKeyFile(config.dataDir, 'encryption.key', () => randomBytes(KEY_BYTES).toString('base64'))
  const key = parseEncryptionKey(stored)
  if (!key) throw new ConfigError(`Invalid configuration:\n  ${config.dataDir}/encryption.key: does not hold a 32-byte key`)
  return key
}

/**
 * The signer of audit checkpoints: CUSTOS_SIGNING_KEY, or for the embedded
 * default one generated into the data dir. A PostgreSQL deployment must bring
 * its own, so replicas and restarts sign with the same key. Checkpoints signed
 * by the keys in CUSTOS_SIGNING_KEY_RETIRED still verify after a rotation.
 */
export async function loadAuditSigner(config: AppConfig): Promise<AuditSigner> {
  return auditSigner(await signingKey(config), config.retiredSigningKeys)
}

async function signingKey(config: AppConfig): Promise<KeyObject> {
  if (config.signingKey) return config.signingKey
  if (config.databaseUrl) {
    throw new ConfigError(
      'Invalid configuration:\n  CUSTOS_SIGNING_KEY: required with DATABASE_URL (an Ed25519 private key, PEM or base64 PKCS#8; ' +
        'create one with `openssl genpkey -algorithm ed25519`)',
    )
  }
  return loadOrCreateSigningKey(config.dataDir)
}

/**
 * Opens the database, migrates it, ensures the bootstrap keys, and serves HTTP.
 * `target` overrides the configured database (tests use an in-memory one).
 */
export async function startApp(
  config: AppConfig,
  logger: Logger,
  target = databaseTarget(config),
  terminal: Terminal = process.stderr,
): Promise<RunningApp> {
  const encryptionKey = await loadEncryptionKey(config)
  const signer = await loadAuditSigner(config)
  const db = await openDatabase(target, { warn: (message) => logger.warn(message) })
  let cursors
  let auditMaintenance: AuditMaintenance
  try {
    cursors = await loadCursorCodec(config)
    const { applied } = await migrate(db, { log: (message, fields) => logger.info(fields ?? {}, message) })
    logger.info({ applied: applied.length, database: db.kind }, 'database ready')
    const generated = await ensureBootstrapKeys(db.prisma, { root: config.rootToken, login: config.loginToken })
    for (const { name, token } of generated) {
      terminal.write(`\nGenerated ${name} token (shown only now; only its hash is stored): ${token}\n`)
    }
    auditMaintenance = await startAuditMaintenance(db, signer, config.auditLog, logger)
  } catch (error) {
    await db.close()
    throw error
  }
  const services: AppServices = { config, db, logger, mailer: createMailer(db.prisma, logger, config.smtpUrl), encryptionKey, cursors, auditSigner: signer }
  const server = createHttpServer(services)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.port, resolve)
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : config.port
  logger.info({ port }, 'listening')
  return {
    services,
    auditMaintenance,
    url: `http://127.0.0.1:${port}`,
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeIdleConnections()
      })
      await auditMaintenance.stop()
      await db.close()
    },
  }
}
