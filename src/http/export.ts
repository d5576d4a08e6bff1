import type { IncomingMessage, ServerResponse } from 'node:http'
import { GraphQLError } from 'graphql'
import { type ExportFormat, exportAuthLog, exportFileName, recordExport } from '../audit/export.js'
import { filterFromParams, strictSearchParams } from '../audit/filterParams.js'
import { type AuthLogCriteria, AuthLogQueryError, countAuthLog, parseAuthLogFilter } from '../audit/query.js'
import { Permissions, deniedMessage } from '../tenant/permissions.js'
import { type AppServices, resolveCaller } from './context.js'

/**
 * GET /tenant/audit-log/export.jsonl and .csv: the log, filtered by query parameters (see
 * src/audit/filterParams.ts), streamed as it is read (src/audit/export.ts). Same bearer token
 * and the same system:viewAuthLog privilege as authLog. Every refusal is a JSON error sent before any data.
 */

const EXPORT_PATHS: Readonly<Record<string, ExportFormat>> = {
  '/tenant/audit-log/export.jsonl': 'jsonl',
  '/tenant/audit-log/export.csv': 'csv',
}

export const exportFormatFor = (path: string): ExportFormat | undefined => EXPORT_PATHS[path]

const CONTENT_TYPES: Record<ExportFormat, string> = {
  jsonl: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8; header=present',
}

/** `count=true` asks for the number of matching entries in X-Total-Count (one more query). */
const COUNT_PARAM = 'count'

class ExportRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly parameter?: string,
  ) {
    super(message)
  }
}

function sendError(res: ServerResponse, refusal: ExportRefusal) {
  res.writeHead(refusal.status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...(refusal.status === 401 ? { 'www-authenticate': 'Bearer' } : {}),
    ...(refusal.status === 405 ? { allow: 'GET' } : {}),
  })
  res.end(JSON.stringify({ error: { code: refusal.code, message: refusal.message, ...(refusal.parameter ? { parameter: refusal.parameter } : {}) } }))
}

const requestHeaders = (req: IncomingMessage) => {
  const headers = new Headers()
  for (const [name, value] of Object.entries(req.headers)) {
    for (const item of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, item)
  }
  return headers
}

/** Who asks, and may they: 401 without a valid token, 403 without system:viewAuthLog. */
async function authorize(services: AppServices, req: IncomingMessage) {
  const request = new Request(new URL(req.url ?? '/', 'http://localhost'), { headers: requestHeaders(req) })
  const { caller, client } = await resolveCaller(services, request, req.socket.remoteAddress).catch((error: unknown) => {
    if (error instanceof GraphQLError && error.extensions.code === 'UNAUTHENTICATED') throw new ExportRefusal(401, 'UNAUTHENTICATED', error.message)
    throw error
  })
  if (!caller) throw new ExportRefusal(401, 'UNAUTHENTICATED', 'A bearer token is required.')
  if (!new Permissions(caller.roles, services.config.roleGrants).has('system:viewAuthLog')) throw new ExportRefusal(403, 'FORBIDDEN', deniedMessage('system:viewAuthLog'))
  return { identityId: caller.identityId, personId: caller.personId, client }
}

function readParameters(url: URL) {
  try {
    const params = strictSearchParams(url.search)
    const count = params.get(COUNT_PARAM)
    if (count !== null && count !== 'true' && count !== 'false') throw new AuthLogQueryError('count must be true or false', COUNT_PARAM)
    return { criteria: parseAuthLogFilter(filterFromParams(params, [COUNT_PARAM])), count: count === 'true' }
  } catch (error) {
    if (!(error instanceof AuthLogQueryError)) throw error
    throw new ExportRefusal(400, 'BAD_USER_INPUT', error.message, error.argument.replace(/^filter\./, ''))
  }
}

/**
 * An export holds a database session until its client has read everything, so slow readers could
 * take the whole pool (10) and starve every other request: at most this many run at once per
 * database, the others wait their turn, and one that has waited too long is refused.
 */
const CONCURRENT_EXPORTS = 4
const EXPORT_QUEUE_WAIT_MS = 30_000

class ExportSlots {
  private running = 0
  private readonly waiting: (() => void)[] = []

