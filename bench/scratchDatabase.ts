import { randomBytes } from 'node:crypto'
import pg from 'pg'

/** Where the benchmarks create their databases unless told otherwise (the role must be allowed to create databases). */
export const DEFAULT_SERVER_URL = 'postgresql://postgres@127.0.0.1:5432/test'

/** Runs `work` on one connection of its own to `url`. */
export async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end()
  }
}

export interface ScratchDatabase {
  readonly name: string
  readonly url: string
  drop(): Promise<void>
}

/** A new, empty database on the server behind `serverUrl`, for one benchmark run; nothing else there is touched. */
export async function createScratchDatabase(serverUrl: string): Promise<ScratchDatabase> {
  const name = `custos_bench_${randomBytes(5).toString('hex')}`
  await withClient(serverUrl, (client) => client.query(`CREATE DATABASE "${name}"`))
  return {
    name,
    url: Object.assign(new URL(serverUrl), { pathname: `/${name}` }).toString(),
    drop: () => withClient(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => {}),
  }
}
