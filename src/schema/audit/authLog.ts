import {
  type AuthLogPage as AuthLogPageResult,
  type AuthLogRow,
  type AuthLogStats as AuthLogStatsResult,
  type BucketCount,
  type TypeCount,
  AuthLogQueryError,
  MAX_ID_LIST,
  MAX_PAGE_SIZE,
  MAX_STATS_BUCKETS,
  authLogBuckets,
  authLogStats,
  authLogTypes,
  readAuthLogPage,
} from '../../audit/query.js'
import { builder } from '../builder.js'
import { badInputError } from '../errors.js'
import { READS_AUDIT_LOG } from './logReads.js'

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
    sequence: t.field({ type: 'BigInt', description: 'Position in the hash chain (README "Integrity").', resolve: (entry) => BigInt(entry.sequence) }),
    hash: t.string({ description: 'Chain hash, lowercase hex: sha256(previous hash || canonical encoding).', resolve: (entry) => entry.hash }),
  }),
})

const AuthLogPage = builder.objectRef<AuthLogPageResult>('AuthLogPage').implement({
  fields: (t) => ({
    entries: t.field({ type: [AuthLogEntry], resolve: (page) => page.entries }),
    hasMore: t.exposeBoolean('hasMore', { description: 'True when more entries exist past this page.' }),
    nextCursor: t.exposeString('nextCursor', {
      nullable: true,
      description:
        'Pass as `cursor` (with the same filter) for the next page; null when nothing older matches. ' +
        'Stable while new entries arrive, and as fast on page 1,000 as on page 1.',
    }),
  }),
})

const AuthLogFilter = builder.inputType('AuthLogFilter', {
  description: 'All fields are AND-combined; omitted fields are unconstrained; each list matches any of its values.',
  fields: (t) => ({
    types: t.stringList({ required: false, description: 'OR-combined event types.' }),
    typePrefix: t.string({ required: false, description: 'Event types starting with this, e.g. `project_` or `2fa_`.' }),
    success: t.boolean({ required: false }),
    invokedByIdentityId: t.string({ required: false }),
    identityIds: t.stringList({ required: false, description: `Any of these acting identities (at most ${MAX_ID_LIST}).` }),
    personId: t.string({ required: false }),
    personIds: t.stringList({ required: false, description: `Any of these persons (at most ${MAX_ID_LIST}).` }),
    targetPersonId: t.string({ required: false }),
    personInputIdentifier: t.string({ required: false }),
    q: t.string({
      required: false,
      description:
        'Case-insensitive substring of personInputIdentifier, errorCode, userAgent, metadata or eventData (as JSON text). ' +
        'Needs three letters or digits in a row.',
    }),
    clientIp: t.string({ required: false, description: 'An IP address, or a CIDR block such as 10.0.0.0/8.' }),
    createdAfter: t.field({ type: 'DateTime', required: false, description: 'Inclusive lower bound.' }),
    createdBefore: t.field({ type: 'DateTime', required: false, description: 'Exclusive upper bound.' }),
  }),
})

const AuthLogTypeCount = builder.objectRef<TypeCount>('AuthLogTypeCount').implement({
  fields: (t) => ({ type: t.exposeString('type'), count: t.exposeInt('count') }),
})

const AuthLogBucket = builder.enumType('AuthLogBucket', {
  values: Object.keys(authLogBuckets) as (keyof typeof authLogBuckets)[],
  description: 'A bucket of authLogStats: an hour, or a UTC day.',
})

const AuthLogBucketCount = builder.objectRef<BucketCount>('AuthLogBucketCount').implement({
  fields: (t) => ({
    start: t.expose('start', { type: 'DateTime' }),
    count: t.exposeInt('count'),
    types: t.field({ type: [AuthLogTypeCount], resolve: (bucket) => bucket.types }),
  }),
})

const AuthLogStats = builder.objectRef<AuthLogStatsResult>('AuthLogStats').implement({
  fields: (t) => ({
    bucket: t.field({ type: AuthLogBucket, resolve: (stats) => stats.bucket }),
    from: t.expose('from', { type: 'DateTime', description: 'createdAfter, by default 30 days before `to`.' }),
    to: t.expose('to', { type: 'DateTime', description: 'createdBefore, by default now.' }),
    total: t.exposeInt('total'),
    types: t.field({ type: [AuthLogTypeCount], description: 'Per type over the whole window, most frequent first.', resolve: (stats) => stats.types }),
    buckets: t.field({ type: [AuthLogBucketCount], description: 'Every bucket of the window, empty ones included.', resolve: (stats) => stats.buckets }),
  }),
})

/** Invalid arguments reach the client as BAD_USER_INPUT naming the argument. */
async function withBadInput<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read()
  } catch (error) {
    if (error instanceof AuthLogQueryError) throw badInputError(error.message, error.argument)
    throw error
  }
}

builder.queryFields((t) => ({
  authLog: t.field({
    type: AuthLogPage,
    description: `Reads person_auth_log, newest first. Requires system:viewAuthLog. limit defaults to 100, at most ${MAX_PAGE_SIZE}; page with cursor (or offset, not both).`,
    authScopes: { privilege: 'system:viewAuthLog' },
    extensions: READS_AUDIT_LOG,
    args: {
      filter: t.arg({ type: AuthLogFilter, required: false }),
      limit: t.arg.int({ required: false }),
      offset: t.arg.int({ required: false }),
      cursor: t.arg.string({ required: false, description: 'nextCursor of the previous page.' }),
    },
    resolve: (_root, args, context) =>
      withBadInput(() =>
        readAuthLogPage(context.services.db, args, {
          cursors: context.services.cursors,
          recordReadAs: context.services.config.auditReads ? context.actor : null,
        }),
      ),
  }),
  authLogTypes: t.field({
    type: [AuthLogTypeCount],
    description: 'The event types that occurred since `since` (default: 30 days ago), with counts, most frequent first. Requires system:viewAuthLog.',
    authScopes: { privilege: 'system:viewAuthLog' },
    extensions: READS_AUDIT_LOG,
    args: { since: t.arg({ type: 'DateTime', required: false }) },
    resolve: (_root, args, context) => withBadInput(() => authLogTypes(context.prisma, args.since)),
  }),
  authLogStats: t.field({
    type: AuthLogStats,
    description: `Entry counts per bucket and per type, for charts. The window is the filter's createdAfter/createdBefore (default: createdBefore now, createdAfter 30 days before createdBefore), at most ${MAX_STATS_BUCKETS} buckets. Requires system:viewAuthLog.`,
    authScopes: { privilege: 'system:viewAuthLog' },
    extensions: READS_AUDIT_LOG,
    args: {
      filter: t.arg({ type: AuthLogFilter, required: false }),
      bucket: t.arg({ type: AuthLogBucket, required: false, defaultValue: 'DAY' }),
    },
    resolve: (_root, args, context) => withBadInput(() => authLogStats(context.prisma, args.filter, args.bucket ?? 'DAY')),
  }),
}))
