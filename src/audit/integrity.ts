import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { type AuditPublicKeys, publicKeyObjects } from '../crypto/signingKey.js'
import type { Database, SqlSession } from '../db/database.js'
import { InvalidInputError } from '../tenant/invalidInput.js'
import { type ChainEntry, GENESIS_HASH, JsonText, MAX_SEQUENCE, chainHash } from './canonical.js'
import { type SignedCheckpoint, checkpointSignatureValid, retentionSignatureValid } from './checkpointFormat.js'
import { checkSliceByCopy } from './sliceCopy.js'

/**
 * Recomputes the hash chain of person_auth_log and reports the first place it
 * breaks. Used by verifyAuthLog (GraphQL), `custos verify`, checkpoint signing
 * and retention; verifyRange does the same for an exported range.
 */

export type BreakReason =
  /** The entry does not hash to its stored value: its content (or its predecessor's hash) changed. */
  | 'CONTENT_CHANGED'
  /** No entry holds this sequence number. */
  | 'ENTRY_MISSING'
  /** An entry claims a sequence another entry holds, or one beyond the chain head. */
  | 'ENTRY_INSERTED'
  /** The entry that belongs here was found at another sequence number. */
  | 'ORDER_CHANGED'
  /** The chain is self-consistent but disagrees with a signed checkpoint: it was rewritten and re-hashed. */
  | 'CHECKPOINT_MISMATCH'
  /** A stored checkpoint's signature verifies with neither the audit key nor a retired one. */
  | 'CHECKPOINT_SIGNATURE_INVALID'
  /** (verifyRange) Part of the range is not covered by a signed checkpoint, so it cannot be proven. */
  | 'NOT_ANCHORED'

export interface BrokenEntry {
  readonly sequence: bigint
  /** The entry at fault, when one exists (none for a missing entry). */
  readonly entryId: string | null
  readonly reason: BreakReason
  readonly message: string
}

/** Where recomputation starts: the chain's beginning (sequence 0, zero hash) or a signed checkpoint. */
export interface ChainAnchor {
  readonly sequence: bigint
  readonly hash: Buffer
  readonly checkpointId: string | null
}

export interface VerificationResult {
  readonly ok: boolean
  readonly entriesChecked: number
  readonly checkpointsChecked: number
  readonly anchor: ChainAnchor
  /** The last entry whose hash was reproduced (the anchor when none was). */
  readonly lastSequence: bigint
  readonly lastHash: Buffer
  readonly firstBroken: BrokenEntry | null
}

export interface StoredEntry extends ChainEntry {
  readonly hash: Uint8Array
}

interface CheckedCheckpoint extends SignedCheckpoint {
  readonly valid: boolean
}

/** How far past a mismatch to look for the entry that belongs there (ORDER_CHANGED). */
const ORDER_LOOKAHEAD = 1000
const BATCH_SIZE = 5000
const GENESIS: ChainAnchor = { sequence: 0n, hash: GENESIS_HASH, checkpointId: null }

/** Entries in (sequence, id) order with a look-ahead window. */
interface EntrySource {
  /** The entry `offset` places past the next unconsumed one, reading on if needed; undefined past the end. */
  at(offset: number): Promise<StoredEntry | undefined>
  /** The same when it is read already, else undefined: the walk awaits only at batch boundaries. */
  peek(offset: number): StoredEntry | undefined
  advance(count: number): void
}

interface WalkOutcome {
  entriesChecked: number
  checkpointsChecked: number
  lastSequence: bigint
  lastHash: Buffer
  firstBroken: BrokenEntry | null
}

const toBuffer = (bytes: Uint8Array) => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))

const broken = (reason: BreakReason, sequence: bigint, entryId: string | null, message: string): BrokenEntry => ({
  reason,
  sequence,
  entryId,
  message,
})

/**
 * Recomputes entries from the anchor onward, comparing each with its stored
 * hash and every checkpoint it reaches, until the source ends or a break.
 */
