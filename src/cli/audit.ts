import { type KeyObject, createPublicKey } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { loadAuditSigner } from '../installation.js'
import { ExportFile, readCheckpointsFile } from '../audit/exportFile.js'
import { type VerificationResult, VerificationRangeError, verificationRange, verifyAuthLog, verifyRange } from '../audit/integrity.js'
import { maintainPartitions } from '../audit/partitions.js'
import { type AppConfig, ConfigError, loadConfig } from '../config.js'
import { SIGNING_KEY_FILE, parsePublicKeys, parseSigningKey } from '../crypto/signingKey.js'
import { createLogger } from '../logger.js'
import { SourceInputError, openConfiguredDatabase, serverSource } from './logSource.js'
import { UsageError, parseCommandLine, wantsHelpOnly } from './options.js'

export const auditCommandsUsage = `  verify     recompute the audit log's hash chain and check its signed checkpoints, or prove an exported
             file with them without the database; exit 1 when broken (custos verify --help)
  partitions create the audit log's partitions ahead and apply CUSTOS_AUDIT_RETENTION_MONTHS once;
             run as the table owner when the server runs as the least-privilege role
`

export const verifyUsage = `Usage: custos verify [--from N] [--to N] [--public-key FILE] [--json]
       custos verify --url URL --token TOKEN [--from N] [--to N] [--json]
       custos verify --file EXPORT --checkpoints FILE --public-key FILE [--from N] [--to N] [--json]

Recomputes the audit log's hash chain, checks every signed checkpoint it passes, and names the first
broken entry. Exit status 0 when whole, 1 when broken (or the server refused the token), 2 for wrong
arguments, a refused range or unreadable input.

  --from N, --to N      sequence range (default: all); a range starts at the nearest signed checkpoint before N.
                        It must name entries there are: N from 1 to the last entry (of the file, with --file),
                        --to not below --from; after retention --to not before the first entry kept
  --public-key FILE     PEM public key(s) the checkpoints must verify with (the file may hold several
                        blocks: the current key and retired ones); default: from CUSTOS_SIGNING_KEY or the
                        data dir. Keys in CUSTOS_SIGNING_KEY_RETIRED are accepted as well
  --json                print the result as JSON
On a running server (verifyAuthLog; it checks the checkpoints with its own keys):
  --url URL             the server (or CUSTOS_URL), e.g. http://localhost:4000
  --token TOKEN         its bearer token with system:viewAuthLog (or CUSTOS_TOKEN)
Without the database (an export and what the server published):
  --file EXPORT         a JSONL or CSV file written by custos export or GET /tenant/audit-log/export.*,
                        in any order; it proves itself only from a signed checkpoint (or entry 1) to one
  --checkpoints FILE    authLogCheckpoints as JSON: the array, or the whole GraphQL response
                        (custos export --checkpoints FILE writes it)
`

/**
 * The keys checkpoints must verify with: those in --public-key FILE (one PEM
 * public key, or several concatenated), else the public half of the signing
 * key; and always the retired ones of CUSTOS_SIGNING_KEY_RETIRED.
 */
async function verificationKeys(config: AppConfig, file: string | undefined): Promise<KeyObject[]> {
  return [...(await currentPublicKeys(config, file)), ...config.retiredSigningKeys]
}

async function currentPublicKeys(config: AppConfig, file: string | undefined): Promise<KeyObject[]> {
  if (file) return readInput('public-key', file, async () => parsePublicKeys(await readFile(file, 'utf8')))
  if (config.signingKey) return [createPublicKey(config.signingKey)]
  if (!config.databaseUrl) {
    // The embedded default's generated key; verification must not create one.
    const pem = await readFile(join(config.dataDir, SIGNING_KEY_FILE), 'utf8').catch(() => undefined)
    if (pem) return [createPublicKey(parseSigningKey(pem))]
  }
  throw new ConfigError('No audit public key: pass --public-key FILE (GET /.well-known/custos-audit-key) or set CUSTOS_SIGNING_KEY')
}

/** What was verified (`Audit log`, `Export FILE`) and how it went. */
function describe(result: VerificationResult, subject: string): string {
  const { anchor, firstBroken } = result
  // An exported range that starts away from a checkpoint is walked from its first entry's own hash.
  const unanchored = firstBroken?.reason === 'NOT_ANCHORED' && firstBroken.sequence === anchor.sequence
  const start = anchor.sequence === 0n ? 'the beginning' : unanchored ? `entry ${anchor.sequence}, unproven,` : `the signed checkpoint at ${anchor.sequence}`
  const lines = [
    result.ok ? `${subject} verified: ok` : `${subject} verification FAILED`,
    `  entries checked:     ${result.entriesChecked} (from ${start} through ${result.lastSequence})`,
    `  checkpoints checked: ${result.checkpointsChecked}`,
  ]
  if (firstBroken) {
    const { sequence, entryId, reason, message } = firstBroken
    lines.push(`  first broken entry:  sequence ${sequence}${entryId ? ` (id ${entryId})` : ''}: ${reason}`, `  ${message}`)
  }
  return `${lines.join('\n')}\n`
}

const resultJson = (result: VerificationResult) => ({
  ...result,
  anchor: { ...result.anchor, sequence: result.anchor.sequence.toString(), hash: result.anchor.hash.toString('hex') },
  lastSequence: result.lastSequence.toString(),
  lastHash: result.lastHash.toString('hex'),
  firstBroken: result.firstBroken && { ...result.firstBroken, sequence: result.firstBroken.sequence.toString() },
})

