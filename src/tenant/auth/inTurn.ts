import type { Transaction } from '../command.js'

/**
 * Turns for the throttles that read earlier attempts from the log (the sign-in backoff, the
 * per-email backoff of the mailing flows): attempts judged at the same time would all read the
 * same past and all pass, so attempts for one key take turns, each reading what those before it
 * recorded. Within a process they queue here, holding no database connection. Across server
 * instances on one database, the attempt's own transaction also takes the key's turn there
 * (holdTurn) before it reads the log, and commits its refusal with its failure entry
 * (commitRefusal), so the next holder counts it.
 */
const tails = new Map<string, Promise<unknown>>()

/**
 * Takes the key's turn in the database until transaction `tx` ends, after any attempt on another
 * instance that holds it. Called first in a transaction that needs no other connection: waiting,
 * it holds one connection and no lock, and the holder needs nothing more to finish, so no wait
 * goes round in a circle however many keys are busy; the queue in front lets one attempt per key
 * and instance wait here.
 */
export type HoldTurn = (tx: Transaction) => Promise<void>

export async function inTurn<T>(key: string, work: (holdTurn: HoldTurn) => Promise<T>): Promise<T> {
  const previous = tails.get(key) ?? Promise.resolve()
  const start = () => work((tx) => holdTurnInDatabase(tx, key))
  const run = previous.then(start, start)
  const tail = run.catch(() => {})
  tails.set(key, tail)
  try {
    return await run
  } finally {
    if (tails.get(key) === tail) tails.delete(key)
  }
}

/** A transaction-scoped advisory lock on a 64-bit hash of the key: two keys sharing a hash only wait for each other. */
export async function holdTurnInDatabase(tx: Transaction, key: string): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${key}, 0))`
}
