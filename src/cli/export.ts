import { createReadStream } from 'node:fs'
import { type FileHandle, open, rename, rm, stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { finished } from 'node:stream/promises'
import { type ExportFormat, exportFormats } from '../audit/export.js'
import type { CheckpointJson } from '../audit/checkpoints.js'
import { exportFileEntries } from '../audit/exportFile.js'
import { ConfigError } from '../config.js'
import { type ExportProgress, type LogSource, NoSigningKeyError, openLogSource } from './logSource.js'
import { UsageError, filterFromOptions, filterOptions, filterUsage, parseCommandLine } from './options.js'

export const exportUsage = `Usage: custos export --format jsonl|csv --out FILE [filters]

Writes the matching audit log entries, newest first, to FILE (through FILE.partial, renamed when
complete), with a progress bar on standard error. The export is itself recorded in the log.

  --format jsonl|csv    JSON Lines (GraphQL AuthLogEntry shape) or CSV (RFC 4180; see README)
  --out FILE            where to write
  --checkpoints FILE    also write the signed checkpoints (authLogCheckpoints, JSON), read after the
                        export, and first have the newest entry exported signed when no checkpoint
                        is there yet (createAuthLogCheckpoint): with the audit public key, custos
                        verify --file proves the whole export without the database (README "An
                        exported range proves itself")
  --no-progress         no progress bar
${filterUsage}`

const BAR_WIDTH = 30

/** A progress bar on a terminal; elsewhere a line every few seconds. Always a closing summary. */
class ProgressBar implements ExportProgress {
  private total: number | undefined
  private done = 0
  private readonly startedAt = performance.now()
  private lastDrawn = 0

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly enabled: boolean,
  ) {}

  start(total: number | undefined) {
    this.total = total
    this.draw(true)
  }

  advance(entries: number) {
    this.done += entries
    this.draw(false)
  }

  private rate() {
    const seconds = (performance.now() - this.startedAt) / 1000
    return seconds > 0 ? Math.round(this.done / seconds) : 0
  }

  private draw(force: boolean) {
    if (!this.enabled) return
    const now = performance.now()
    const interval = this.stream.isTTY ? 100 : 5_000
    if (!force && now - this.lastDrawn < interval) return
    this.lastDrawn = now
    const count = `${this.done.toLocaleString('en')}${this.total === undefined ? '' : `/${this.total.toLocaleString('en')}`} entries`
    const fraction = this.total ? Math.min(this.done / this.total, 1) : undefined
    const bar =
      fraction === undefined ? '' : `[${'#'.repeat(Math.round(fraction * BAR_WIDTH)).padEnd(BAR_WIDTH, '.')}] ${Math.floor(fraction * 100)}%  `
    const line = `${bar}${count}  ${this.rate().toLocaleString('en')}/s`
    this.stream.write(this.stream.isTTY ? `\r${line}\x1b[K` : `${line}\n`)
  }

  finish(written: number, file: string) {
    if (this.enabled && this.stream.isTTY) this.stream.write('\r\x1b[K')
    // Elsewhere the last state stays on record: the closing bar, then the summary.
    else this.draw(true)
    const seconds = ((performance.now() - this.startedAt) / 1000).toFixed(1)
    this.stream.write(`Exported ${written.toLocaleString('en')} entries to ${file} in ${seconds} s\n`)
  }
}

/** authLogCheckpoints' largest page. */
const CHECKPOINT_PAGE = 500

/** Every signed checkpoint, newest first: few (one an hour by default), and the verifier picks those of the range. */
async function allCheckpoints(source: LogSource): Promise<CheckpointJson[]> {
  const checkpoints: CheckpointJson[] = []
  for (let offset = 0; ; offset += CHECKPOINT_PAGE) {
    const page = await source.checkpoints(CHECKPOINT_PAGE, offset)
    checkpoints.push(...page)
    if (page.length < CHECKPOINT_PAGE) return checkpoints
  }
}

/**
 * The newest entry's sequence in an export file (newest first): the largest among the entries of
 * its first millisecond, whose order in the file is by id; undefined for an empty export.
 */
async function newestSequence(file: string): Promise<bigint | undefined> {
  let newest: { createdAt: string; sequence: bigint } | undefined
  for await (const entry of exportFileEntries(createReadStream(file))) {
    const createdAt = new Date(entry.createdAt).toISOString()
    if (newest && createdAt !== newest.createdAt) break
    const sequence = BigInt(entry.sequence)
    if (!newest || sequence > newest.sequence) newest = { createdAt, sequence }
  }
  return newest?.sequence
}

