import { createPublicKey, generateKeyPairSync } from 'node:crypto'
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCheckpoint } from '../../src/audit/checkpoints.js'
import { type AuditActor, type AuditEntry, recordAuditEntry } from '../../src/audit/recorder.js'
import { auditSigner } from '../../src/crypto/signingKey.js'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { type CliDatabase, cliDatabase, custos } from '../testkit/cli.js'
import { onPostgres } from '../testkit/database.js'
import { addLogEntries, createLogCheckpoint, listLogCheckpoints } from '../testkit/fixtures.js'

/**
 * `custos export --checkpoints` and `custos verify --file`: an export proven with its checkpoints and
 * the public key alone, by a verifier with no database.
 */

const CLI_TIMEOUT = { timeout: 180_000 }
const privateKey = generateKeyPairSync('ed25519').privateKey
const publicPem = createPublicKey(privateKey).export({ format: 'pem', type: 'spki' }).toString()
const privatePem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
const otherPublicPem = generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString()

let scratch: string
const file = (name: string) => join(scratch, name)

/** Where the verifier is told to look for a database: it must not, so the directory never appears. */
const noDatabase = () => ({ CUSTOS_DATA_DIR: file('no-data-dir') })

/** `custos verify --file` with `files` (export, checkpoints, public key: names in scratch) and nothing else. */
function verifyFile(files: { export: string; checkpoints?: string; key?: string }, args: string[] = [], environment: Record<string, string> = {}) {
  return custos(
    ['verify', '--file', file(files.export), '--checkpoints', file(files.checkpoints ?? 'checkpoints.json'), '--public-key', file(files.key ?? 'key.pem'), ...args],
    { ...noDatabase(), ...environment },
  )
}

/** A copy of `name` changed by `change`, named `as`. */
async function altered(name: string, as: string, change: (text: string) => string): Promise<string> {
  const text = await readFile(file(name), 'utf8')
  const changed = change(text)
  expect(changed).not.toBe(text)
  await writeFile(file(as), changed)
  return as
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'custos-verify-export-'))
  await writeFile(file('key.pem'), publicPem)
  await writeFile(file('other-key.pem'), otherPublicPem)
})

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true })
})