async function walkChain(
  source: EntrySource,
  anchor: ChainAnchor,
  checkpoints: readonly CheckedCheckpoint[],
  tailHash?: Buffer,
): Promise<WalkOutcome> {
  const outcome: WalkOutcome = {
    entriesChecked: 0,
    checkpointsChecked: 0,
    lastSequence: anchor.sequence,
    lastHash: anchor.hash,
    firstBroken: null,
  }
  const pending = checkpoints.filter((checkpoint) => checkpoint.sequence > anchor.sequence)
  let checkpointIndex = 0
  for (;;) {
    const entry = source.peek(0) ?? (await source.at(0))
    if (!entry) return outcome
    const expected = outcome.lastSequence + 1n
    const previous = outcome.lastHash
    if (entry.sequence < expected) {
      outcome.firstBroken = broken('ENTRY_INSERTED', entry.sequence, entry.id, `Entry ${entry.id} claims sequence ${entry.sequence}, which an earlier entry already holds.`)
      return outcome
    }
    if (entry.sequence > expected) {
      outcome.firstBroken = broken('ENTRY_MISSING', expected, null, `Entry ${expected} is missing: the next entry present is ${entry.sequence}.`)
      return outcome
    }
    const following = source.peek(1) ?? (await source.at(1))
    const forged = following?.sequence === entry.sequence ? await duplicateClaim(source, previous, tailHash) : undefined
    if (forged) {
      outcome.firstBroken = broken('ENTRY_INSERTED', forged.sequence, forged.id, `Entry ${forged.id} claims sequence ${forged.sequence}, which another entry holds.`)
      return outcome
    }
    const hash = chainHash(previous, entry)
    if (!hash.equals(entry.hash)) {
      const belongsHere = await findMovedEntry(source, previous, expected, toBuffer(entry.hash))
      outcome.firstBroken = belongsHere
        ? broken('ORDER_CHANGED', expected, entry.id, `Entry ${expected} (${entry.id}) is out of place: the entry that belongs at ${expected} is at sequence ${belongsHere.sequence} (${belongsHere.id}).`)
        : broken('CONTENT_CHANGED', expected, entry.id, `Entry ${expected} (${entry.id}) does not hash to its stored value: its content or its predecessor's hash was changed.`)
      return outcome
    }
    source.advance(1)
    outcome.entriesChecked++
    outcome.lastSequence = expected
    outcome.lastHash = hash
    while (checkpointIndex < pending.length && pending[checkpointIndex]!.sequence === expected) {
      const checkpoint = pending[checkpointIndex++]!
      outcome.checkpointsChecked++
      outcome.firstBroken = checkpointBreak(checkpoint, hash)
      if (outcome.firstBroken) return outcome
    }
  }
}

const checkpointAt = (checkpoint: CheckedCheckpoint) => `${checkpoint.sequence} (${checkpoint.createdAt.toISOString()})`

const signatureBreak = (checkpoint: CheckedCheckpoint): BrokenEntry =>
  broken('CHECKPOINT_SIGNATURE_INVALID', checkpoint.sequence, null, `The checkpoint at ${checkpointAt(checkpoint)} does not verify with the audit public key or a retired one.`)

function checkpointBreak(checkpoint: CheckedCheckpoint, recomputed: Buffer): BrokenEntry | null {
  if (!checkpoint.valid) return signatureBreak(checkpoint)
  const at = checkpointAt(checkpoint)
  if (!recomputed.equals(checkpoint.hash)) {
    return broken(
      'CHECKPOINT_MISMATCH',
      checkpoint.sequence,
      null,
      `The checkpoint signed at ${at} records hash ${toBuffer(checkpoint.hash).toString('hex')}, the chain now gives ${recomputed.toString('hex')}: ` +
        'entries up to it were rewritten after it was signed.',
    )
  }
  return null
}

/**
 * When several entries claim the next sequence, the genuine one links to its
 * predecessor and is the one its successor (or the chain head) links to;
 * returns the first other one.
 */
async function duplicateClaim(source: EntrySource, previous: Buffer, tailHash: Buffer | undefined): Promise<StoredEntry | undefined> {
  const first = (await source.at(0))!
  const claims = [first]
  for (let offset = 1; ; offset++) {
    const entry = await source.at(offset)
    if (!entry || entry.sequence !== first.sequence) break
    claims.push(entry)
  }
  const successor = await source.at(claims.length)
  const linking = claims.filter((claim) => chainHash(previous, claim).equals(claim.hash))
  const confirmed = linking.find((claim) =>
    successor?.sequence === first.sequence + 1n
      ? chainHash(toBuffer(claim.hash), successor).equals(successor.hash)
      : tailHash?.equals(claim.hash),
  )
  const genuine = confirmed ?? linking[0]
  return claims.find((claim) => claim !== genuine && (genuine !== undefined || claim !== first))
}

/** An entry later in the window that hashes correctly at `sequence` (its original place). */
async function findMovedEntry(source: EntrySource, previous: Buffer, sequence: bigint, storedHere: Buffer): Promise<StoredEntry | undefined> {
  for (let offset = 1; offset <= ORDER_LOOKAHEAD; offset++) {
    const candidate = await source.at(offset)
    if (!candidate) return undefined
    const hashHere = chainHash(previous, { ...candidate, sequence })
    if (hashHere.equals(storedHere) || hashHere.equals(candidate.hash)) return candidate
  }
  return undefined
}

/**
 * Range entries as the walk takes them, each converted when first reached and forgotten once
 * passed: an export file's entries are read from the file one by one (src/audit/exportFile.ts).
 */
function rangeSource(entries: OrderedRangeEntries, start: number): EntrySource {
  let position = start
  const converted = new Map<number, StoredEntry>()
  const get = (index: number) => {
    if (index >= entries.length) return undefined
    let entry = converted.get(index)
    if (!entry) converted.set(index, (entry = storedEntry(entries.entryAt(index))))
    return entry
  }
  return {
    at: async (offset) => get(position + offset),
    peek: (offset) => get(position + offset),
    advance: (count) => {
      for (let index = position; index < position + count; index++) converted.delete(index)
      position += count
    },
  }
}

