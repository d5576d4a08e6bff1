import { databaseTarget } from '../app.js'
import { ConfigError, loadConfig } from '../config.js'
import { openDatabase } from '../db/database.js'
import { MigrationError, migrate } from '../db/migrator.js'

const usage = `Usage: custos <command>

Commands:
  migrate    apply pending database migrations (DATABASE_URL, or the embedded database in CUSTOS_DATA_DIR)
`

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

const commands: Record<string, () => Promise<void>> = { migrate: runMigrate }

const [name] = process.argv.slice(2)
const command = name ? commands[name] : undefined
if (!command) {
  process.stderr.write(usage)
  process.exit(name === undefined || name === '--help' ? 0 : 2)
}
try {
  await command()
} catch (error) {
  if (error instanceof ConfigError || error instanceof MigrationError) {
    process.stderr.write(`${error.message}\n`)
    process.exit(2)
  }
  throw error
}