const isRangeArgument = (argument: string | undefined): argument is 'from' | 'to' => argument === 'from' || argument === 'to'

/** A range refused here or by the server, with its arguments named as options: unusable input, exit status 2. */
async function namingOptions<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (error) {
    if (error instanceof VerificationRangeError) throw new ConfigError(error.messageNaming((argument) => `--${argument}`))
    if (error instanceof SourceInputError && isRangeArgument(error.argument)) throw new ConfigError(error.message.replace(error.argument, `--${error.argument}`))
    throw error
  }
}

export async function runVerify(args: string[]) {
  const values = parseCommandLine(args, {
    from: { type: 'string' },
    to: { type: 'string' },
    'public-key': { type: 'string' },
    json: { type: 'boolean' },
    url: { type: 'string' },
    token: { type: 'string' },
    file: { type: 'string' },
    checkpoints: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  })
  if (values.help) return void process.stdout.write(verifyUsage)
  // Checked before anything is opened; what the range names, against the entries there are.
  const range = await namingOptions(async () => verificationRange(values))
  const { file, checkpoints: checkpointsFile, 'public-key': publicKeyFile } = values
  if ((file === undefined) !== (checkpointsFile === undefined)) {
    throw new UsageError(file ? '--file needs --checkpoints FILE: the signed checkpoints (authLogCheckpoints) that cover it' : '--checkpoints goes with --file EXPORT')
  }
  if (file !== undefined && values.url !== undefined) throw new UsageError('--file and --url exclude each other: --file proves an export without a database or a server')
  const server = file === undefined ? serverSource(values) : undefined
  if (server && publicKeyFile !== undefined) {
    throw new UsageError('--public-key does not go with --url: the server checks the checkpoints with its own keys (to check them with yours, verify an export with --file)')
  }
  const result = await namingOptions(() =>
    server
      ? server.verify(range)
      : file === undefined || checkpointsFile === undefined
        ? verifyDatabase(loadConfig(), { ...range, publicKeyFile })
        : verifyExportFile(loadConfig(), { ...range, file, checkpointsFile, publicKeyFile }),
  )
  process.stdout.write(values.json ? `${JSON.stringify(resultJson(result), null, 2)}\n` : describe(result, file === undefined ? 'Audit log' : `Export ${file}`))
  if (!result.ok) process.exitCode = 1
}

interface VerifyOptions {
  readonly from: bigint | undefined
  readonly to: bigint | undefined
  readonly publicKeyFile: string | undefined
}

async function verifyDatabase(config: AppConfig, options: VerifyOptions): Promise<VerificationResult> {
  const publicKey = await verificationKeys(config, options.publicKeyFile)
  const db = await openConfiguredDatabase(config)
  try {
    return await verifyAuthLog(db, { from: options.from, to: options.to, publicKey })
  } finally {
    await db.close()
  }
}

/** Reads a file the command line was given: one it cannot read, or that is malformed, is unusable input (exit status 2). */
async function readInput<T>(option: string, file: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read()
  } catch (error) {
    throw new ConfigError(`--${option} ${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`)
  }
}

/** An export proven with its checkpoints and the public key alone: no database, no data dir. */
async function verifyExportFile(config: AppConfig, options: VerifyOptions & { file: string; checkpointsFile: string }): Promise<VerificationResult> {
  if (!options.publicKeyFile) throw new UsageError('--file needs --public-key FILE: the audit public key (GET /.well-known/custos-audit-key)')
  const publicKey = await verificationKeys(config, options.publicKeyFile)
  const { file, checkpointsFile, from, to } = options
  const checkpoints = await readInput('checkpoints', checkpointsFile, async () => readCheckpointsFile(await readFile(checkpointsFile, 'utf8')))
  const entries = await readInput('file', file, async () => {
    const opened = await ExportFile.open(file)
    // An empty file proves nothing: "verified: ok" would pass off a wrong or truncated file.
    if (opened.length === 0) {
      await opened.close()
      throw new Error('holds no entries')
    }
    return opened
  })
  try {
    return await verifyRange(entries, checkpoints, publicKey, { from, to })
  } finally {
    await entries.close()
  }
}

export const partitionsUsage = `Usage: custos partitions

Creates the audit log's partitions ahead and applies CUSTOS_AUDIT_RETENTION_MONTHS once (dropping the
partitions past it); run as the table owner when the server runs as the least-privilege role.
`

export async function runPartitions(args: string[]) {
  if (wantsHelpOnly(args)) return void process.stdout.write(partitionsUsage)
  const config = loadConfig()
  // The database first: loading the embedded default's signing key would create its data directory.
  const db = await openConfiguredDatabase(config)
  try {
    const signer = await loadAuditSigner(config)
    const report = await maintainPartitions(db, signer, createLogger(config.logLevel, process.stderr), config.auditLog)
    process.stdout.write(
      `Partitions created: ${report.created.join(', ') || 'none'}\nPartitions dropped: ${report.dropped.join(', ') || 'none'}\n` +
        (report.retentionStopped ? `Retention stopped: ${report.retentionStopped}\n` : ''),
    )
  } finally {
    await db.close()
  }
}
