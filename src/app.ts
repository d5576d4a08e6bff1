import type { Logger } from 'pino'
import { loadCursorCodec } from './audit/cursor.js'
import { type AuditMaintenance, startAuditMaintenance } from './audit/maintenance.js'
import type { AppConfig } from './config.js'
import { openDatabase } from './db/database.js'
import { migrate } from './db/migrator.js'
import { type AppServices } from './http/context.js'
import { createHttpServer } from './http/server.js'
import { databaseTarget, loadAuditSigner, loadEncryptionKey } from './installation.js'
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
