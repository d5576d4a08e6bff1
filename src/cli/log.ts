import { setTimeout as sleep } from 'node:timers/promises'
import { type AuthLogFilter, MAX_PAGE_SIZE } from '../audit/query.js'
import type { AuthLogEntryJson } from '../audit/export.js'
import { type LogSource, openLogSource } from './logSource.js'
import { UsageError, filterFromOptions, filterOptions, filterUsage, parseCommandLine } from './options.js'

export const logUsage = `Usage: custos log [-n 50] [--json] [--follow] [filters]

Prints the newest entries of the audit log, oldest of them first: a table on a terminal, or one
JSON object per line (the GraphQL AuthLogEntry shape) with --json.

  -n, --lines N         how many entries (default 50)
  --json                one JSON object per line
  -f, --follow          keep printing new entries as they arrive (Ctrl-C stops)
  --interval SECONDS    how often --follow looks (default 2, at most 86400)
${filterUsage}`

/** The longest --interval: a day. */
const MAX_INTERVAL_MS = 86_400_000

/** How far back each --follow poll looks again: entries committed late carry an earlier created_at. */
const FOLLOW_OVERLAP_MS = 10_000

const shortId = (id: string | null) => (id ? id.slice(0, 8) : '-')

/**
 * Text a client typed (an identifier) may hold line breaks and terminal escape sequences: shown as
 * \n, \x1b and so on, so an entry can neither forge table rows nor drive the terminal.
 */
