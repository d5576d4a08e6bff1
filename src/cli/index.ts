import { databaseTarget } from '../app.js'
import { ConfigError, loadConfig } from '../config.js'
import { openDatabase } from '../db/database.js'
import { MigrationError, migrate } from '../db/migrator.js'
import { auditCommandsUsage, runPartitions, runVerify } from './audit.js'

const usage = `Usage: custos <command> [options]

Commands:
  migrate    apply pending database migrations (DATABASE_URL, or the embedded database in CUSTOS_DATA_DIR)
${auditCommandsUsage}`

async function runMigrate() {
  const config = loadConfig()
  const db = await openDatabase(databaseTarget(config))
  try {
    const { applied } = await migrate(db, { log: (message, fields) => process.stderr.write(`${message} ${JSON.stringify(fields ?? {})}\n`) })
    process.stdout.write(applied.length ? `Applied ${applied.length} migration(s).\n` : 'Database is up to date.\n')
  } finally {
    await db.close()
  }
}

const commands: Record<string, (args: string[]) => Promise<void>> = { migrate: runMigrate, verify: runVerify, partitions: runPartitions }

const [name, ...args] = process.argv.slice(2)
const command = name ? commands[name] : undefined
if (!command) {
  process.stderr.write(usage)
  process.exit(name === undefined || name === '--help' ? 0 : 2)
}
// Unknown or malformed options (node:util parseArgs) are usage errors too.
const isUsageError = (error: unknown) => String((error as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS')

try {
  await command(args)
} catch (error) {
  if (error instanceof ConfigError || error instanceof MigrationError || isUsageError(error)) {
    process.stderr.write(`${(error as Error).message}\n`)
    process.exit(2)
  }
  throw error
}
