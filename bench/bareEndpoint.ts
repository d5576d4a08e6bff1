/**
 * The floor for reading the log over HTTP on the benchmark's machine: node:http, one pg pool, the
 * same page SQL as authLog, the rows JSON.stringify'd in authLog's response shape. No GraphQL, no
 * authentication, no validation beyond the filter's. bench/reading.ts runs it as a child process
 * beside the server, so `authLog ÷ bare` shows what the API itself adds to HTTP and JSON.
 *
 *   DATABASE_URL=... node --import tsx bench/bareEndpoint.ts   (prints "listening <port>")
 *
 * POST any path a JSON body `{ "filter": AuthLogFilter, "limit": n }`.
 */
import { type IncomingMessage, createServer } from 'node:http'
import pg from 'pg'
import { type AuthLogFilter, authLogPageSql, parseAuthLogFilter } from '../src/audit/query.js'

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 })

async function readBody(req: IncomingMessage): Promise<{ filter: AuthLogFilter & { createdAfter?: string; createdBefore?: string }; limit: number }> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

const server = createServer(async (req, res) => {
  try {
    const { filter, limit } = await readBody(req)
    const dated = (iso: string | undefined) => (iso === undefined ? undefined : new Date(iso))
    const criteria = parseAuthLogFilter({ ...filter, createdAfter: dated(filter.createdAfter), createdBefore: dated(filter.createdBefore) })
    const sql = authLogPageSql({ criteria, limit: limit + 1 })
    const { rows } = await pool.query(sql.text, sql.values)
    const body = JSON.stringify({ data: { authLog: { hasMore: rows.length > limit, nextCursor: null, entries: rows.slice(0, limit) } } })
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(body)
  } catch (error) {
    res.writeHead(500, { 'content-type': 'text/plain' })
    res.end(String(error))
  }
})

server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : ''}\n`)
})
process.on('SIGTERM', () => server.close(() => void pool.end()))