// ---------------------------------------------------------------------------
// The database

const ENTRY_COLUMNS = `
  sequence::text AS sequence, id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at,
  type, success, person_id, identity_id, target_person_id, abbrev(client_ip) AS client_ip, user_agent,
  person_input_identifier, error_code, metadata::text AS metadata, event_data::text AS event_data, hash`

/** ENTRY_COLUMNS in order, as queryArrays returns them. */
type EntryRow = [
  sequence: string,
  id: string,
  createdAt: string,
  type: string,
  success: boolean,
  personId: string | null,
  identityId: string | null,
  targetPersonId: string | null,
  clientIp: string | null,
  userAgent: string | null,
  personInputIdentifier: string | null,
  errorCode: string | null,
  metadata: string,
  eventData: string,
  hash: Uint8Array,
]

function entryFromRow(row: EntryRow): StoredEntry {
  return {
    sequence: BigInt(row[0]),
    id: row[1],
    createdAt: row[2],
    type: row[3],
    success: row[4],
    personId: row[5],
    identityId: row[6],
    targetPersonId: row[7],
    clientIp: row[8],
    userAgent: row[9],
    personInputIdentifier: row[10],
    errorCode: row[11],
    metadata: new JsonText(row[12]),
    eventData: new JsonText(row[13]),
    hash: row[14],
  }
}

/**
 * Entries with after < sequence <= last, read in keyset batches: memory stays
 * flat however long the log. The next batch is requested as soon as one
 * arrives, so the server reads it while this process hashes.
 */
function databaseSource(session: SqlSession, after: bigint, last: bigint): EntrySource & { settle(): Promise<void> } {
  let buffer: StoredEntry[] = []
  let position = 0
  let exhausted = false
  // (sequence, id) > (after, greatest uuid) is sequence > after.
  let key: [string, string] = [after.toString(), 'ffffffff-ffff-ffff-ffff-ffffffffffff']
  let next: Promise<unknown[][]> | undefined
  const request = () =>
    session.queryArrays(
      `SELECT ${ENTRY_COLUMNS} FROM person_auth_log log
        WHERE (log.sequence, log.id) > ($1::bigint, $2::uuid) AND log.sequence <= $3::bigint
        ORDER BY log.sequence, log.id LIMIT ${BATCH_SIZE}`,
      [key[0], key[1], last.toString()],
    )
  const receive = async () => {
    const rows = (await (next ?? request())) as EntryRow[]
    next = undefined
    exhausted = rows.length < BATCH_SIZE
    if (rows.length > 0) key = [rows.at(-1)![0], rows.at(-1)![1]]
    if (!exhausted) next = request()
    buffer = buffer.slice(position).concat(rows.map(entryFromRow))
    position = 0
  }
  return {
    async at(offset) {
      while (position + offset >= buffer.length && !exhausted) await receive()
      return buffer[position + offset]
    },
    peek: (offset) => buffer[position + offset],
    advance(count) {
      position += count
    },
    /** Waits for a batch read ahead that the walk, stopped early, will not take: the session goes back idle. */
    async settle() {
      await next?.catch(() => {})
    },
  }
}

/** walkChain over the log in the database. */
async function walkDatabase(session: SqlSession, anchor: ChainAnchor, last: bigint, checkpoints: readonly CheckedCheckpoint[], tailHash?: Buffer) {
  const source = databaseSource(session, anchor.sequence, last)
  try {
    return await walkChain(source, anchor, checkpoints, tailHash)
  } finally {
    await source.settle()
  }
}

type CheckpointRow = { id: string; sequence: string; hash: Uint8Array; created_at: Date; signature: Uint8Array }

async function loadCheckpoints(session: SqlSession, publicKeys: AuditPublicKeys): Promise<CheckedCheckpoint[]> {
  const keys = publicKeyObjects(publicKeys)
  const rows = await session.query<CheckpointRow>(
    `SELECT c.id, c.sequence::text AS sequence, c.hash, c.created_at, c.signature FROM person_auth_log_checkpoint c
      ORDER BY c.sequence, c.created_at, c.id`,
  )
  return rows.map((row) => {
    const checkpoint = { id: row.id, sequence: BigInt(row.sequence), hash: toBuffer(row.hash), createdAt: new Date(row.created_at), signature: toBuffer(row.signature) }
    return { ...checkpoint, valid: checkpointSignatureValid(checkpoint, keys) }
  })
}

const anchorAt = (checkpoint: CheckedCheckpoint): ChainAnchor => ({
  sequence: checkpoint.sequence,
  hash: toBuffer(checkpoint.hash),
  checkpointId: checkpoint.id ?? null,
})

/**
 * Where a verification of the whole log starts: the beginning, or, when
 * retention dropped the oldest entries, the signed checkpoint taken before the
 * drop, which the chain's auth_log_retention entry names in a statement signed
 * by the audit key (anyone who may insert could write the entry itself).
 * Anything else missing at the front is reported.
 */
