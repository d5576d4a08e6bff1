import { type KeyObject, createPublicKey } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { databaseTarget, loadAuditSigner } from '../app.js'
import type { VerificationResult } from '../audit/integrity.js'
import { verifyAuthLog } from '../audit/integrity.js'
import { maintainPartitions } from '../audit/partitions.js'
import { type AppConfig, ConfigError, loadConfig } from '../config.js'
import { SIGNING_KEY_FILE, parsePublicKeys, parseSigningKey } from '../crypto/signingKey.js'
import { openDatabase } from '../db/database.js'
import { createLogger } from '../logger.js'

export const auditCommandsUsage = `  verify     recompute the audit log's hash chain and check its signed checkpoints; exit 1 when broken
             [--from N] [--to N]  sequence range (default: all)
             [--public-key FILE]  PEM public key(s) the checkpoints must verify with (default: from CUSTOS_SIGNING_KEY or the data dir);
                                  keys in CUSTOS_SIGNING_KEY_RETIRED are accepted as well
             [--json]             print the result as JSON
  partitions create the audit log's partitions ahead and apply CUSTOS_AUDIT_RETENTION_MONTHS once;
             run as the table owner when the server runs as the least-privilege role
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
  if (file) {
    const pem = await readFile(file, 'utf8')
    try {
      return parsePublicKeys(pem)
    } catch (error) {
      throw new ConfigError(`--public-key ${file}: ${(error as Error).message}`)
    }
  }
  if (config.signingKey) return [createPublicKey(config.signingKey)]
  if (!config.databaseUrl) {
    // The embedded default's generated key; verification must not create one.
    const pem = await readFile(join(config.dataDir, SIGNING_KEY_FILE), 'utf8').catch(() => undefined)
    if (pem) return [createPublicKey(parseSigningKey(pem))]
  }
  throw new ConfigError('No audit public key: pass --public-key FILE (GET /.well-known/custos-audit-key) or set CUSTOS_SIGNING_KEY')
}

function describe(result: VerificationResult): string {
  const start = result.anchor.checkpointId ? `the signed checkpoint at ${result.anchor.sequence}` : 'the beginning'
  const lines = [
    result.ok ? 'Audit log verified: ok' : 'Audit log verification FAILED',
    `  entries checked:     ${result.entriesChecked} (from ${start} through ${result.lastSequence})`,
    `  checkpoints checked: ${result.checkpointsChecked}`,
  ]
  const broken = result.firstBroken
  if (broken) {
    lines.push(`  first broken entry:  sequence ${broken.sequence}${broken.entryId ? ` (id ${broken.entryId})` : ''}: ${broken.reason}`, `  ${broken.message}`)
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
  const { values } = parseArgs({
    args,
    options: { from: { type: 'string' }, to: { type: 'string' }, 'public-key': { type: 'string' }, json: { type: 'boolean' } },
  })
  const config = loadConfig()
  const from = sequenceOption(values.from, 'from')
  const to = sequenceOption(values.to, 'to')
  const publicKey = await verificationKeys(config, values['public-key'])
  const db = await openDatabase(databaseTarget(config))
  try {
    const result = await verifyAuthLog(db, { from, to, publicKey })
    process.stdout.write(values.json ? `${JSON.stringify(resultJson(result), null, 2)}\n` : describe(result))
    if (!result.ok) process.exitCode = 1
  } finally {
    await db.close()
  }
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
