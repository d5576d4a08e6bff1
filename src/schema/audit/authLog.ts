import { AuthLogQueryError, type AuthLogRow, queryAuthLog } from '../../audit/query.js'
import { builder } from '../builder.js'
import { badInputError } from '../errors.js'

const AuthLogEntry = builder.objectRef<AuthLogRow>('AuthLogEntry').implement({
  description: 'One person_auth_log row.',
  fields: (t) => ({
    id: t.exposeString('id'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    type: t.exposeString('type', { description: 'An event type from the catalog (see README).' }),
    success: t.exposeBoolean('success'),
    invokedByIdentityId: t.exposeString('identityId', { nullable: true, description: 'The identity that acted.' }),
    personId: t.exposeString('personId', { nullable: true }),
    targetPersonId: t.exposeString('targetPersonId', { nullable: true, description: 'The person acted upon, when not the actor.' }),
    personInputIdentifier: t.exposeString('personInputIdentifier', { nullable: true, description: 'What the caller typed, e.g. an email.' }),
    errorCode: t.exposeString('errorCode', { nullable: true }),
    clientIp: t.exposeString('clientIp', { nullable: true }),
    userAgent: t.exposeString('userAgent', { nullable: true }),
    metadata: t.expose('metadata', { type: 'Json', nullable: true }),
    eventData: t.expose('eventData', { type: 'Json', nullable: true }),
    sequence: t.field({ type: 'BigInt', description: 'Position in the hash chain (README "Integrity").', resolve: (entry) => entry.sequence }),
    hash: t.string({ description: 'Chain hash, lowercase hex: sha256(previous hash || canonical encoding).', resolve: (entry) => Buffer.from(entry.hash).toString('hex') }),
  }),
})

const AuthLogPage = builder.objectRef<{ entries: AuthLogRow[]; hasMore: boolean }>('AuthLogPage').implement({
  fields: (t) => ({
    entries: t.field({ type: [AuthLogEntry], resolve: (page) => page.entries }),
    hasMore: t.exposeBoolean('hasMore', { description: 'True when more entries exist past offset + limit.' }),
  }),
})

const AuthLogFilter = builder.inputType('AuthLogFilter', {
  description: 'All fields are AND-combined; omitted fields are unconstrained.',
  fields: (t) => ({
    types: t.stringList({ required: false, description: 'OR-combined event types.' }),
    success: t.boolean({ required: false }),
    invokedByIdentityId: t.string({ required: false }),
    personId: t.string({ required: false }),
    targetPersonId: t.string({ required: false }),
    personInputIdentifier: t.string({ required: false }),
    createdAfter: t.field({ type: 'DateTime', required: false, description: 'Inclusive lower bound.' }),
    createdBefore: t.field({ type: 'DateTime', required: false, description: 'Exclusive upper bound.' }),
  }),
})

builder.queryField('authLog', (t) =>
  t.field({
    type: AuthLogPage,
    description: 'Reads person_auth_log, newest first. Requires system:viewAuthLog. limit defaults to 100, at most 500.',
    authScopes: { privilege: 'system:viewAuthLog' },
    args: {
      filter: t.arg({ type: AuthLogFilter, required: false }),
      limit: t.arg.int({ required: false }),
      offset: t.arg.int({ required: false }),
    },
    resolve: async (_root, args, context) => {
      try {
        return await queryAuthLog(context.prisma, args)
      } catch (error) {
        if (error instanceof AuthLogQueryError) throw badInputError(error.message, error.argument)
        throw error
      }
    },
  }),
)
