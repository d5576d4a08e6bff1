import { type KeyObject, createPublicKey } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { databaseTarget, loadAuditSigner } from '../app.js'
import { createReadStream } from 'node:fs'
import { readCheckpointsFile, readExportFile } from '../audit/exportFile.js'
import { type VerificationResult, verifyAuthLog, verifyRange } from '../audit/integrity.js'
import { maintainPartitions } from '../audit/partitions.js'
import { type AppConfig, ConfigError, loadConfig } from '../config.js'
import { SIGNING_KEY_FILE, parsePublicKeys, parseSigningKey } from '../crypto/signingKey.js'
import { openDatabase } from '../db/database.js'
import { createLogger } from '../logger.js'
import { UsageError, parseCommandLine } from './options.js'

export const auditCommandsUsage = `  verify     recompute the audit log's hash chain and check its signed checkpoints, or prove an exported
             file with them without the database; exit 1 when broken (custos verify --help)
  partitions create the audit log's partitions ahead and apply CUSTOS_AUDIT_RETENTION_MONTHS once;
             run as the table owner when the server runs as the least-privilege role
`

export const verifyUsage = `Usage: custos verify [--from N] [--to N] [--public-key FILE] [--json]
       custos verify --file EXPORT --checkpoints FILE --public-key FILE [--from N] [--to N] [--json]

Recomputes the audit log's hash chain, checks every signed checkpoint it passes, and names the first
broken entry. Exit status 0 when whole, 1 when broken, 2 for wrong arguments or unreadable input.

  --from N, --to N      sequence range (default: all); a range starts at the nearest signed checkpoint before N
  --public-key FILE     PEM public key(s) the checkpoints must verify with (the file may hold several
                        blocks: the current key and retired ones); default: from CUSTOS_SIGNING_KEY or the
                        data dir. Keys in CUSTOS_SIGNING_KEY_RETIRED are accepted as well
  --json                print the result as JSON
Without the database (an export and what the server published):
  --file EXPORT         a JSONL or CSV file written by custos export or GET /tenant/audit-log/export.*,
                        in any order; it proves itself only from a signed checkpoint (or entry 1) to one
  --checkpoints FILE    authLogCheckpoints as JSON: the array, or the whole GraphQL response
                        (custos export --checkpoints FILE writes it)
`

const sequenceOption = (value: string | undefined, name: string): bigint | undefined => {
  if (value === undefined) return undefined
  if (!/^[1-9]\d*$/.test(value)) throw new ConfigError(`--${name} must be a sequence number (1 or more), not ${value}`)
  return BigInt(value)
}

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

export async function runVerify(args: string[]) {
  const values = parseCommandLine(args, {
    from: { type: 'string' },
    to: { type: 'string' },
    'public-key': { type: 'string' },
    json: { type: 'boolean' },
    file: { type: 'string' },
    checkpoints: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  })
  if (values.help) return void process.stdout.write(verifyUsage)
  const config = loadConfig()
  const from = sequenceOption(values.from, 'from')
  const to = sequenceOption(values.to, 'to')
  const { file, checkpoints: checkpointsFile, 'public-key': publicKeyFile } = values
  if ((file === undefined) !== (checkpointsFile === undefined)) {
    throw new UsageError(file ? '--file needs --checkpoints FILE: the signed checkpoints (authLogCheckpoints) that cover it' : '--checkpoints goes with --file EXPORT')
  }
  const result =
    file === undefined || checkpointsFile === undefined
      ? await verifyDatabase(config, { from, to, publicKeyFile })
      : await verifyExportFile(config, { from, to, file, checkpointsFile, publicKeyFile })
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
  const db = await openDatabase(databaseTarget(config))
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

/**
 * An export proven with its checkpoints and the public key alone: no database, no data dir. With
 * --from or --to, the entries from the nearest checkpoint before `from` through `to` (as the
 * database's verification starts), so the part of an export that ends on a checkpoint can be proven.
 */
async function verifyExportFile(config: AppConfig, options: VerifyOptions & { file: string; checkpointsFile: string }): Promise<VerificationResult> {
  if (!options.publicKeyFile) throw new UsageError('--file needs --public-key FILE: the audit public key (GET /.well-known/custos-audit-key)')
  const publicKey = await verificationKeys(config, options.publicKeyFile)
  const { file, checkpointsFile, from, to } = options
  const checkpoints = await readInput('checkpoints', checkpointsFile, async () => readCheckpointsFile(await readFile(checkpointsFile, 'utf8')))
  const entries = await readInput('file', file, () => readExportFile(createReadStream(file, 'utf8')))
  const before = checkpoints.map((checkpoint) => BigInt(checkpoint.sequence)).filter((sequence) => from !== undefined && sequence < from)
  const start = before.reduce((a, b) => (a > b ? a : b), 0n)
  const selected = entries.filter((entry) => BigInt(entry.sequence) > start && (to === undefined || BigInt(entry.sequence) <= to))
  return verifyRange(selected, checkpoints, publicKey)
}

export async function runPartitions() {
  const config = loadConfig()
  const signer = await loadAuditSigner(config)
  const db = await openDatabase(databaseTarget(config))
  try {
    const report = await maintainPartitions(db, signer, createLogger(config.logLevel, process.stderr), config.auditLog)
    process.stdout.write(
      `Partitions created: ${report.created.join(', ') || 'none'}\nPartitions dropped: ${report.dropped.join(', ') || 'none'}\n` +
        (report.retentionStopped ? `Retention stopped: ${report.retentionStopped}\n` : ''),
    )
  } finally {
    await db.close()
  }
}
