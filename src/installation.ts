import { type KeyObject, randomBytes } from 'node:crypto'
import { type AppConfig, ConfigError } from './config.js'
import { KEY_BYTES, parseEncryptionKey } from './crypto/encryption.js'
import { loadOrCreateKeyFile } from './crypto/keyFiles.js'
import { type AuditSigner, auditSigner, loadOrCreateSigningKey } from './crypto/signingKey.js'
import type { DatabaseTarget } from './db/database.js'

/**
 * What an installation is besides its code, read from its configuration: where its database is,
 * and its keys, given in the environment or kept in the data directory. Kept apart from app.ts so
 * the command line loads it without the HTTP server and the GraphQL schema.
 */

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