const NAMED_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }
const printable = (text: string) =>
  text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (char) => {
    const code = char.charCodeAt(0)
    return NAMED_ESCAPES[char] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`)
  })

const COLUMNS = [
  { title: 'TIME (UTC)', width: 19, value: (entry: AuthLogEntryJson) => entry.createdAt.slice(0, 19).replace('T', ' ') },
  { title: 'TYPE', width: 26, value: (entry: AuthLogEntryJson) => entry.type },
  { title: 'OK', width: 4, value: (entry: AuthLogEntryJson) => (entry.success ? 'yes' : 'NO') },
  { title: 'ACTOR', width: 8, value: (entry: AuthLogEntryJson) => shortId(entry.invokedByIdentityId) },
  { title: 'CLIENT IP', width: 15, value: (entry: AuthLogEntryJson) => entry.clientIp ?? '-' },
  { title: 'WHO / ERROR', width: 0, value: (entry: AuthLogEntryJson) => [entry.personInputIdentifier, entry.errorCode].filter(Boolean).join(' ') || '-' },
]

/** Fixed-width rows, so rows printed later by --follow line up with the first ones. */
class TablePrinter {
  private headerPrinted = false

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly colors: boolean,
  ) {}

  private line(cells: string[]): string {
    const text = cells.map(printable).map((cell, index) => {
      const width = COLUMNS[index]!.width
      return width === 0 ? cell : cell.length > width ? `${cell.slice(0, width - 1)}…` : cell.padEnd(width)
    })
    const joined = text.join('  ')
    const columns = this.out.columns
    return columns && joined.length > columns ? `${joined.slice(0, columns - 1)}…` : joined
  }

  print(entries: AuthLogEntryJson[]) {
    if (!this.headerPrinted) {
      this.out.write(`${this.line(COLUMNS.map((column) => column.title))}\n`)
      this.headerPrinted = true
    }
    for (const entry of entries) {
      const row = this.line(COLUMNS.map((column) => column.value(entry)))
      this.out.write(`${this.colors && !entry.success ? `\x1b[31m${row}\x1b[0m` : row}\n`)
    }
  }
}

/** The newest `count` entries matching `filter`, newest first, read page by page through cursors. */
async function newest(source: LogSource, filter: AuthLogFilter, count: number): Promise<AuthLogEntryJson[]> {
  const entries: AuthLogEntryJson[] = []
  let cursor: string | null = null
  while (entries.length < count) {
    const page = await source.page(filter, Math.min(count - entries.length, MAX_PAGE_SIZE), cursor)
    entries.push(...page.entries)
    cursor = page.nextCursor
    if (!cursor) break
  }
  return entries
}

export async function runLog(args: string[]) {
  const values = parseCommandLine(args, {
    ...filterOptions,
    lines: { type: 'string', short: 'n', default: '50' },
    json: { type: 'boolean' },
    follow: { type: 'boolean', short: 'f' },
    interval: { type: 'string', default: '2' },
    help: { type: 'boolean', short: 'h' },
  })
  if (values.help) return void process.stdout.write(logUsage)
  const count = Number(values.lines)
  if (!Number.isInteger(count) || count < 1) throw new UsageError(`-n must be a positive whole number: ${values.lines}`)
  const intervalMs = Number(values.interval) * 1000
  // A timer longer than 2^31 - 1 ms fires after 1 ms: --follow would poll without pause.
  if (!(intervalMs >= 100 && intervalMs <= MAX_INTERVAL_MS)) {
    throw new UsageError(`--interval must be from 0.1 to ${MAX_INTERVAL_MS / 1000} seconds: ${values.interval}`)
  }
  const filter = filterFromOptions(values)
  if (values.follow && filter.createdBefore) throw new UsageError('--follow cannot be combined with --until')

  const source = await openLogSource(values)
  const table = new TablePrinter(process.stdout, process.stdout.isTTY)
  const print = (entries: AuthLogEntryJson[]) => {
    if (values.json) for (const entry of entries) process.stdout.write(`${JSON.stringify(entry)}\n`)
    else table.print(entries)
  }
  try {
    const initial = (await newest(source, filter, count)).reverse()
    print(initial)
    if (!values.follow) return
    // Only a follower stops on SIGINT or SIGTERM of its own accord; any other read ends as signals end a process.
    const stop = new AbortController()
    const onSignal = () => stop.abort()
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    try {
      await follow(source, filter, initial, intervalMs, print, stop.signal)
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
  } finally {
    await source.close()
  }
}

/**
 * Polls for entries newer than the newest seen, looking back FOLLOW_OVERLAP_MS each time and
 * skipping ids already printed, until `stop` (SIGINT or SIGTERM).
 */
export async function follow(
  source: LogSource,
  filter: AuthLogFilter,
  initial: AuthLogEntryJson[],
  intervalMs: number,
  print: (entries: AuthLogEntryJson[]) => void,
  stop: AbortSignal,
) {
  /**
   * The newest entry's time, by the log's clock (this machine's may be off from the server's), or
   * undefined while nothing has matched the filter: then whatever matches is new.
   */
  let watermark = initial.length > 0 ? Date.parse(initial.at(-1)!.createdAt) : undefined
  const overlapStart = () =>
    watermark === undefined ? filter.createdAfter : new Date(Math.max(watermark - FOLLOW_OVERLAP_MS, filter.createdAfter?.getTime() ?? 0))
  const recent = (until?: Date) => newest(source, { ...filter, createdAfter: overlapStart(), createdBefore: until }, Number.POSITIVE_INFINITY)
  /**
   * Entries already there when the first page was read (shown or not, as -n decided): never
   * printed as new. Those of the newest shown entry's millisecond are told apart by sequence: one
   * committed since within that millisecond comes later in the chain, and still counts as new.
   */
  const seen = new Map<string, number>()
  const shownUpTo = initial.reduce((highest, entry) => (BigInt(entry.sequence) > highest ? BigInt(entry.sequence) : highest), 0n)
  const present =
    watermark === undefined
      ? []
      : (await recent(new Date(watermark + 1))).filter((entry) => Date.parse(entry.createdAt) < watermark! || BigInt(entry.sequence) <= shownUpTo)
  for (const entry of [...initial, ...present]) seen.set(entry.id, Date.parse(entry.createdAt))
  while (!stop.aborted) {
    await sleep(intervalMs, undefined, { signal: stop }).catch(() => {})
    if (stop.aborted) break
    const fresh = (await recent()).filter((entry) => !seen.has(entry.id)).reverse()
    print(fresh)
    for (const entry of fresh) {
      const at = Date.parse(entry.createdAt)
      seen.set(entry.id, at)
      watermark = Math.max(watermark ?? at, at)
    }
    const forgetBefore = (watermark ?? 0) - FOLLOW_OVERLAP_MS
    for (const [id, at] of seen) if (at < forgetBefore) seen.delete(id)
  }
}