/** Every checkpoint, the newest exported entry signed first when none is there yet: no entry of the export is left unproven. */
async function checkpointsCovering(source: LogSource, file: string): Promise<CheckpointJson[]> {
  const newest = await newestSequence(file)
  const checkpoints = await allCheckpoints(source)
  if (newest === undefined || checkpoints.some((checkpoint) => BigInt(checkpoint.sequence) === newest)) return checkpoints
  try {
    // In the list's order (newest sequence first); no other checkpoint has its sequence.
    return [...checkpoints, await source.signCheckpoint(newest)].sort((a, b) => b.sequence - a.sequence)
  } catch (error) {
    // The export stands; what it lacks is said (a broken chain, a refused token: those stop the command).
    if (!(error instanceof NoSigningKeyError)) throw error
    process.stderr.write(`Warning: ${error.message}; the checkpoints prove the export up to the newest one in it (custos verify --file --to)\n`)
    return checkpoints
  }
}

export async function runExport(args: string[]) {
  const values = parseCommandLine(args, {
    ...filterOptions,
    format: { type: 'string' },
    out: { type: 'string', short: 'o' },
    checkpoints: { type: 'string' },
    'no-progress': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  })
  if (values.help) return void process.stdout.write(exportUsage)
  const format = values.format as ExportFormat | undefined
  if (!format || !exportFormats.includes(format)) throw new UsageError(`--format must be one of: ${exportFormats.join(', ')}`)
  if (!values.out) throw new UsageError('--out FILE is required')
  // Both are written through FILE.partial: one file would end up holding the checkpoints over the export.
  if (values.checkpoints !== undefined && resolve(values.checkpoints) === resolve(values.out)) {
    throw new UsageError('--checkpoints must name another file than --out')
  }
  const filter = filterFromOptions(values)

  const outputs: Output[] = []
  let source: LogSource | undefined
  // Interrupted, it leaves no FILE.partial behind: what it holds is part of the log all the same.
  const onSignal = (signal: NodeJS.Signals) =>
    void Promise.all(outputs.map((output) => output.discard())).finally(() => process.exit(signal === 'SIGINT' ? 130 : 143))
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    // Both files are opened before anything is read or recorded: a path that cannot be written changes nothing.
    const out = await openOutput('out', values.out, outputs)
    const checkpointsOut = values.checkpoints ? await openOutput('checkpoints', values.checkpoints, outputs) : undefined
    source = await openLogSource(values)
    const file = out.handle.createWriteStream()
    const progress = new ProgressBar(process.stderr, !values['no-progress'])
    const written = await source.export(format, filter, file, progress)
    file.end()
    await finished(file)
    await rename(out.partial, values.out)
    progress.finish(written, values.out)
    if (checkpointsOut) {
      const checkpoints = await checkpointsCovering(source, values.out)
      await checkpointsOut.handle.writeFile(`${JSON.stringify(checkpoints, null, 2)}\n`)
      await checkpointsOut.handle.close()
      await rename(checkpointsOut.partial, values.checkpoints!)
      process.stderr.write(`Wrote ${checkpoints.length} signed checkpoint${checkpoints.length === 1 ? '' : 's'} to ${values.checkpoints}\n`)
    }
  } catch (error) {
    await Promise.all(outputs.map((output) => output.discard()))
    throw error
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await source?.close()
  }
}

/** FILE.partial, open to write and renamed to FILE when complete. */
interface Output {
  readonly handle: FileHandle
  readonly partial: string
  /** Closes and removes the partial file. */
  discard(): Promise<void>
}

/** Opens FILE.partial among `outputs`; a file an option names that cannot be written is unusable input (exit status 2). */
async function openOutput(option: string, path: string, outputs: Output[]): Promise<Output> {
  const partial = `${path}.partial`
  // FILE.partial could be written, but renaming it over a directory would fail once the export is done.
  if ((await stat(path).catch(() => undefined))?.isDirectory()) throw new ConfigError(`--${option} ${path}: cannot be written (it is a directory)`)
  // The owner's alone, as the data directory is: an export holds the log's identifiers and addresses.
  // Created afresh (a partial file left by an older run keeps its mode; a symlink there is not followed).
  await rm(partial, { force: true }).catch(() => {})
  const handle = await open(partial, 'wx', 0o600).catch((error: unknown) => {
    throw new ConfigError(`--${option} ${path}: cannot be written (${(error as Error).message})`)
  })
  const output = { handle, partial, discard: async () => void (await Promise.all([handle.close().catch(() => {}), rm(partial, { force: true })])) }
  outputs.push(output)
  return output
}