async function beginning(session: SqlSession, checkpoints: readonly CheckedCheckpoint[], publicKeys: AuditPublicKeys): Promise<ChainAnchor | BrokenEntry> {
  const [first] = await session.query<{ sequence: string | null }>('SELECT min(sequence)::text AS sequence FROM person_auth_log')
  if (!first?.sequence || first.sequence === '1') return GENESIS
  const before = BigInt(first.sequence) - 1n
  const recorded = await session.query<{ partition: string; checkpoint_sequence: string; checkpoint_hash: string; signature: string | null }>(
    `SELECT event_data->>'partition' AS partition, event_data->>'checkpointSequence' AS checkpoint_sequence,
            event_data->>'checkpointHash' AS checkpoint_hash, event_data->>'retentionSignature' AS signature
       FROM person_auth_log WHERE type = 'auth_log_retention' AND event_data ? 'checkpointSequence'`,
  )
  const keys = publicKeyObjects(publicKeys)
  const dropped = recorded
    .filter(
      (row) =>
        /^\d+$/.test(row.checkpoint_sequence) &&
        row.signature !== null &&
        retentionSignatureValid(
          { partition: row.partition ?? '', checkpointSequence: BigInt(row.checkpoint_sequence), checkpointHash: Buffer.from(row.checkpoint_hash ?? '', 'hex') },
          Buffer.from(row.signature, 'base64'),
          keys,
        ),
    )
    .map((row) => ({ sequence: BigInt(row.checkpoint_sequence), hash: Buffer.from(row.checkpoint_hash, 'hex') }))
  const checkpoint = checkpoints.find(
    (candidate) => candidate.valid && candidate.sequence === before && dropped.some((drop) => drop.sequence === before && drop.hash.equals(candidate.hash)),
  )
  if (checkpoint) return anchorAt(checkpoint)
  // The entries after the newest signed drop below `before` are the ones that should still be here.
  const lastDrop = dropped.map((drop) => drop.sequence).filter((sequence) => sequence < before).reduce((a, b) => (a > b ? a : b), 0n)
  return broken(
    'ENTRY_MISSING',
    lastDrop + 1n,
    null,
    `Entries ${lastDrop + 1n} to ${before} are missing, and no signed checkpoint with a signed retention drop accounts for them.`,
  )
}

// ---------------------------------------------------------------------------
// The range asked for

type RangeArgument = 'from' | 'to'

/** `from` or `to` as a caller has it: a GraphQL BigInt, command-line text, a bigint. */
export type SequenceInput = bigint | number | string | null | undefined

export interface RangeRequest {
  /** First sequence to verify; recomputation starts at the nearest signed checkpoint before it. Default: the beginning. */
  readonly from?: SequenceInput
  /** Last sequence to verify. Default: the chain head (the last entry of an exported range). */
  readonly to?: SequenceInput
}

interface VerificationRange {
  readonly from: bigint | undefined
  readonly to: bigint | undefined
}

/**
 * A `from` or `to` that names no entry to verify. Its message names the arguments as GraphQL does;
 * messageNaming words it for a caller that names them otherwise (`--from` on the command line).
 */
export class VerificationRangeError extends InvalidInputError {
  constructor(
    argument: RangeArgument,
    private readonly problem: (name: (argument: RangeArgument) => string) => string,
  ) {
    super(problem((name) => name), argument)
  }

  messageNaming(name: (argument: RangeArgument) => string): string {
    return this.problem(name)
  }
}

function sequenceBound(value: SequenceInput, argument: RangeArgument): bigint | undefined {
  if (value === null || value === undefined) return undefined
  const whole =
    typeof value === 'bigint'
      ? value
      : typeof value === 'number'
        ? Number.isSafeInteger(value) ? BigInt(value) : undefined
        : /^\d+$/.test(value) ? BigInt(value) : undefined
  if (whole === undefined || whole < 1n || whole > MAX_SEQUENCE) {
    throw new VerificationRangeError(argument, (name) => `${name(argument)} must be a sequence number from 1 to ${MAX_SEQUENCE}, not ${value}`)
  }
  return whole
}

/**
 * The rules every verification applies to the range it is asked for, before it reads an entry:
 * `from` and `to` are sequence numbers (1 to bigint's largest) and `to` is not less than `from`.
 */
export function verificationRange(request: RangeRequest): VerificationRange {
  const range = { from: sequenceBound(request.from, 'from'), to: sequenceBound(request.to, 'to') }
  if (range.from !== undefined && range.to !== undefined && range.to < range.from) {
    throw new VerificationRangeError('to', (name) => `${name('to')} must not be less than ${name('from')}`)
  }
  return range
}

/** The entries there are to verify: `first` through `last` (none when last < first). */
interface Extent {
  readonly first: bigint
  readonly last: bigint
  /** Signed retention dropped the entries before `first`: a `from` among them starts at `first`, as a whole verification does. */
  readonly frontDropped: boolean
}

