import type { Prisma, PrismaClient } from '../generated/prisma/client.js'

type TransactionOptions = Parameters<PrismaClient['$transaction']>[1]

/**
 * prisma.$transaction for work that records audit entries. Every entry holds
 * the chain head until its transaction ends, so waiting there for the WAL flush
 * would let only one commit per disk flush through. The commit is therefore
 * asynchronous, and a second, ordinary commit afterwards waits for the flush:
 * PostgreSQL flushes the WAL in order, so once it returns the first is on disk
 * too and the caller still gets a durable commit.
 */
export async function auditTransaction<T>(
  prisma: PrismaClient,
  work: (tx: Prisma.TransactionClient) => Promise<T>,
  options?: TransactionOptions,
): Promise<T> {
  const result = await prisma.$transaction(async (tx) => {
    await tx.$executeRawUnsafe('SET LOCAL synchronous_commit = off')
    return work(tx)
  }, options)
  await waitForDurableCommit(prisma)
  return result
}

/** Commits a transaction that has an id, with the configured synchronous_commit: it returns once the WAL before it is flushed. */
export async function waitForDurableCommit(prisma: Pick<PrismaClient, '$executeRawUnsafe'>): Promise<void> {
  await prisma.$executeRawUnsafe('SELECT pg_current_xact_id()')
}
