import { recordAuditEntry, systemActor } from '../../audit/recorder.js'
import type { PrismaClient } from '../../generated/prisma/client.js'
import { holdTurnInDatabase } from '../auth/inTurn.js'
import type { GlobalRole } from '../permissions.js'
import { generateToken, hashToken } from './tokens.js'

/** The two keys an installation starts with; their identities are found by this description. */
const bootstrapKeys = [
  { name: 'root', description: 'Custos root key (CUSTOS_ROOT_TOKEN)', role: 'super_admin' },
  { name: 'login', description: 'Custos login key (CUSTOS_LOGIN_TOKEN)', role: 'login' },
] as const satisfies readonly { name: string; description: string; role: GlobalRole }[]

/**
 * Makes sure the root and login keys exist. A token given in the environment
 * becomes the key (replacing an earlier one); with none given, a key is
 * generated on first start and its token returned once to be printed.
 * Only hashes are stored; every key created here is recorded in the log.
 */
export async function ensureBootstrapKeys(
  prisma: PrismaClient,
  tokens: { root: string | undefined; login: string | undefined },
): Promise<{ name: string; token: string }[]> {
  const generated: { name: string; token: string }[] = []
  for (const key of bootstrapKeys) {
    const given = tokens[key.name]
    await prisma.$transaction(async (tx) => {
      // Servers starting together on a new database: the second waits, then finds the first's key
      // (without the turn both created one: two root identities, or the same token twice, refused).
      await holdTurnInDatabase(tx, `bootstrap key ${key.name}`)
      const identity = await tx.identity.findFirst({
        where: { description: key.description },
        include: { apiKeys: { where: { disabledAt: null } } },
      })
      if (given && identity?.apiKeys.some((apiKey) => apiKey.tokenHash === hashToken(given))) return
      if (!given && identity?.apiKeys.length) return

      const token = given ?? generateToken()
      const owner = identity ?? (await tx.identity.create({ data: { description: key.description, roles: [key.role] } }))
      // A new token from the environment replaces the old one.
      await tx.apiKey.updateMany({ where: { identityId: owner.id, disabledAt: null }, data: { disabledAt: new Date() } })
      const apiKey = await tx.apiKey.create({ data: { tokenHash: hashToken(token), type: 'permanent', identityId: owner.id } })
      await recordAuditEntry(tx, systemActor, {
        type: 'api_key_create',
        success: true,
        eventData: { apiKeyId: apiKey.id, identityId: owner.id, description: key.description, roles: [key.role] },
      })
      if (!given) generated.push({ name: key.name, token })
    })
  }
  return generated
}
