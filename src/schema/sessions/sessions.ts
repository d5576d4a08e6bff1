import type { ApiKey } from '../../generated/prisma/client.js'
import { disablePerson, forceSignOutPerson, liveSessions, revokeSession } from '../../tenant/sessions/sessionAdmin.js'
import { builder } from '../builder.js'
import { rejectingInvalidInput } from '../errors.js'
import { defineResponse } from '../responses.js'

const SessionInfo = builder.objectRef<ApiKey>('SessionInfo').implement({
  description: 'A live session (a session-type API key) of an identity.',
  fields: (t) => ({
    id: t.exposeString('id'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true }),
    lastIp: t.string({ nullable: true, description: 'Not tracked by Custos: always null.', resolve: () => null }),
    lastUserAgent: t.string({ nullable: true, description: 'Not tracked by Custos: always null.', resolve: () => null }),
    createdIp: t.exposeString('createdIp', { nullable: true }),
    createdUserAgent: t.exposeString('createdUserAgent', { nullable: true }),
    isCurrent: t.boolean({ resolve: (session, _args, context) => session.id === context.caller?.apiKeyId }),
    trustForwardedClientInfo: t.exposeBoolean('trustForwardedInfo'),
  }),
})

builder.prismaObjectField('Identity', 'sessions', (t) =>
  t.field({
    type: [SessionInfo],
    description: "Live sessions. Always visible for the caller's own identity; for others only with session:viewAny (else empty).",
    authScopes: { authenticated: true },
    resolve: (identity, _args, context) =>
      identity.id === context.caller?.identityId || context.permissions.has('session:viewAny') ? liveSessions(context.prisma, identity.id) : [],
  }),
)

const RevokeSessionResponse = defineResponse('RevokeSession', ['SESSION_NOT_FOUND', 'NOT_A_PERSON'] as const)
const DisablePersonResponse = defineResponse('DisablePerson', ['PERSON_ALREADY_DISABLED', 'PERSON_NOT_FOUND'] as const)
const ForceSignOutPersonResponse = defineResponse('ForceSignOutPerson', ['PERSON_NOT_FOUND'] as const)

builder.mutationFields((t) => ({
  revokeSession: t.field({
    type: RevokeSessionResponse,
    nullable: true,
    description: "Ends one session: your own, or anyone's with session:revokeAny.",
    authScopes: { $any: { privilege: 'person:self', $any: { privilege: 'session:revokeAny' } } },
    args: { sessionId: t.arg.string({ required: true }) },
    resolve: (_root, args, context) => revokeSession(context, args.sessionId),
  }),
  forceSignOutPerson: t.field({
    type: ForceSignOutPersonResponse,
    nullable: true,
    description: 'Ends every session of a person and mails them (FORCED_SIGN_OUT).',
    authScopes: { privilege: 'person:forceSignOut' },
    args: { personId: t.arg.string({ required: true }), reason: t.arg.string({ required: false }) },
    resolve: (_root, args, context) => rejectingInvalidInput(() => forceSignOutPerson(context, args.personId, args.reason)),
  }),
  disablePerson: t.field({
    type: DisablePersonResponse,
    nullable: true,
    description: 'Disables a person: their sessions end at once and they can no longer sign in.',
    authScopes: { privilege: 'person:disable' },
    args: { personId: t.arg.string({ required: true }) },
    resolve: (_root, args, context) => disablePerson(context, args.personId),
  }),
}))
