import type { PrismaPg } from '@prisma/adapter-pg'

type AdapterFactory = PrismaPg
type Adapter = Awaited<ReturnType<AdapterFactory['connect']>>
type Transaction = Awaited<ReturnType<Adapter['startTransaction']>>

/**
 * Every transaction that records an audit entry holds the chain head from its
 * INSERT until it ends. Ending with a synchronous COMMIT would hold the head
 * through the disk flush, so only one transaction per flush could get through.
 * Instead each transaction commits asynchronously and, in the same round trip,
 * a second transaction commits synchronously after it: PostgreSQL flushes the
 * WAL in order, so when that one returns the first is on disk too, and the
 * caller still gets a durable commit, without the head held through the flush.
 * The second transaction must write WAL under a transaction id, or its commit
 * is not flushed either (an id alone, pg_current_xact_id(), is not enough): a
 * transactional logical-decoding message is the smallest such write, and any
 * role may emit one.
 */
export const COMMIT_THEN_FLUSH = "SET LOCAL synchronous_commit = off; COMMIT; SELECT pg_logical_emit_message(true, 'custos', 'flush')"

/** Prisma's pg adapter with every interactive transaction committed as above. */
export function flushAfterCommit(factory: AdapterFactory): AdapterFactory {
  return override(factory, {
    async connect() {
      const adapter = await factory.connect()
      return override(adapter, {
        startTransaction: async (isolationLevel) => committingThenFlushing(await adapter.startTransaction(isolationLevel)),
      })
    },
  })
}

function committingThenFlushing(transaction: Transaction): Transaction {
  return override(transaction, {
    async executeRaw(query) {
      if (query.sql !== 'COMMIT') return transaction.executeRaw(query)
      try {
        return await transaction.executeRaw({ ...query, sql: COMMIT_THEN_FLUSH })
      } catch (error) {
        // If the statement before COMMIT failed the transaction is still open: end it before the connection goes back to the pool.
        await transaction.executeRaw({ sql: 'ROLLBACK', args: [], argTypes: [] }).catch(() => {})
        throw error
      }
    },
  })
}

/** `target` with some methods replaced; everything else is the target's own, bound to it. */
function override<T extends object>(target: T, replacements: Partial<T>): T {
  return new Proxy(target, {
    get(object, key) {
      if (Object.hasOwn(replacements, key)) return replacements[key as keyof T]
      const value = Reflect.get(object, key, object)
      return typeof value === 'function' ? value.bind(object) : value
    },
  })
}
