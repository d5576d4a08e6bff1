import { PGlite } from '@electric-sql/pglite'
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm'
import { PrismaPg } from '@prisma/adapter-pg'
import pg from 'pg'
import { PrismaPGlite } from 'pglite-prisma-adapter'
import { PrismaClient } from '../generated/prisma/client.js'
import { lockDataDir } from './dataDirLock.js'
import { flushAfterCommit } from './flushAfterCommit.js'
import { makePrivateDir, octal } from './privateDir.js'
import { type SqlSession, clientSession } from './session.js'

export type { SqlSession } from './session.js'

export interface Database {
  readonly kind: 'pglite' | 'postgres'
  /** The server's connection URL (PostgreSQL only): for work that opens connections of its own in other threads. */
  readonly url?: string
  readonly prisma: PrismaClient
  /** Runs `work` on one dedicated connection (PGlite has only one). */
  session<T>(work: (session: SqlSession) => Promise<T>): Promise<T>
  /** True when the database answers a trivial query. */
  ping(): Promise<boolean>
  close(): Promise<void>
}

/**
 * A PostgreSQL server, or the embedded database in `dataDir` (in memory when
 * undefined), optionally started from `initialData`, a dump of a data
 * directory (PGlite's dumpDataDir) instead of an empty cluster.
 */
export type DatabaseTarget = { url: string } | { dataDir: string | undefined; initialData?: Blob }

export interface OpenOptions {
  /** Told when the embedded database's directory was open to other users and had to be closed. */
  warn?: (message: string) => void
}

export async function openDatabase(target: DatabaseTarget, { warn = (message) => process.stderr.write(`${message}\n`) }: OpenOptions = {}): Promise<Database> {
  const database = 'url' in target ? openPostgres(target.url) : await openPglite(target.dataDir, target.initialData, warn)
  return {
    ...database,
    ping: () =>
      database.session((session) => session.query('SELECT 1')).then(
        () => true,
        () => false,
      ),
  }
}

/**
 * Every connection works in UTC, whatever the server's or database's TimeZone says: Prisma's
 * PostgreSQL adapter reads and writes timestamps without their offset, so in another zone the
 * checkpoints it wrote failed to verify and authLogStats put entries in the wrong buckets; and
 * the log's days and hours are UTC ones.
 */
const SESSION_IN_UTC = "SET TIME ZONE 'UTC'"

function openPostgres(url: string): Omit<Database, 'ping'> {
  const pool = new pg.Pool({ connectionString: url, max: 10 })
  // An idle client that loses its connection must not crash the process.
  pool.on('error', () => {})
  // Queries on a client run in order, so this comes before anything the client is checked out for.
  pool.on('connect', (client) => client.query(SESSION_IN_UTC).catch(() => {}))
  const prisma = new PrismaClient({ adapter: flushAfterCommit(new PrismaPg(pool)) })
  return {
    kind: 'postgres',
    url,
    prisma,
    async session(work) {
      const client = await pool.connect()
      // A connection lost while checked out (the server restarted, a backend was terminated) fails
      // the query or COPY it serves; its 'error' event, which the pool listens to only while the
      // connection is idle, would otherwise end the process. Such a connection is not reused.
      let lost = false
      const onLost = () => (lost = true)
      client.on('error', onLost)
      // A COPY stopped halfway leaves the connection mid-protocol: it is closed, not reused.
      let unfinishedCopies = 0
      const base = clientSession(client)
      try {
        return await work({
          ...base,
          copyOut(statement) {
            const stream = base.copyOut(statement)
            unfinishedCopies++
            stream.once('end', () => unfinishedCopies--)
            // The reader sees errors through its own listener; this one keeps the error a closed
            // connection raises after the reader has stopped from crashing the process.
            stream.on('error', () => {})
            return stream
          },
        })
      } finally {
        client.removeListener('error', onLost)
        client.release(lost || unfinishedCopies > 0)
      }
    },
    async close() {
      await prisma.$disconnect()
      await pool.end()
    },
  }
}

/**
 * Embedded PostgreSQL (WASM). `dataDir` undefined means in memory; `initialData` starts it from a
 * dump (tests). pg_trgm ships inside the package and is loaded so the log's search index exists
 * here too (see README, PGlite notes).
 */
async function openPglite(
  dataDir: string | undefined,
  initialData: Blob | undefined,
  warn: (message: string) => void,
): Promise<Omit<Database, 'ping'>> {
  if (dataDir !== undefined) {
    const openMode = await makePrivateDir(dataDir)
    if (openMode !== undefined) warn(`The data directory ${dataDir} was open to other users (mode ${octal(openMode)}): closed it (mode 0700).`)
  }
  const unlock = dataDir === undefined ? async () => {} : await lockDataDir(dataDir)
  const pglite = await PGlite.create({ dataDir, loadDataDir: initialData, extensions: { pg_trgm } }).catch(async (error: unknown) => {
    await unlock()
    throw error
  })
  await pglite.exec(SESSION_IN_UTC)
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(pglite) })
  const query: SqlSession['query'] = async (text, params) => (await pglite.query(text, params)).rows as never[]
  const session: SqlSession = {
    query,
    // One connection in this process: nothing to gain from naming statements.
    queryPrepared: (_name, text, params) => query(text, params),
    async queryArrays(text, params) {
      return (await pglite.query<unknown[]>(text, params, { rowMode: 'array' })).rows
    },
    async exec(script) {
      await pglite.exec(script)
    },
  }
  return {
    kind: 'pglite',
    prisma,
    session: (work) => work(session),
    async close() {
      await prisma.$disconnect()
      await pglite.close()
      await unlock()
    },
  }
}