  /** Resolves with the slot's release, or undefined when none came free within `waitMs`. */
  async take(waitMs: number): Promise<(() => void) | undefined> {
    if (this.running >= CONCURRENT_EXPORTS) {
      const granted = await new Promise<boolean>((resolve) => {
        const turn = () => {
          clearTimeout(timer)
          resolve(true)
        }
        const timer = setTimeout(() => {
          this.waiting.splice(this.waiting.indexOf(turn), 1)
          resolve(false)
        }, waitMs)
        this.waiting.push(turn)
      })
      if (!granted) return undefined
    } else {
      this.running++
    }
    let released = false
    return () => {
      if (released) return
      released = true
      // A waiting export takes the slot over; otherwise it is free.
      const next = this.waiting.shift()
      if (next) next()
      else this.running--
    }
  }
}

const exportSlots = new WeakMap<AppServices['db'], ExportSlots>()
const slotsFor = (db: AppServices['db']) => exportSlots.get(db) ?? exportSlots.set(db, new ExportSlots()).get(db)!

/** Writes `chunk`, then resolves once `res` can take more; false when the client has gone away. */
function writeChunk(res: ServerResponse, chunk: Buffer | string): Promise<boolean> {
  if (res.closed) return Promise.resolve(false)
  if (res.write(chunk)) return Promise.resolve(true)
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done)
      res.off('close', done)
      resolve(!res.closed)
    }
    res.on('drain', done)
    res.on('close', done)
  })
}

export async function handleAuditLogExport(services: AppServices, req: IncomingMessage, res: ServerResponse, format: ExportFormat) {
  try {
    await runExport(services, req, res, format)
  } catch (error) {
    if (error instanceof ExportRefusal && !res.headersSent) return sendError(res, error)
    if (error instanceof ExportRefusal) services.logger.warn({ code: error.code }, 'audit log export cut off: its token may no longer read the log')
    else services.logger.error({ err: error }, 'audit log export failed')
    // Data has been sent: ending normally would pass a cut-off export for a whole one.
    if (res.headersSent) res.destroy()
    else sendError(res, new ExportRefusal(500, 'INTERNAL_SERVER_ERROR', 'Unexpected error.'))
  }
}

async function runExport(services: AppServices, req: IncomingMessage, res: ServerResponse, format: ExportFormat) {
  if (req.method !== 'GET') throw new ExportRefusal(405, 'METHOD_NOT_ALLOWED', 'Use GET.')
  const actor = await authorize(services, req)
  const { criteria, count } = readParameters(new URL(req.url ?? '/', 'http://localhost'))
  const release = await slotsFor(services.db).take(EXPORT_QUEUE_WAIT_MS)
  if (!release) {
    res.setHeader('retry-after', String(EXPORT_QUEUE_WAIT_MS / 1000))
    throw new ExportRefusal(503, 'EXPORTS_BUSY', `${CONCURRENT_EXPORTS} exports are running; try again later.`)
  }
  try {
    // The client left while it waited.
    if (res.closed) return
    // Recorded first, so the export holds its own entry when the filter matches it; and before the
    // session is taken: Prisma draws from the same pool, and sessions waiting on it could hold it all.
    await recordExport(services.db.prisma, actor, criteria, format)
    await streamExport(services, req, res, format, criteria, count)
  } finally {
    release()
  }
}

/**
 * How often a running export asks again whether its token may read the log: a key disabled, a
 * session revoked or a role taken away mid-export cuts the stream off (the connection is reset, as
 * for any export that fails halfway) instead of letting it run to the end.
 */
const REAUTHORIZE_EVERY_MS = 2_000

async function streamExport(
  services: AppServices,
  req: IncomingMessage,
  res: ServerResponse,
  format: ExportFormat,
  criteria: AuthLogCriteria,
  count: boolean,
) {
  await services.db.session(async (session) => {
    // Counted, the export stops at the chain head the count saw, so the file holds X-Total-Count entries.
    const counted = count ? await countAuthLog(session, criteria) : undefined
    res.writeHead(200, {
      'content-type': CONTENT_TYPES[format],
      'content-disposition': `attachment; filename="${exportFileName(format)}"`,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      ...(counted ? { 'x-total-count': String(counted.count) } : {}),
    })
    let authorizedAt = Date.now()
    for await (const { data } of exportAuthLog(session, counted?.criteria ?? criteria, format)) {
      if (Date.now() - authorizedAt >= REAUTHORIZE_EVERY_MS) {
        await authorize(services, req)
        authorizedAt = Date.now()
      }
      // The client went away: stop reading the log.
      if (!(await writeChunk(res, data))) return
    }
    res.end()
  })
}
