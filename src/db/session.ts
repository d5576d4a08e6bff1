import type { Readable } from 'node:stream'
import type pg from 'pg'
import { to as copyTo } from 'pg-copy-streams'

/** A single database session for raw SQL: migrations, advisory locks, bulk reads. */
export interface SqlSession {
  query<Row extends object = Record<string, unknown>>(text: string, params?: unknown[]): Promise<Row[]>
  /**
   * Like query, for a statement every request runs: prepared once per connection under `name`, so
   * PostgreSQL stops planning it anew each time (planning costs more than running a lookup by key).
   */
  queryPrepared<Row extends object = Record<string, unknown>>(name: string, text: string, params: unknown[]): Promise<Row[]>
  /** Like query, with each row an array of its values in select order: less to build when reading many rows. */
  queryArrays(text: string, params?: unknown[]): Promise<unknown[][]>
  /** Runs a script of several statements (no parameters). */
  exec(script: string): Promise<void>
  /**
   * PostgreSQL only (PGlite has no COPY to the client): the bytes of `COPY ... TO STDOUT`, read
   * as fast as they are consumed. A stream not read to its end closes the session's connection.
   */
  copyOut?(statement: string): Readable
}

/** A SqlSession over one PostgreSQL connection (kept apart from database.ts so a worker thread can use it without loading Prisma). */
export function clientSession(client: pg.ClientBase): Required<SqlSession> {
  return {
    async query(text, params) {
      return (await client.query(text, params)).rows
    },
    async queryPrepared(name, text, params) {
      return (await client.query({ name, text, values: params })).rows
    },
    async queryArrays(text, params) {
      return (await client.query({ text, values: params, rowMode: 'array' })).rows
    },
    async exec(script) {
      await client.query(script)
    },
    copyOut: (statement) => client.query(copyTo(statement)),
  }
}
