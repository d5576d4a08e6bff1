import { createPublicKey, verify } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chainHash } from '../../src/audit/canonical.js'
import { verifyRange } from '../../src/audit/integrity.js'
import type { Database } from '../../src/db/database.js'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { logSize } from '../testkit/expectations.js'
import {
  addLogEntries,
  checkpointFields,
  createLogCheckpoint,
  exportLog,
  listLogCheckpoints,
  readLog,
  restoreLogRows,
  signedInPerson,
  snapshotLogRows,
  tamper,
  verifyLog,
} from '../testkit/fixtures.js'

/** Signed checkpoints, the published key, and proving an exported range with nothing else. */

let app: TestApp
let db: Database
let publishedKey: string

beforeAll(async () => {
  // Interval checkpoints by count only, triggered by hand below rather than by waiting.
  app = await startTestApp({ CUSTOS_AUDIT_CHECKPOINT_ENTRIES: '3', CUSTOS_AUDIT_CHECKPOINT_SECONDS: '0' })
  db = app.app.services.db
  const response = await fetch(`${app.url}/.well-known/custos-audit-key`)
  expect(response.status).toBe(200)
  expect(response.headers.get('content-type')).toBe('application/x-pem-file')
  publishedKey = await response.text()
})

afterAll(async () => {
  await app?.stop()
})

/** A checkpoint at `sequence` that no key signed, inserted as custos_app may. */
const forgeCheckpoint = (sequence: number) =>
  db.session((session) =>
    session.query(
      "INSERT INTO person_auth_log_checkpoint (id, sequence, hash, created_at, signature, reason) VALUES (gen_random_uuid(), $1, sha256('x'::bytea), now(), sha512('forged'::bytea), 'interval')",
      [sequence],
    ),
  )

/** Superuser, triggers off. */
const removeForgedCheckpoints = () => tamper(db, "DELETE FROM person_auth_log_checkpoint WHERE signature = sha512('forged'::bytea)")

const verifies = (payload: string, signature: string) => verify(null, Buffer.from(payload, 'utf8'), createPublicKey(publishedKey), Buffer.from(signature, 'base64'))

describe('the published key', () => {
  it('is an Ed25519 public key in PEM (SPKI), the same over HTTP and GraphQL', async () => {
    const key = createPublicKey(publishedKey)
    expect(key.asymmetricKeyType).toBe('ed25519')
    expect(publishedKey).toMatch(/^-----BEGIN PUBLIC KEY-----\n/)
    const response = await app.gql('{ authLogPublicKey }', { token: app.rootToken })
    expect(response.data.authLogPublicKey).toBe(publishedKey)
    expect((await fetch(`${app.url}/.well-known/custos-audit-key`, { method: 'POST' })).status).toBe(405)
  })
})

