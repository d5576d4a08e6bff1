import { recordAuditEntry, systemActor } from '../../src/audit/recorder.js'
import type { Database } from '../../src/db/database.js'
import { openDatabase } from '../../src/db/database.js'

class Abandoned extends Error {}

/**
 * One writer of the concurrency test: `count` transactions through the only
 * insert path, every `abandonEvery`-th rolled back after its insert. Returns
 * how many committed. Run as a script, it is a writer in a process of its own:
 * `node --import tsx test/testkit/chainWriter.ts <url> <writers> <count> <abandonEvery>`.
 */
export async function writeEntries(db: Database, writer: string, count: number, abandonEvery: number): Promise<number> {
  let committed = 0
  for (let index = 1; index <= count; index++) {
    const abandon = index % abandonEvery === 0
    try {
      await db.prisma.$transaction(async (tx) => {
        await recordAuditEntry(tx, systemActor, {
          type: 'login',
          success: false,
          personInputIdentifier: `${writer}-${index}@example.test`,
          errorCode: 'UNKNOWN_EMAIL',
        })
        if (abandon) throw new Abandoned()
      })
      committed++
    } catch (error) {
      if (!(error instanceof Abandoned)) throw error
    }
  }
  return committed
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [url, writers, count, abandonEvery] = process.argv.slice(2)
  const db = await openDatabase({ url: url! })
  const results = await Promise.all(
    Array.from({ length: Number(writers) }, (_, index) => writeEntries(db, `process-${process.pid}-${index}`, Number(count), Number(abandonEvery))),
  )
  await db.close()
  process.stdout.write(`${results.reduce((sum, committed) => sum + committed, 0)}\n`)
}
