import { type KeyPairKeyObjectResult, createPublicKey, generateKeyPairSync, verify } from 'node:crypto'
import { mkdtemp, readFile, rename, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SIGNING_KEY_FILE } from '../../src/crypto/signingKey.js'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { type TestDatabase, durableTestDatabase, onPostgres } from '../testkit/database.js'
import { type LogCheckpoint, addLogEntries, createLogCheckpoint, listLogCheckpoints, verifyLog } from '../testkit/fixtures.js'

/** Replacing the checkpoint signing key: CUSTOS_SIGNING_KEY_RETIRED keeps the checkpoints the old key signed verifiable. */

const privatePem = (pair: KeyPairKeyObjectResult) => pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
const publicPem = (pair: KeyPairKeyObjectResult) => pair.publicKey.export({ format: 'pem', type: 'spki' }).toString()
const signedBy = (publicKey: string, checkpoint: LogCheckpoint) =>
  verify(null, Buffer.from(checkpoint.payload, 'utf8'), createPublicKey(publicKey), Buffer.from(checkpoint.signature, 'base64'))

const keyA = generateKeyPairSync('ed25519')
const keyB = generateKeyPairSync('ed25519')

const dirs: string[] = []
const databases: TestDatabase[] = []

afterAll(async () => {
  await Promise.all(databases.map((database) => database.drop()))
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })))
})

/** A database that outlives each start, in a directory of its own. */
async function durableDatabase(): Promise<{ dir: string; database: TestDatabase }> {
  const dir = await mkdtemp(join(tmpdir(), 'custos-rotation-'))
  dirs.push(dir)
  const database = await durableTestDatabase(join(dir, 'db'))
  databases.push(database)
  return { dir, database }
}

/** Runs `work` against a server started on `database` with `environment`, then stops it. */
async function withApp<T>(database: TestDatabase, environment: Record<string, string>, work: (app: TestApp) => Promise<T>): Promise<T> {
  const app = await startTestApp(environment, { database })
  try {
    return await work(app)
  } finally {
    await app.stop()
  }
}

/** Two checkpoints signed on demand, with entries before each. */
async function signTwice(app: TestApp): Promise<LogCheckpoint[]> {
  await addLogEntries(app, 2)
  const first = await createLogCheckpoint(app)
  await addLogEntries(app, 1)
  return [first, await createLogCheckpoint(app)]
}

describe('rotating CUSTOS_SIGNING_KEY from key A to key B', () => {
  let database: TestDatabase
  /** Signed with key A, oldest first. */
  let signedWithA: LogCheckpoint[]

  beforeAll(async () => {
    ;({ database } = await durableDatabase())
    signedWithA = await withApp(database, { CUSTOS_SIGNING_KEY: privatePem(keyA) }, signTwice)
    expect(signedWithA.every((checkpoint) => signedBy(publicPem(keyA), checkpoint))).toBe(true)
  })

  it('with A retired: the log verifies, new checkpoints are signed with B, and A is published as retired', async () => {
    await withApp(database, { CUSTOS_SIGNING_KEY: privatePem(keyB), CUSTOS_SIGNING_KEY_RETIRED: publicPem(keyA) }, async (app) => {
      expect(await verifyLog(app)).toMatchObject({ ok: true, checkpointsChecked: 2, firstBroken: null })

      // Signing verifies the chain since the newest checkpoint, one A signed.
      const signedWithB = await createLogCheckpoint(app)
      expect(signedBy(publicPem(keyB), signedWithB)).toBe(true)
      expect(signedBy(publicPem(keyA), signedWithB)).toBe(false)
      expect(await verifyLog(app)).toMatchObject({ ok: true, checkpointsChecked: 3 })
      expect(await verifyLog(app, { from: signedWithB.sequence + 1 })).toMatchObject({ ok: true, anchor: { checkpointId: signedWithB.id } })
      expect((await listLogCheckpoints(app)).map((checkpoint) => checkpoint.id)).toEqual([signedWithB.id, ...signedWithA.map((c) => c.id).reverse()])

      // The well-known key stays exactly the current one; GraphQL lists the retired ones beside it.
      expect(await (await fetch(`${app.url}/.well-known/custos-audit-key`)).text()).toBe(publicPem(keyB))
      const response = await app.gql('{ authLogPublicKey authLogRetiredPublicKeys }', { token: app.rootToken })
      expect(response.data).toEqual({ authLogPublicKey: publicPem(keyB), authLogRetiredPublicKeys: [publicPem(keyA)] })
    })
  })

  it.each([
    ['no key retired', {}],
    ['only a key that signed none of them retired', { CUSTOS_SIGNING_KEY_RETIRED: publicPem(generateKeyPairSync('ed25519')) }],
  ])('with %s: CHECKPOINT_SIGNATURE_INVALID at the first checkpoint A signed', async (_case, retired: Record<string, string>) => {
    await withApp(database, { CUSTOS_SIGNING_KEY: privatePem(keyB), ...retired }, async (app) => {
      const result = await verifyLog(app)
      expect(result).toMatchObject({ ok: false, firstBroken: { reason: 'CHECKPOINT_SIGNATURE_INVALID', sequence: signedWithA[0]!.sequence } })
      expect(result.firstBroken!.message).toContain('does not verify with the audit public key or a retired one')
    })
  })
})

// The README's procedure for the embedded default: move the generated key aside, retire its public key, restart.
it.skipIf(onPostgres)('the embedded default: a moved-aside generated key, retired, keeps its checkpoints verifiable', async () => {
  const { dir, database } = await durableDatabase()
  const keys = { CUSTOS_DATA_DIR: dir }
  const [oldCheckpoint] = await withApp(database, keys, signTwice)
  const oldKeyFile = join(dir, SIGNING_KEY_FILE)
  const oldPublicKey = createPublicKey(await readFile(oldKeyFile, 'utf8')).export({ format: 'pem', type: 'spki' }).toString()
  await rename(oldKeyFile, `${oldKeyFile}.old`)

  await withApp(database, { ...keys, CUSTOS_SIGNING_KEY_RETIRED: oldPublicKey }, async (app) => {
    const newPublicKey = await (await fetch(`${app.url}/.well-known/custos-audit-key`)).text()
    expect(newPublicKey).not.toBe(oldPublicKey)
    expect(signedBy(oldPublicKey, oldCheckpoint!)).toBe(true)
    expect(await verifyLog(app)).toMatchObject({ ok: true, checkpointsChecked: 2 })
    expect(signedBy(newPublicKey, await createLogCheckpoint(app))).toBe(true)
    expect(await verifyLog(app)).toMatchObject({ ok: true, checkpointsChecked: 3 })
  })
})