describe('createAuthLogCheckpoint', () => {
  it('signs exactly "custos-audit/v1\\n<sequence>\\n<hash>\\n<time>\\n" at the head, and the signature verifies', async () => {
    await addLogEntries(app, 2)
    const verification = await verifyLog(app)
    const checkpoint = await createLogCheckpoint(app)

    expect(checkpoint).toMatchObject({ sequence: verification.lastSequence, hash: verification.lastHash, reason: 'ON_DEMAND' })
    expect(checkpoint.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    expect(checkpoint.payload).toBe(`custos-audit/v1\n${checkpoint.sequence}\n${checkpoint.hash}\n${checkpoint.createdAt}\n`)
    expect(verifies(checkpoint.payload, checkpoint.signature)).toBe(true)
    expect((await listLogCheckpoints(app))[0]).toEqual(checkpoint)
  })

  it('is recorded as auth_log_checkpoint by its caller, right after the entry it signs, and the log still verifies', async () => {
    await addLogEntries(app, 1)
    const checkpoint = await createLogCheckpoint(app)
    const [entry, signed] = (await readLog(app, { limit: 2 })).entries
    expect(signed).toMatchObject({ type: 'api_key_create', sequence: checkpoint.sequence, invokedByIdentityId: expect.any(String) })
    expect(entry).toMatchObject({
      type: 'auth_log_checkpoint',
      success: true,
      invokedByIdentityId: signed!.invokedByIdentityId,
      sequence: checkpoint.sequence + 1,
      eventData: { checkpointId: checkpoint.id, checkpointSequence: String(checkpoint.sequence), checkpointHash: checkpoint.hash, reason: 'on_demand' },
    })
    expect(await verifyLog(app)).toMatchObject({ ok: true, lastSequence: checkpoint.sequence + 1, anchor: { checkpointId: null } })
    expect(await verifyLog(app, { from: checkpoint.sequence + 1 })).toMatchObject({ ok: true, entriesChecked: 1, anchor: { checkpointId: checkpoint.id } })
  })

  it('gives signatures that fail for any change to the checkpoint', async () => {
    const checkpoint = await createLogCheckpoint(app)
    const changedHash = checkpoint.hash.replace(/^./, (digit) => (digit === '0' ? '1' : '0'))
    const changed = [
      `custos-audit/v1\n${checkpoint.sequence + 1}\n${checkpoint.hash}\n${checkpoint.createdAt}\n`,
      `custos-audit/v1\n${checkpoint.sequence}\n${changedHash}\n${checkpoint.createdAt}\n`,
      `custos-audit/v1\n${checkpoint.sequence}\n${checkpoint.hash}\n${new Date(Date.parse(checkpoint.createdAt) + 1).toISOString()}\n`,
    ]
    for (const payload of changed) expect(verifies(payload, checkpoint.signature)).toBe(false)
    expect(verifies(checkpoint.payload, checkpoint.signature)).toBe(true)
  })

  it('refuses to sign a broken chain, and stores nothing', async () => {
    await addLogEntries(app, 2)
    const { lastSequence } = await verifyLog(app)
    const kept = await snapshotLogRows(db, 'sequence = $1', [lastSequence])
    const before = await listLogCheckpoints(app)
    await tamper(db, "UPDATE person_auth_log SET user_agent = 'forged' WHERE sequence = $1", [lastSequence])
    try {
      const response = await app.gql(
        `mutation { createAuthLogCheckpoint { ok error { code developerMessage firstBroken { sequence reason } } result { ${checkpointFields} } } }`,
        { token: app.rootToken },
      )
      expect(response.data.createAuthLogCheckpoint).toMatchObject({
        ok: false,
        result: null,
        error: { code: 'CHAIN_BROKEN', firstBroken: { sequence: lastSequence, reason: 'CONTENT_CHANGED' } },
      })
      expect(await listLogCheckpoints(app)).toEqual(before)
      expect((await readLog(app, { limit: 1 })).entries[0]).toMatchObject({ sequence: lastSequence })
    } finally {
      await restoreLogRows(db, kept)
    }
  })

  it('signs an earlier entry when asked for its sequence (the end of an exported range), verifying up to it', async () => {
    await addLogEntries(app, 2)
    const { lastSequence } = await verifyLog(app)
    const [, target] = (await readLog(app, { limit: 2 })).entries
    expect(target).toMatchObject({ sequence: lastSequence - 1 })
    const sign = (sequence: unknown) =>
      app.gql(`mutation ($sequence: BigInt) { createAuthLogCheckpoint(sequence: $sequence) { ok error { code } result { ${checkpointFields} } } }`, {
        token: app.rootToken,
        variables: { sequence },
      })
    const response = await sign(lastSequence - 1)
    const checkpoint = response.data.createAuthLogCheckpoint.result
    expect(checkpoint).toMatchObject({ sequence: lastSequence - 1, reason: 'ON_DEMAND' })
    expect(checkpoint.payload).toBe(`custos-audit/v1\n${lastSequence - 1}\n${checkpoint.hash}\n${checkpoint.createdAt}\n`)
    expect(verifies(checkpoint.payload, checkpoint.signature)).toBe(true)
    expect(checkpoint.hash).toBe(target!.hash)
    // Recorded after the head, naming the entry it signed.
    expect((await readLog(app, { limit: 1 })).entries[0]).toMatchObject({
      type: 'auth_log_checkpoint',
      sequence: lastSequence + 1,
      eventData: { checkpointSequence: String(lastSequence - 1) },
    })

    // A sequence that names no entry is refused, and nothing is signed or recorded.
    const before = { checkpoints: await listLogCheckpoints(app), log: await verifyLog(app) }
    for (const [sequence, message] of [
      [lastSequence + 2, `sequence is past the last entry, ${lastSequence + 1}`],
      [0, 'sequence must be a sequence number from 1 to 9223372036854775807, not 0'],
      ['-3', 'sequence must be a sequence number from 1 to 9223372036854775807, not -3'],
      // Past what the column holds: the database would refuse the lookup itself.
      ['9223372036854775808', 'sequence must be a sequence number from 1 to 9223372036854775807, not 9223372036854775808'],
    ] as const) {
      const refused = await sign(sequence)
      expect(refused.errors?.[0], String(sequence)).toMatchObject({ message, extensions: { code: 'BAD_USER_INPUT', argument: 'sequence' } })
    }
    expect(await listLogCheckpoints(app)).toEqual(before.checkpoints)
    expect((await verifyLog(app)).lastSequence).toBe(before.log.lastSequence)
  })

  it('is signed at intervals: once CUSTOS_AUDIT_CHECKPOINT_ENTRIES entries were added, and is not recorded', async () => {
    // The on-demand checkpoint's own entry is the first of the three.
    await createLogCheckpoint(app)
    const before = await listLogCheckpoints(app)
    await addLogEntries(app, 1)
    await app.app.auditMaintenance.checkpointIfDue()
    expect(await listLogCheckpoints(app)).toEqual(before)

    await addLogEntries(app, 1)
    await app.app.auditMaintenance.checkpointIfDue()
    const [latest] = await listLogCheckpoints(app)
    expect(latest).toMatchObject({ reason: 'INTERVAL', sequence: (await verifyLog(app)).lastSequence })
    expect((await readLog(app, { limit: 1 })).entries[0]).toMatchObject({ type: 'api_key_create', sequence: latest!.sequence })
    expect(verifies(latest!.payload, latest!.signature)).toBe(true)
  })

  // custos_app may insert checkpoints. One past the head, unsigned, made interval checkpoints never due again, silently.
  it('is still due at intervals with an unsigned checkpoint past the head, and refused with an error logged', async () => {
    await createLogCheckpoint(app)
    const before = await listLogCheckpoints(app)
    const { lastSequence } = await verifyLog(app)
    await forgeCheckpoint(lastSequence + 1000)
    try {
      await addLogEntries(app, 2)
      const logged = app.logOutput().length
      await app.app.auditMaintenance.checkpointIfDue()
      expect(app.logOutput().slice(logged)).toMatch(/"code":"CHAIN_BROKEN".*audit log checkpoint refused/)
    } finally {
      await removeForgedCheckpoints()
    }
    expect(await listLogCheckpoints(app)).toEqual(before)
  })
})

describe('verifyAuthLog with checkpoints', () => {
  it('checks every checkpoint it passes', async () => {
    const checkpoints = await listLogCheckpoints(app)
    expect(await verifyLog(app)).toMatchObject({ ok: true, checkpointsChecked: checkpoints.length })
  })

  it('verifies a range from the nearest checkpoint before it', async () => {
    const checkpoint = await createLogCheckpoint(app)
    await addLogEntries(app, 4)
    const result = await verifyLog(app, { from: checkpoint.sequence + 2, to: checkpoint.sequence + 3 })
    expect(result).toMatchObject({ ok: true, entriesChecked: 3, lastSequence: checkpoint.sequence + 3 })
    expect(result.anchor).toEqual({ sequence: checkpoint.sequence, hash: checkpoint.hash, checkpointId: checkpoint.id })
  })

  it('reports a checkpoint whose signature does not verify', async () => {
    const [latest] = await listLogCheckpoints(app)
    await db.session((session) =>
      session.query(
        "INSERT INTO person_auth_log_checkpoint (id, sequence, hash, created_at, signature, reason) SELECT gen_random_uuid(), sequence, hash, now(), sha512('forged'::bytea), 'on_demand' FROM person_auth_log_checkpoint WHERE id = $1",
        [latest!.id],
      ),
    )
    const result = await verifyLog(app)
    expect(result.firstBroken).toMatchObject({ reason: 'CHECKPOINT_SIGNATURE_INVALID', sequence: latest!.sequence })
    // Put back: the forged checkpoint is removed (superuser, triggers off).
    await tamper(db, "DELETE FROM person_auth_log_checkpoint WHERE signature = sha512('forged'::bytea)")
    expect((await verifyLog(app)).ok).toBe(true)
  })

  // custos_app may insert checkpoints: one far ahead must not sit there unreported.
  it('reports a checkpoint past the chain head whose signature does not verify', async () => {
    const { lastSequence } = await verifyLog(app)
    await forgeCheckpoint(lastSequence + 1000)
    try {
      expect(await verifyLog(app)).toMatchObject({ ok: false, firstBroken: { reason: 'CHECKPOINT_SIGNATURE_INVALID', sequence: lastSequence + 1000, entryId: null } })
    } finally {
      await removeForgedCheckpoints()
    }
    expect((await verifyLog(app)).ok).toBe(true)
  })
})

describe('verifyRange: an exported range, its checkpoints and the public key', () => {
  /** Entries between two fresh checkpoints, as an export holds them. */
  async function exportedRange() {
    const start = await createLogCheckpoint(app)
    await addLogEntries(app, 3)
    const end = await createLogCheckpoint(app)
    const range = (await exportLog(app)).filter((entry) => entry.sequence > start.sequence && entry.sequence <= end.sequence)
    return { start, end, range, checkpoints: await listLogCheckpoints(app) }
  }

  it('proves a range from one checkpoint to the next', async () => {
    const { range, checkpoints } = await exportedRange()

    const result = await verifyRange(range, checkpoints, publishedKey)

    // The three added and, first, the start checkpoint's own auth_log_checkpoint entry.
    expect(range.map((entry) => entry.type)).toEqual(['auth_log_checkpoint', 'api_key_create', 'api_key_create', 'api_key_create'])
    expect(result).toMatchObject({ ok: true, entriesChecked: 4, checkpointsChecked: 1, firstBroken: null })
  })

  it('proves a range holding a network address, written as PostgreSQL prints it', async () => {
    const start = await createLogCheckpoint(app)
    // The server writes host addresses only; anyone inserting by SQL may write a network.
    await db.session((session) =>
      session.query("INSERT INTO person_auth_log (id, type, success, client_ip) VALUES (gen_random_uuid(), 'login', false, '10.20.0.0/16')"),
    )
    const end = await createLogCheckpoint(app)
    const range = (await exportLog(app)).filter((entry) => entry.sequence > start.sequence && entry.sequence <= end.sequence)

    expect(range.find((entry) => entry.type === 'login')?.clientIp).toBe('10.20.0.0/16')
    expect(await verifyRange(range, await listLogCheckpoints(app), publishedKey)).toMatchObject({ ok: true, entriesChecked: 2 })
  })

  it('finds a changed entry in the export', async () => {
    const { range, checkpoints } = await exportedRange()
    const victim = range[1]!
    const changed = range.map((entry) => (entry === victim ? { ...entry, userAgent: 'someone else' } : entry))

    const result = await verifyRange(changed, checkpoints, publishedKey)

    expect(result).toMatchObject({ ok: false, entriesChecked: 1 })
    expect(result.firstBroken).toMatchObject({ reason: 'CONTENT_CHANGED', sequence: BigInt(victim.sequence), entryId: victim.id })
  })

  it('finds an export changed and re-hashed by the signed checkpoint at its end', async () => {
    const { start, end, range, checkpoints } = await exportedRange()
    let previous: Buffer = Buffer.from(start.hash, 'hex')
    const rehashed = range.map((entry) => {
      const forged = { ...entry, sequence: BigInt(entry.sequence), eventData: { ...entry.eventData, description: 'forged' } }
      previous = chainHash(previous, forged)
      return { ...entry, eventData: forged.eventData, hash: previous.toString('hex') }
    })

    const result = await verifyRange(rehashed, checkpoints, publishedKey)

    expect(result.firstBroken).toMatchObject({ reason: 'CHECKPOINT_MISMATCH', sequence: BigInt(end.sequence) })
  })

  it('rejects a changed checkpoint by its signature', async () => {
    const { end, range, checkpoints } = await exportedRange()
    const forged = checkpoints.map((checkpoint) => (checkpoint.id === end.id ? { ...checkpoint, hash: range[0]!.hash } : checkpoint))

    const result = await verifyRange(range, forged, publishedKey)

    expect(result.firstBroken).toMatchObject({ reason: 'CHECKPOINT_SIGNATURE_INVALID', sequence: BigInt(end.sequence) })
  })

  it('does not call a range proven that starts or ends away from a checkpoint', async () => {
    const { range, checkpoints } = await exportedRange()

    const lateStart = await verifyRange(range.slice(1), checkpoints, publishedKey)
    const earlyEnd = await verifyRange(range.slice(0, -1), checkpoints, publishedKey)

    expect(lateStart).toMatchObject({ ok: false, firstBroken: { reason: 'NOT_ANCHORED', sequence: BigInt(range[1]!.sequence) } })
    expect(earlyEnd).toMatchObject({ ok: false, firstBroken: { reason: 'NOT_ANCHORED', sequence: BigInt(range.at(-2)!.sequence) } })
  })
})

describe('access and input', () => {
  it('refuses callers without system:viewAuthLog', async () => {
    const person = await signedInPerson(app)
    for (const operation of ['{ verifyAuthLog { ok } }', '{ authLogCheckpoints { id } }', 'mutation { createAuthLogCheckpoint { ok } }']) {
      const response = await app.gql(operation, { token: person.token })
      expect(response.errors?.[0]).toMatchObject({ message: 'You are not allowed to view the audit log.', extensions: { code: 'FORBIDDEN' } })
    }
  })

  it.each([
    ['a sequence below 1', '{ verifyAuthLog(from: 0) { ok } }', 'from'],
    ['to before from', '{ verifyAuthLog(from: 5, to: 4) { ok } }', 'to'],
    ['a limit below 1', '{ authLogCheckpoints(limit: 0) { id } }', 'limit'],
    ['a negative offset', '{ authLogCheckpoints(offset: -1) { id } }', 'offset'],
  ])('answers %s with BAD_USER_INPUT', async (_case, operation, argument) => {
    const response = await app.gql(operation, { token: app.rootToken })
    expect(response.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument })
  })

  it.each(['abc', 1.5, '1e3', true, {}])('answers a BigInt variable %j that is not a whole number with BAD_USER_INPUT', async (from) => {
    const mark = await logSize(app)
    const response = await app.gql('query ($from: BigInt) { verifyAuthLog(from: $from) { ok } }', { variables: { from }, token: app.rootToken })
    expect(response.errors).toHaveLength(1)
    expect(response.errors![0]).toMatchObject({ message: expect.stringContaining('$from'), extensions: { code: 'BAD_USER_INPUT' } })
    expect(await logSize(app)).toBe(mark)
  })
})