/**
 * The rules against the entries there are: a range that names entries past the last one, or (but
 * for a `from` in front that retention dropped) before the first one, is refused, never reported verified.
 */
function checkRangeWithin(range: VerificationRange, extent: Extent): void {
  const refuse = (argument: RangeArgument, problem: string) => new VerificationRangeError(argument, (name) => `${name(argument)} ${problem}`)
  const pastLast = extent.last < extent.first ? 'names an entry, and there are none' : `is past the last entry, ${extent.last}`
  const beforeFirst = `is before the first entry, ${extent.first}${extent.frontDropped ? ': retention dropped the entries before it' : ''}`
  const { from, to } = range
  if (from !== undefined && from > extent.last) throw refuse('from', pastLast)
  if (to !== undefined && to > extent.last) throw refuse('to', pastLast)
  if (from !== undefined && from < extent.first && !extent.frontDropped) throw refuse('from', beforeFirst)
  if (to !== undefined && to < extent.first) throw refuse('to', beforeFirst)
}

export interface VerifyAuthLogOptions extends RangeRequest {
  /** The audit public key (PEM) that checkpoint signatures must verify with, or several (current and retired): any one suffices. */
  readonly publicKey: AuditPublicKeys
  /** Threads that check slices of the chain at once (PostgreSQL only); default: one per core, 1: the sequential walk alone. */
  readonly threads?: number
  /** Entries per slice; a range of one slice is checked by the calling thread alone. */
  readonly sliceEntries?: number
}

/**
 * Verifies person_auth_log (or a sequence range of it) in the database. A range that breaks the
 * rules of verificationRange or names entries the chain does not hold throws VerificationRangeError.
 */
export async function verifyAuthLog(db: Database, options: VerifyAuthLogOptions): Promise<VerificationResult> {
  const range = verificationRange(options)
  const result = await verifyOnce(db, range, options)
  // Retention may drop the oldest partition while we read it; from its new checkpoint the log is whole again.
  if (result.firstBroken?.reason === 'ENTRY_MISSING' && (await retentionMovedBeginning(db, options, result.anchor))) {
    return verifyOnce(db, range, options)
  }
  return result
}

async function retentionMovedBeginning(db: Database, options: VerifyAuthLogOptions, anchor: ChainAnchor): Promise<boolean> {
  return db.session(async (session) => {
    const start = await beginning(session, await loadCheckpoints(session, options.publicKey), options.publicKey)
    return !('reason' in start) && start.sequence > anchor.sequence
  })
}

async function verifyOnce(db: Database, range: VerificationRange, options: VerifyAuthLogOptions): Promise<VerificationResult> {
  return db.session(async (session) => {
    // Checkpoints first: each names an entry the head had reached when it was signed, so none read now lies past the
    // head read next. The other way round, one signed in between would look like entries cut off the end.
    const checkpoints = await loadCheckpoints(session, options.publicKey)
    const [head] = await session.query<{ sequence: string; hash: Uint8Array }>('SELECT sequence::text AS sequence, hash FROM person_auth_log_head')
    const headSequence = BigInt(head!.sequence)
    const headHash = toBuffer(head!.hash)

    let start: ChainAnchor | BrokenEntry = await beginning(session, checkpoints, options.publicKey)
    // A front missing without a signed drop is no reason to refuse: the verification reports it.
    const retained = 'reason' in start ? 0n : start.sequence
    checkRangeWithin(range, { first: retained + 1n, last: headSequence, frontDropped: retained > 0n })
    const last = range.to ?? headSequence
    const toHead = last === headSequence
    const { from } = range
    if (from !== undefined) {
      const startSequence = 'reason' in start ? -1n : start.sequence
      const nearer = checkpoints.findLast((checkpoint) => checkpoint.valid && checkpoint.sequence < from && checkpoint.sequence >= startSequence)
      if (nearer && ('reason' in start || nearer.sequence > start.sequence)) start = anchorAt(nearer)
    }
    if ('reason' in start) {
      return { ok: false, entriesChecked: 0, checkpointsChecked: 0, anchor: GENESIS, lastSequence: 0n, lastHash: GENESIS_HASH, firstBroken: start }
    }
    const anchor = start
    const walked =
      (await checkedInSlices(db, session, anchor, last, checkpoints, options)) ??
      (await walkDatabase(session, anchor, last, checkpoints, toHead ? headHash : undefined))
    const result = (firstBroken: BrokenEntry | null): VerificationResult => ({ ...walked, ok: firstBroken === null, anchor, firstBroken })
    if (walked.firstBroken) return result(walked.firstBroken)
    if (walked.lastSequence < last) {
      return result(broken('ENTRY_MISSING', walked.lastSequence + 1n, null, `Entries ${walked.lastSequence + 1n} to ${last} are missing.`))
    }
    if (!toHead) return result(null)
    return result(await tailBreak(session, walked, headSequence, headHash, checkpoints))
  })
}

// ---------------------------------------------------------------------------
// The fast path: slices checked in parallel

const SLICE_ENTRIES = 25_000

