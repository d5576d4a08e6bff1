import type { Logger } from 'pino'
import { loadCursorCodec } from './audit/cursor.js'
import type { AppConfig } from './config.js'
import { type DatabaseTarget, openDatabase } from './db/database.js'
import { migrate } from './db/migrator.js'
import { type AppServices } from './http/context.js'
import { createHttpServer } from './http/server.js'
import { createMailer } from './mail/mailer.js'
import { ensureBootstrapKeys } from './tenant/apiKeys/bootstrap.js'

export interface RunningApp {
  readonly services: AppServices
  readonly url: string
  /** Stops taking requests, lets in-flight ones finish, then closes the database. */
  stop(): Promise<void>
}

export const databaseTarget = (config: AppConfig): DatabaseTarget =>
  config.databaseUrl ? { url: config.databaseUrl } : { dataDir: config.dataDir }

/**
 * Opens the database, migrates it, ensures the bootstrap keys, and serves HTTP.
 * `target` overrides the configured database (tests use an in-memory one).
 */
export async function startApp(config: AppConfig, logger: Logger, target = databaseTarget(config)): Promise<RunningApp> {
  const db = await openDatabase(target)
  let cursors
  try {
    cursors = await loadCursorCodec(config)
    const { applied } = await migrate(db, { log: (message, fields) => logger.info(fields ?? {}, message) })
    logger.info({ applied: applied.length, database: db.kind }, 'database ready')
    const generated = await ensureBootstrapKeys(db.prisma, { root: config.rootToken, login: config.loginToken })
    for (const { name, token } of generated) {
      // Printed once, on purpose, to the terminal rather than the structured log.
      process.stderr.write(`\nGenerated ${name} token (shown only now; only its hash is stored): ${token}\n`)
    }
  } catch (error) {
    await db.close()
    throw error
  }
  const services: AppServices = { config, db, logger, mailer: createMailer(db.prisma, logger, config.smtpUrl), cursors }
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
    url: `http://127.0.0.1:${port}`,
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeIdleConnections()
      })
      await db.close()
    },
  }
}
