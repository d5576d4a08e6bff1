import { ConfigError, loadConfig } from '../config.js'
import { DataDirLockedError } from '../db/dataDirLock.js'
import { MigrationError, migrate } from '../db/migrator.js'
import { auditCommandsUsage, partitionsUsage, runPartitions, runVerify, verifyUsage } from './audit.js'
import { exportUsage, runExport } from './export.js'
import { logUsage, runLog } from './log.js'
import { SourceError, SourceInputError, openConfiguredDatabase } from './logSource.js'
import { UsageError, wantsHelpOnly } from './options.js'

const usage = `Usage: custos <command> [options]

Commands:
  migrate    apply pending database migrations (DATABASE_URL, or the embedded database in CUSTOS_DATA_DIR)
  log        print the newest audit log entries, or follow new ones (custos log --help)
  export     write the audit log, or part of it, to a JSONL or CSV file (custos export --help)
${auditCommandsUsage}`

const migrateUsage = `Usage: custos migrate

Applies pending database migrations to DATABASE_URL, or to the embedded database in CUSTOS_DATA_DIR.
`

async function runMigrate(args: string[]) {
  if (wantsHelpOnly(args)) return void process.stdout.write(migrateUsage)
  const config = loadConfig()
  const db = await openConfiguredDatabase(config, { migrated: false })
  try {
    const { applied } = await migrate(db, { log: (message, fields) => process.stderr.write(`${message} ${JSON.stringify(fields ?? {})}\n`) })
    process.stdout.write(applied.length ? `Applied ${applied.length} migration(s).\n` : 'Database is up to date.\n')
  } finally {
    await db.close()
  }
}

const commands: Record<string, (args: string[]) => Promise<void>> = { migrate: runMigrate, log: runLog, export: runExport, verify: runVerify, partitions: runPartitions }
const commandUsage: Record<string, string> = { migrate: migrateUsage, log: logUsage, export: exportUsage, verify: verifyUsage, partitions: partitionsUsage }

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
  if (error instanceof UsageError) {
    process.stderr.write(`custos ${name}: ${error.message}\n\n${commandUsage[name!] ?? usage}`)
    process.exit(2)
  }
  if (error instanceof SourceInputError) {
    process.stderr.write(`custos ${name}: ${error.message}\n`)
    process.exit(2)
  }
  if (error instanceof SourceError || error instanceof DataDirLockedError) {
    process.stderr.write(`custos ${name}: ${error.message}\n`)
    process.exit(1)
  }
  // Anything else (the database connection lost mid-export, say) in one line too, not a driver's stack trace.
  process.stderr.write(`custos ${name}: ${(error as Error)?.message || String(error)}\n`)
  process.exit(1)
}