/**
 * Entries after < sequence <= last. The first slice starts from the anchor's
 * hash; every other one from the stored hash of entry `after`, which the
 * slice before it proves.
 */
export interface Slice {
  readonly after: bigint
  readonly last: bigint
  readonly anchorHash: Uint8Array | null
  /** Sequences whose stored hashes the report must carry (the checkpoints in the slice). */
  readonly checkpointSequences: readonly bigint[]
}

export interface SliceReport {
  /** Every sequence of the slice is held by exactly one entry, which hashes from its predecessor's stored hash. */
  readonly ok: boolean
  readonly lastHash: Uint8Array | null
  readonly hashesAt: ReadonlyArray<readonly [bigint, Uint8Array]>
}

const SLICE_FAILED: SliceReport = { ok: false, lastHash: null, hashesAt: [] }

/** A session that can COPY to the client (PostgreSQL): the fast path reads slices that way; PGlite takes the sequential walk. */
export type CopySession = SqlSession & Required<Pick<SqlSession, 'copyOut'>>

const canCopy = (session: SqlSession): session is CopySession => session.copyOut !== undefined

/** Checks one slice against stored hashes only: no diagnosis, just whether it is whole. */
export async function checkSlice(session: CopySession, slice: Slice): Promise<SliceReport> {
  let previous: Uint8Array
  if (slice.anchorHash) previous = slice.anchorHash
  else {
    const rows = await session.queryArrays('SELECT hash FROM person_auth_log WHERE sequence = $1::bigint LIMIT 2', [slice.after.toString()])
    if (rows.length !== 1) return SLICE_FAILED
    previous = rows[0]![0] as Uint8Array
  }
  return checkSliceByCopy(session.copyOut, slice.after, slice.last, previous, slice.checkpointSequences)
}

/** A thread checking slices on a connection of its own (./verifyWorker.js), one at a time. */
class SliceWorker {
  private readonly worker: Worker
  private readonly failure: Promise<never>
  private idleTimer: NodeJS.Timeout | undefined
  exited = false

  constructor(readonly url: string) {
    this.worker = new Worker(new URL('./verifyWorker.js', import.meta.url), { workerData: { url } })
    this.failure = new Promise((_, reject) => {
      this.worker.once('error', reject)
      this.worker.once('exit', (code) => {
        this.exited = true
        reject(new Error(`the verification thread exited (${code})`))
      })
    })
    this.failure.catch(() => {})
  }

  check(slice: Slice): Promise<SliceReport> {
    const report = new Promise<SliceReport>((resolve) => this.worker.once('message', resolve))
    this.worker.postMessage(slice)
    return Promise.race([report, this.failure])
  }

  /** Idle between verifications: it neither keeps the process alive nor outlives IDLE_THREAD_MS unused. */
  rest(onEnd: () => void) {
    this.worker.unref()
    this.idleTimer = setTimeout(() => {
      onEnd()
      this.worker.postMessage(null)
    }, IDLE_THREAD_MS).unref()
  }

  wake() {
    clearTimeout(this.idleTimer)
    this.worker.ref()
  }
}

/** Starting a thread (TypeScript loader, pg, a connection) costs about a second on two busy cores: threads wait this long for the next verification. */
const IDLE_THREAD_MS = 60_000
const restingWorkers: SliceWorker[] = []

function sliceWorker(url: string): SliceWorker {
  const index = restingWorkers.findIndex((worker) => worker.url === url && !worker.exited)
  const worker = index >= 0 ? restingWorkers.splice(index, 1)[0]! : new SliceWorker(url)
  worker.wake()
  return worker
}

function rest(worker: SliceWorker) {
  if (worker.exited) return
  restingWorkers.push(worker)
  worker.rest(() => restingWorkers.splice(restingWorkers.indexOf(worker), 1))
}

/**
 * The whole chain from the anchor to `last` checked in slices, this thread and
 * worker threads (each reading through its own connection) taking the next
 * slice as they finish one. Every entry is compared with the hash computed from
 * its predecessor's stored hash, so with every slice whole, joined to the next,
 * and every checkpoint equal to the stored hash at its sequence, the chain is
 * exactly what a sequential walk recomputes. Returns that walk's outcome, or
 * null when anything is off: the sequential walk then finds and names the break.
 */