describe('an export of the database, proven without it', CLI_TIMEOUT, () => {
  let database: CliDatabase
  let firstId: string

  beforeAll(async () => {
    database = await cliDatabase(file('data'))
    await database.withDatabase(async (db) => {
      const signer = auditSigner(privateKey)
      const client = { ip: '192.0.2.7', userAgent: 'agent, "quoted"\r\nline two' }
      const record = (entry: AuditEntry, actor: AuditActor = { identityId: null, personId: null, client }) =>
        db.prisma.$transaction((tx) => recordAuditEntry(tx, actor, entry))
      await record({ type: 'login', success: false, errorCode: 'INVALID_PASSWORD', personInputIdentifier: 'ann@example.test' })
      // An empty text and NULL are hashed differently: the CSV must keep them apart.
      await record({ type: 'login', success: false, errorCode: 'INVALID_PASSWORD', personInputIdentifier: '' }, { identityId: null, personId: null, client: { ip: null, userAgent: '' } })
      expect(await createCheckpoint(db, signer, { reason: 'interval' })).toMatchObject({ ok: true, result: { sequence: 2n } })
      // jsonb keeps 1.0 and every digit past 2^53; JSON.parse would not, and the chain hashes the digits.
      await db.session((session) =>
        session.query(`INSERT INTO person_auth_log (id, type, success, person_input_identifier, metadata)
                       VALUES (gen_random_uuid(), 'login', true, 'bob@example.test', '{"ratio": 1.0, "big": 12345678901234567890123, "small": 1.5e-7}')`),
      )
      await record({ type: 'login', success: true, personInputIdentifier: 'eve@example.test' })
      expect(await createCheckpoint(db, signer, { reason: 'interval' })).toMatchObject({ ok: true, result: { sequence: 4n } })
      const [first] = await db.session((session) => session.query<{ id: string }>('SELECT id FROM person_auth_log WHERE sequence = 1'))
      firstId = first!.id
    })
    // Each export holds its own entry (5, then 7) past the last checkpoint (4), and has it signed
    // (that checkpoint's auth_log_checkpoint entry is 6, then 8).
    for (const [format, written] of [['jsonl', 3], ['csv', 4]] as const) {
      const exported = await custos(['export', '--format', format, '--out', file(`export.${format}`), '--checkpoints', file('checkpoints.json'), '--no-progress'], {
        ...database.environment,
        CUSTOS_SIGNING_KEY: privatePem,
      })
      expect(exported.stderr).toMatch(new RegExp(`Wrote ${written} signed checkpoints to .*checkpoints\\.json\\n$`))
      expect(exported.code).toBe(0)
    }
  })

  afterAll(async () => {
    await database?.drop()
  })

  it('writes the checkpoints as authLogCheckpoints returns them, the newest exported entry signed for the export', async () => {
    const checkpoints = JSON.parse(await readFile(file('checkpoints.json'), 'utf8'))
    expect(checkpoints).toEqual(
      [[7, 'ON_DEMAND'], [5, 'ON_DEMAND'], [4, 'INTERVAL'], [2, 'INTERVAL']].map(([sequence, reason]) =>
        expect.objectContaining({ sequence, reason, payload: expect.stringMatching(`^custos-audit/v1\n${sequence}\n`) }),
      ),
    )
  })

  it('proves the whole export, its own entry included', async () => {
    const whole = await verifyFile({ export: 'export.jsonl' })
    expect(whole.stdout).toBe(`Export ${file('export.jsonl')} verified: ok\n  entries checked:     5 (from the beginning through 5)\n  checkpoints checked: 3\n`)
    expect(whole.code).toBe(0)
    await expect(access(file('no-data-dir'))).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('proves an export through its last checkpoint, and not the entries past it', async () => {
    const older = await altered('checkpoints.json', 'older-checkpoints.json', (text) =>
      JSON.stringify(JSON.parse(text).filter((checkpoint: { sequence: number }) => checkpoint.sequence <= 4)),
    )
    const whole = await verifyFile({ export: 'export.jsonl', checkpoints: older })
    expect(whole.stdout).toContain('verification FAILED')
    expect(whole.stdout).toMatch(/first broken entry: {2}sequence 5 \(id [0-9a-f-]{36}\): NOT_ANCHORED/)
    expect(whole.stdout).toContain('the entries through 4, the last signed checkpoint in it, are proven')
    expect(whole.code).toBe(1)

    const proven = await verifyFile({ export: 'export.jsonl', checkpoints: older }, ['--to', '4'])
    expect(proven.stdout).toBe(
      `Export ${file('export.jsonl')} verified: ok\n  entries checked:     4 (from the beginning through 4)\n  checkpoints checked: 2\n`,
    )
    expect(proven.code).toBe(0)
  })

  it('keeps every digit of the JSON as exported: 1.0 and numbers past 2^53 hash as stored', async () => {
    const text = await readFile(file('export.jsonl'), 'utf8')
    expect(text).toContain('"ratio": 1.0')
    expect(text).toContain('12345678901234567890123')
    const result = await verifyFile({ export: 'export.jsonl' }, ['--from', '3', '--to', '4', '--json'])
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: true, entriesChecked: 2, anchor: { sequence: '2' }, lastSequence: '4' })
  })

  it('proves a range from one checkpoint to the next (--from starts at the checkpoint before it)', async () => {
    const result = await verifyFile({ export: 'export.jsonl' }, ['--from', '4', '--to', '4'])
    expect(result.stdout).toMatch(/verified: ok\n {2}entries checked: +2 \(from the signed checkpoint at 2 through 4\)\n {2}checkpoints checked: 1\n$/)
    expect(result.code).toBe(0)
  })

  // verifyAuthLog's rules, with the file's first and last entries for the chain's.
  it('refuses a range that names entries the file does not hold, with exit status 2', async () => {
    const late = await altered('export.jsonl', 'late.jsonl', (text) => text.replace(/^.*"(ann@example\.test|)".*\n/gm, ''))
    const cases: [string, string[], string][] = [
      ['export.jsonl', ['--from', '4', '--to', '3'], '--to must not be less than --from'],
      // The JSONL export holds entries 1 to 5, itself the last.
      ['export.jsonl', ['--from', '9999'], '--from is past the last entry, 5'],
      ['export.jsonl', ['--to', '6'], '--to is past the last entry, 5'],
      [late, ['--from', '1', '--to', '4'], '--from is before the first entry, 3'],
      [late, ['--to', '2'], '--to is before the first entry, 3'],
    ]
    for (const [name, range, message] of cases) {
      const result = await verifyFile({ export: name }, range)
      expect(result, `${name} ${range.join(' ')}`).toEqual({ code: 2, stdout: '', stderr: `${message}\n` })
    }
    const fromCheckpoint = await verifyFile({ export: late }, ['--from', '3', '--to', '4'])
    expect(fromCheckpoint.stdout).toMatch(/verified: ok\n {2}entries checked: +2 \(from the signed checkpoint at 2 through 4\)/)
    expect(fromCheckpoint.code).toBe(0)
  })

  it('reports the entries a range names in a gap of the file as missing, not verified', async () => {
    const gap = await altered('export.jsonl', 'gap.jsonl', (text) => text.replace(/^.*"bob@example\.test".*\n/m, ''))
    const result = await verifyFile({ export: gap }, ['--from', '3', '--to', '3', '--json'])
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: false, entriesChecked: 0, anchor: { sequence: '2' }, firstBroken: { reason: 'ENTRY_MISSING', sequence: '3' } })
    expect(result.code).toBe(1)
  })

  it('reads the CSV export the same way: quoted line breaks, and an empty text apart from NULL', async () => {
    expect(await readFile(file('export.csv'), 'utf8')).toContain(',"",INVALID_PASSWORD,,"",')
    const result = await verifyFile({ export: 'export.csv' }, ['--to', '4', '--json'])
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: true, entriesChecked: 4, checkpointsChecked: 2 })
    expect(result.code).toBe(0)
  })

  it('takes the checkpoints as the whole GraphQL response too', async () => {
    const checkpoints = JSON.parse(await readFile(file('checkpoints.json'), 'utf8'))
    await writeFile(file('response.json'), JSON.stringify({ data: { authLogCheckpoints: checkpoints } }))
    expect((await verifyFile({ export: 'export.jsonl', checkpoints: 'response.json' }, ['--to', '4'])).code).toBe(0)
  })

  it('names an entry whose text was changed by one character', async () => {
    for (const format of ['jsonl', 'csv']) {
      const changed = await altered(`export.${format}`, `changed.${format}`, (text) => text.replace('ann@example.test', 'ann@example.tesT'))
      const result = await verifyFile({ export: changed }, ['--to', '4'])
      expect(result.stdout, format).toContain(`first broken entry:  sequence 1 (id ${firstId}): CONTENT_CHANGED`)
      expect(result.code, format).toBe(1)
    }
  })

  it('names a missing entry when a line was dropped', async () => {
    const dropped = await altered('export.jsonl', 'dropped.jsonl', (text) => text.replace(/^.*"bob@example\.test".*\n/m, ''))
    const result = await verifyFile({ export: dropped }, ['--to', '4'])
    expect(result.stdout).toContain('first broken entry:  sequence 3: ENTRY_MISSING')
    expect(result.code).toBe(1)
  })

  const forgeries: [string, (checkpoint: { hash: string; signature: string }) => object][] = [
    ['hash', (checkpoint) => ({ ...checkpoint, hash: checkpoint.hash.replace(/^./, (digit) => (digit === '0' ? '1' : '0')) })],
    ['signature', (checkpoint) => ({ ...checkpoint, signature: Buffer.alloc(64, 7).toString('base64') })],
  ]
  it.each(forgeries)('refuses a checkpoint whose %s was changed', async (_field, forge) => {
    const forged = await altered('checkpoints.json', 'forged.json', (text) =>
      JSON.stringify(JSON.parse(text).map((checkpoint: { sequence: number; hash: string; signature: string }) => (checkpoint.sequence === 4 ? forge(checkpoint) : checkpoint))),
    )
    const result = await verifyFile({ export: 'export.jsonl', checkpoints: forged }, ['--to', '4'])
    expect(result.stdout).toContain('first broken entry:  sequence 4: CHECKPOINT_SIGNATURE_INVALID')
    expect(result.code).toBe(1)
  })

  it('refuses the checkpoints with another public key, and accepts retired keys beside it', async () => {
    const wrong = await verifyFile({ export: 'export.jsonl', key: 'other-key.pem' }, ['--to', '4'])
    expect(wrong.stdout).toContain('first broken entry:  sequence 2: CHECKPOINT_SIGNATURE_INVALID')
    expect(wrong.code).toBe(1)

    await writeFile(file('both-keys.pem'), `${otherPublicPem}${publicPem}`)
    expect((await verifyFile({ export: 'export.jsonl', key: 'both-keys.pem' }, ['--to', '4'])).code).toBe(0)
    expect((await verifyFile({ export: 'export.jsonl', key: 'other-key.pem' }, ['--to', '4'], { CUSTOS_SIGNING_KEY_RETIRED: publicPem })).code).toBe(0)
  })

  it('never reaches for a database, even with DATABASE_URL set', async () => {
    const result = await verifyFile({ export: 'export.jsonl' }, ['--to', '4'], { DATABASE_URL: 'postgresql://nobody@127.0.0.1:9/nothing' })
    expect(result).toMatchObject({ code: 0, stderr: '' })
  })

  it('stops with exit status 2 on input it cannot use, naming the file and line', async () => {
    const malformed = await altered('export.jsonl', 'malformed.jsonl', (text) => text.replace(/\n(.)/, '\n{$1'))
    // The last record, entry 1, starts on line 9: header, entries 7, 6 and 5, 4 (its user agent holds a line break), 3, 2.
    const noHash = await altered('export.csv', 'no-hash.csv', (text) => text.replace(/,[0-9a-f]{64}\r\n$/, ',\r\n'))
    await writeFile(file('not-json.json'), 'checkpoints')
    await writeFile(file('empty.jsonl'), '')
    await writeFile(file('header-only.csv'), (await readFile(file('export.csv'), 'utf8')).split('\r\n')[0] + '\r\n')
    const cases: [Parameters<typeof verifyFile>[0], string][] = [
      [{ export: 'absent.jsonl' }, `--file ${file('absent.jsonl')}: no such file`],
      [{ export: 'empty.jsonl' }, `--file ${file('empty.jsonl')}: holds no entries`],
      [{ export: 'header-only.csv' }, `--file ${file('header-only.csv')}: holds no entries`],
      [{ export: malformed }, `--file ${file(malformed)}: line 2: not JSON`],
      [{ export: noHash }, `--file ${file(noHash)}: line 9: hash is missing`],
      [{ export: 'export.jsonl', checkpoints: 'not-json.json' }, `--checkpoints ${file('not-json.json')}: not JSON`],
      [{ export: 'export.jsonl', key: 'export.jsonl' }, `--public-key ${file('export.jsonl')}: must be Ed25519 public keys`],
    ]
    for (const [files, message] of cases) {
      const result = await verifyFile(files)
      expect(result.stderr, message).toContain(message)
      expect(result.code, message).toBe(2)
    }
    const withoutCheckpoints = await custos(['verify', '--file', file('export.jsonl'), '--public-key', file('key.pem')], noDatabase())
    expect(withoutCheckpoints).toMatchObject({ code: 2, stderr: expect.stringContaining('--file needs --checkpoints FILE') })
  })

  // Last: it adds an entry to the log the files above were exported from.
  it.runIf(onPostgres)('still writes the checkpoints, with a warning, when no signing key is set beside DATABASE_URL', async () => {
    const exported = await custos(['export', '--format', 'jsonl', '--out', file('unsigned.jsonl'), '--checkpoints', file('unsigned-checkpoints.json'), '--no-progress'], database.environment)
    expect(exported.stderr).toMatch(/Warning: no checkpoint signed at 9: CUSTOS_SIGNING_KEY is not set; the checkpoints prove the export up to the newest one in it/)
    expect(exported.stderr).toMatch(/Wrote 4 signed checkpoints to/)
    expect(exported.code).toBe(0)
  })
})

