import type { IncomingMessage } from 'node:http'
import type { YogaInitialContext } from 'graphql-yoga'
import type { Logger } from 'pino'
import type { CursorCodec } from '../audit/cursor.js'
import type { AppConfig } from '../config.js'
import type { AuditSigner } from '../crypto/signingKey.js'
import type { Database } from '../db/database.js'
import type { Mailer } from '../mail/mailer.js'
import { unauthenticatedError } from '../schema/errors.js'
import { authenticate } from '../tenant/apiKeys/authenticate.js'
import type { Caller, TenantContext } from '../tenant/context.js'
import { Permissions } from '../tenant/permissions.js'
import { membershipRolesLoader } from '../tenant/projects/memberships.js'
import { type ClientInfo, transportClient, withForwardedClient } from './clientInfo.js'

/** Long-lived services every request shares. */
export interface AppServices {
  readonly config: AppConfig
  readonly db: Database
  readonly logger: Logger
  readonly mailer: Mailer
  /** Seals secrets at rest (src/crypto/encryption.ts). */
  readonly encryptionKey: Buffer
  /** Signs and checks authLog cursors with the installation's key. */
  readonly cursors: CursorCodec
  /** Signs audit log checkpoints; its public key is published. */
  readonly auditSigner: AuditSigner
}

export interface RequestContext extends TenantContext {
  readonly services: AppServices
  readonly logger: Logger
}

/** The node request behind a yoga request (present when served by node:http). */
export interface NodeServerContext {
  readonly req?: IncomingMessage
}

const bearerToken = (headers: Headers) => {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(headers.get('authorization') ?? '')
  return match?.[1]
}

/** Authenticates the bearer token and works out the client the audit log should name. */
export async function resolveCaller(
  services: AppServices,
  request: Request,
  socketIp: string | undefined,
): Promise<{ caller: Caller | null; client: ClientInfo }> {
  const transport = transportClient({
    socketIp,
    headers: request.headers,
    trustedProxies: services.config.trustedProxies,
  })
  const token = bearerToken(request.headers)
  if (token === undefined) return { caller: null, client: transport }
  const authentication = await authenticate(services.db, token)
  if (!authentication.ok) throw unauthenticatedError('The bearer token is not valid (unknown, expired or disabled).')
  const { caller } = authentication
  return { caller, client: caller.trustForwardedInfo ? withForwardedClient(transport, request.headers) : transport }
}

export function createContextFactory(services: AppServices) {
  return async (initial: YogaInitialContext & NodeServerContext): Promise<RequestContext> => {
    const { caller, client } = await resolveCaller(services, initial.request, initial.req?.socket.remoteAddress)
    return {
      services,
      prisma: services.db.prisma,
      mailer: services.mailer,
      encryptionKey: services.encryptionKey,
      captchaVerifyUrl: services.config.captchaVerifyUrl,
      caller,
      permissions: new Permissions(
        caller?.roles ?? [],
        services.config.roleGrants,
        caller ? membershipRolesLoader(services.db.prisma, caller.identityId) : undefined,
      ),
      actor: { identityId: caller?.identityId ?? null, personId: caller?.personId ?? null, client },
      logger: services.logger.child({ identityId: caller?.identityId }),
    }
  }
}