async function checkedInSlices(
  db: Database,
  session: SqlSession,
  anchor: ChainAnchor,
  last: bigint,
  checkpoints: readonly CheckedCheckpoint[],
  options: VerifyAuthLogOptions,
): Promise<WalkOutcome | null> {
  const threads = options.threads ?? availableParallelism()
  const sliceEntries = BigInt(options.sliceEntries ?? SLICE_ENTRIES)
  // Without binary COPY (PGlite) a slice costs what the walk costs: the walk alone.
  if (threads < 2 || !db.url || !canCopy(session) || last <= anchor.sequence) return null
  const reached = checkpoints.filter((checkpoint) => checkpoint.sequence > anchor.sequence && checkpoint.sequence <= last)
  if (reached.some((checkpoint) => !checkpoint.valid)) return null
  const slices: Slice[] = []
  for (let after = anchor.sequence; after < last; after += sliceEntries) {
    const sliceLast = after + sliceEntries < last ? after + sliceEntries : last
    slices.push({
      after,
      last: sliceLast,
      anchorHash: after === anchor.sequence ? anchor.hash : null,
      checkpointSequences: reached.filter((checkpoint) => checkpoint.sequence > after && checkpoint.sequence <= sliceLast).map((checkpoint) => checkpoint.sequence),
    })
  }
  const reports: SliceReport[] = []
  let next = 0
  let failed = false
  const run = async (check: (slice: Slice) => Promise<SliceReport>) => {
    while (!failed && next < slices.length) {
      const index = next++
      const report = await check(slices[index]!).catch(() => SLICE_FAILED)
      reports[index] = report
      if (!report.ok) failed = true
    }
  }
  const workers = Array.from({ length: Math.min(threads, slices.length) - 1 }, () => sliceWorker(db.url!))
  try {
    await Promise.all([run((slice) => checkSlice(session, slice)), ...workers.map((worker) => run((slice) => worker.check(slice)))])
  } finally {
    workers.forEach(rest)
  }
  if (failed) return null
  const stored = new Map(reports.flatMap((report) => report.hashesAt).map(([sequence, hash]) => [sequence, toBuffer(hash)]))
  if (reached.some((checkpoint) => !stored.get(checkpoint.sequence)?.equals(checkpoint.hash))) return null
  return {
    entriesChecked: Number(last - anchor.sequence),
    checkpointsChecked: reached.length,
    lastSequence: last,
    lastHash: toBuffer(reports.at(-1)!.lastHash!),
    firstBroken: null,
  }
}

/** At the head: the last hash must be the head's, and nothing may lie beyond it. */
async function tailBreak(
  session: SqlSession,
  walked: WalkOutcome,
  headSequence: bigint,
  headHash: Buffer,
  checkpoints: readonly CheckedCheckpoint[],
): Promise<BrokenEntry | null> {
  if (headSequence > 0n && !walked.lastHash.equals(headHash)) {
    return broken('CONTENT_CHANGED', headSequence, null, `Entry ${headSequence} does not match the chain head: it was changed and re-hashed.`)
  }
  const beyondCheckpoint = checkpoints.find((checkpoint) => checkpoint.valid && checkpoint.sequence > headSequence)
  if (beyondCheckpoint) {
    return broken('ENTRY_MISSING', headSequence + 1n, null, `A signed checkpoint names entry ${beyondCheckpoint.sequence}, past the chain head ${headSequence}: entries were removed from the end.`)
  }
  const [beyond] = await session.query<{ sequence: string; id: string }>(
    `SELECT log.sequence::text AS sequence, log.id FROM person_auth_log log
      WHERE log.sequence > (SELECT sequence FROM person_auth_log_head) ORDER BY log.sequence, log.id LIMIT 1`,
  )
  if (beyond) {
    return broken('ENTRY_INSERTED', BigInt(beyond.sequence), beyond.id, `Entry ${beyond.id} claims sequence ${beyond.sequence}, past the chain head.`)
  }
  // Past the head, too, a stored checkpoint must be signed: the walk never reaches one there.
  const unsigned = checkpoints.find((checkpoint) => !checkpoint.valid && checkpoint.sequence > headSequence)
  return unsigned ? signatureBreak(unsigned) : null
}

// ---------------------------------------------------------------------------
// An exported range

/** An entry as exported: hash as lowercase hex or bytes; JSON columns as parsed JSON. */
export interface RangeEntry extends Omit<ChainEntry, 'sequence'> {
  readonly sequence: bigint | number | string
  readonly hash: string | Uint8Array
}

/** The entries of an exported range in chain order (sequence, then id), each read when asked for. */
export interface OrderedRangeEntries {
  readonly length: number
  sequenceAt(index: number): bigint
  entryAt(index: number): RangeEntry
  /** Those with a sequence after `after` and, when given, up to `to`. */
  select(after: bigint, to: bigint | undefined): OrderedRangeEntries
}

/** An array of entries, in chain order, as OrderedRangeEntries. */
function rangeEntries(entries: readonly RangeEntry[]): OrderedRangeEntries {
  return {
    length: entries.length,
    sequenceAt: (index) => BigInt(entries[index]!.sequence),
    entryAt: (index) => entries[index]!,
    select: (after, to) =>
      rangeEntries(entries.filter((entry) => BigInt(entry.sequence) > after && (to === undefined || BigInt(entry.sequence) <= to))),
  }
}

const storedEntry = (entry: RangeEntry): StoredEntry => ({ ...entry, sequence: BigInt(entry.sequence), hash: bytes(entry.hash, 'hex') })

/** A checkpoint as authLogCheckpoints returns it: hash hex, signature base64. */
export interface RangeCheckpoint {
  readonly sequence: bigint | number | string
  readonly hash: string | Uint8Array
  readonly createdAt: string | Date
  readonly signature: string | Uint8Array
}

