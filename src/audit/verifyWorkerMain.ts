import { parentPort, workerData } from 'node:worker_threads'
import pg from 'pg'
import { clientSession } from '../db/session.js'
import { type Slice, checkSlice } from './integrity.js'

/** Checks the slices the main thread posts, one at a time, on one connection of its own (see checkedInSlices); null ends it. */
const client = new pg.Client({ connectionString: (workerData as { url: string }).url })
await client.connect()
const session = clientSession(client)
parentPort!.on('message', async (slice: Slice | null) => {
  if (slice) return parentPort!.postMessage(await checkSlice(session, slice))
  await client.end()
  parentPort!.close()
})