describe('an export through a server (--url, --token)', CLI_TIMEOUT, () => {
  let app: TestApp
  let checkpointSequence: number

  beforeAll(async () => {
    app = await startTestApp()
    await addLogEntries(app, 2)
    // Signed at the head; its own auth_log_checkpoint entry and the export's follow.
    checkpointSequence = (await createLogCheckpoint(app)).sequence
    await writeFile(file('server-key.pem'), await (await fetch(`${app.url}/.well-known/custos-audit-key`)).text())
  })

  afterAll(async () => {
    await app?.stop()
  })

  it('has the newest exported entry signed, and writes the checkpoints that prove the whole export', async () => {
    const server = ['--url', app.url, '--token', app.rootToken]
    const exported = await custos(['export', '--format', 'csv', '--out', file('server.csv'), '--checkpoints', file('server-checkpoints.json'), ...server])
    expect(exported.stderr).toMatch(/Wrote 2 signed checkpoints to/)
    expect(exported.code).toBe(0)
    // The export's own entry follows the checkpoint's auth_log_checkpoint entry, and is the one signed.
    const exportSequence = checkpointSequence + 2
    const checkpoints = JSON.parse(await readFile(file('server-checkpoints.json'), 'utf8'))
    expect(checkpoints.map((checkpoint: { sequence: number }) => checkpoint.sequence)).toEqual([exportSequence, checkpointSequence])

    const files = { export: 'server.csv', checkpoints: 'server-checkpoints.json', key: 'server-key.pem' }
    const whole = await verifyFile(files, ['--json'])
    expect(JSON.parse(whole.stdout)).toMatchObject({ ok: true, entriesChecked: exportSequence, checkpointsChecked: 2 })
    expect(whole.code).toBe(0)
  })

  it('signs nothing more when a checkpoint is already at the newest exported entry', async () => {
    // The entries addLogEntries made end at the checkpoint taken in beforeAll.
    const before = await listLogCheckpoints(app)
    const exported = await custos(['export', '--format', 'jsonl', '--type', 'api_key_create', '--out', file('keys.jsonl'),
      '--checkpoints', file('keys-checkpoints.json'), '--url', app.url, '--token', app.rootToken])
    expect(exported.code).toBe(0)
    expect(JSON.parse((await readFile(file('keys.jsonl'), 'utf8')).split('\n')[0]!)).toMatchObject({ type: 'api_key_create', sequence: checkpointSequence })
    expect(await listLogCheckpoints(app)).toEqual(before)
  })
})