const bytes = (value: string | Uint8Array, encoding: 'hex' | 'base64') => (typeof value === 'string' ? Buffer.from(value, encoding) : toBuffer(value))

/**
 * Proves an exported range untouched with nothing but the checkpoints and the
 * audit public key: the range must start right after a signed checkpoint (or at
 * entry 1) and end on one; every entry in between is recomputed. With `from` or
 * `to`, the part of the entries from the nearest signed checkpoint before `from`
 * through `to`, under the rules verifyAuthLog applies (the entries' first and
 * last stand for the chain's).
 */
export async function verifyRange(
  entries: readonly RangeEntry[] | OrderedRangeEntries,
  checkpoints: readonly RangeCheckpoint[],
  publicKey: AuditPublicKeys,
  request: RangeRequest = {},
): Promise<VerificationResult> {
  const keys = publicKeyObjects(publicKey)
  const given = 'entryAt' in entries ? entries : rangeEntries(entries)
  const checked = checkpoints
    .map((checkpoint) => {
      const signed = {
        sequence: BigInt(checkpoint.sequence),
        hash: bytes(checkpoint.hash, 'hex'),
        createdAt: new Date(checkpoint.createdAt),
        signature: bytes(checkpoint.signature, 'base64'),
      }
      return { ...signed, valid: checkpointSignatureValid(signed, keys) }
    })
    .sort((a, b) => (a.sequence < b.sequence ? -1 : a.sequence > b.sequence ? 1 : 0))
  const range = verificationRange(request)
  const lastGiven = given.length > 0 ? given.sequenceAt(given.length - 1) : 0n
  checkRangeWithin(range, { first: given.length > 0 ? given.sequenceAt(0) : 1n, last: lastGiven, frontDropped: false })
  const { from, to } = range
  const startCheckpoint = from === undefined ? undefined : checked.findLast((checkpoint) => checkpoint.valid && checkpoint.sequence < from)
  const after = startCheckpoint?.sequence ?? 0n
  const stored = given.select(after, to)
  const end = to ?? lastGiven
  if (stored.length === 0) {
    // Only a range can select nothing from entries there are: a gap in the file holds all it names.
    const anchor = startCheckpoint ? anchorAt(startCheckpoint) : GENESIS
    const missing = end > after ? broken('ENTRY_MISSING', after + 1n, null, `Entries ${after + 1n} to ${end} are missing.`) : null
    return { ok: !missing, entriesChecked: 0, checkpointsChecked: 0, anchor, lastSequence: anchor.sequence, lastHash: anchor.hash, firstBroken: missing }
  }
  const first = storedEntry(stored.entryAt(0))
  const lastEntry = storedEntry(stored.entryAt(stored.length - 1))
  const inRange = checked.filter((checkpoint) => checkpoint.sequence >= first.sequence - 1n && checkpoint.sequence <= lastEntry.sequence)
  const anchorCheckpoint = inRange.find((checkpoint) => checkpoint.valid && checkpoint.sequence === first.sequence - 1n)
  const anchored = first.sequence === 1n || anchorCheckpoint !== undefined
  // Unanchored, the first entry's own hash is taken on trust so the rest can still be checked.
  const anchor: ChainAnchor = first.sequence === 1n ? GENESIS : anchorCheckpoint ? anchorAt(anchorCheckpoint) : { sequence: first.sequence, hash: toBuffer(first.hash), checkpointId: null }
  const walked = await walkChain(rangeSource(stored, anchored ? 0 : 1), anchor, inRange)
  const result = (firstBroken: BrokenEntry | null): VerificationResult => ({ ...walked, ok: firstBroken === null, anchor, firstBroken })
  if (walked.firstBroken) return result(walked.firstBroken)
  if (lastEntry.sequence < end) {
    return result(broken('ENTRY_MISSING', lastEntry.sequence + 1n, null, `Entries ${lastEntry.sequence + 1n} to ${end} are missing.`))
  }
  if (!anchored) {
    return result(broken('NOT_ANCHORED', first.sequence, first.id, `No signed checkpoint at ${first.sequence - 1n}: entry ${first.sequence} cannot be proven. Export from the entry after a checkpoint.`))
  }
  const covered = inRange.some((checkpoint) => checkpoint.valid && checkpoint.sequence === lastEntry.sequence)
  if (!covered) {
    // The walk compared every checkpoint it passed: the entries up to the last of them are proven.
    const lastSigned = inRange.findLast((checkpoint) => checkpoint.valid && checkpoint.sequence > anchor.sequence)
    const proven = lastSigned ? `; the entries through ${lastSigned.sequence}, the last signed checkpoint in it, are proven` : ''
    return result(
      broken('NOT_ANCHORED', lastEntry.sequence, lastEntry.id, `No signed checkpoint at ${lastEntry.sequence}: the end of the range cannot be proven${proven}. Verify or export up to a checkpoint.`),
    )
  }
  return result(null)
}
