/**
 * Runs work for one key after the work queued for it before has settled, within this process.
 * Throttles that read earlier failures from the log (the sign-in backoff) only hold when the
 * attempts they judge come one after another: concurrent guesses would all read the same past.
 * Waiting happens here, holding no database connection.
 */
const tails = new Map<string, Promise<unknown>>()

export async function inTurn<T>(key: string, work: () => Promise<T>): Promise<T> {
  const previous = tails.get(key) ?? Promise.resolve()
  const run = previous.then(work, work)
  const tail = run.catch(() => {})
  tails.set(key, tail)
  try {
    return await run
  } finally {
    if (tails.get(key) === tail) tails.delete(key)
  }
}
