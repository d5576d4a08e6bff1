import { checkpointPayload } from '../../audit/checkpointFormat.js'
import { type AuthLogCheckpoint as Checkpoint, createCheckpoint, listCheckpoints } from '../../audit/checkpoints.js'
import { type BrokenEntry, type ChainAnchor, type VerificationResult, verifyAuthLog } from '../../audit/integrity.js'
import { AuthLogQueryError, pageSize } from '../../audit/query.js'
import { builder } from '../builder.js'
import { badInputError, rejectingInvalidInput } from '../errors.js'
import { defineResponse } from '../responses.js'
import { READS_AUDIT_LOG } from './logReads.js'

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex')

const AuthLogBreakReason = builder.enumType('AuthLogBreakReason', {
  values: {
    CONTENT_CHANGED: { description: 'The entry does not hash to its stored value: its content (or its predecessor\'s hash) was changed.' },
    ENTRY_MISSING: { description: 'No entry holds this sequence number.' },
    ENTRY_INSERTED: { description: 'The entry claims a sequence number another entry holds, or one past the chain head.' },
    ORDER_CHANGED: { description: 'The entry that belongs at this sequence number was found at another.' },
    CHECKPOINT_MISMATCH: { description: 'The chain disagrees with a signed checkpoint: it was rewritten and re-hashed after it was signed.' },
    CHECKPOINT_SIGNATURE_INVALID: { description: 'A stored checkpoint\'s signature verifies with neither the audit public key nor a retired one.' },
    NOT_ANCHORED: { description: 'Part of an exported range is not covered by a signed checkpoint.' },
  } as const,
})

const AuthLogBrokenEntry = builder.objectRef<BrokenEntry>('AuthLogBrokenEntry').implement({
  description: 'The first place the chain breaks.',
  fields: (t) => ({
    sequence: t.field({ type: 'BigInt', resolve: (entry) => entry.sequence }),
    entryId: t.exposeString('entryId', { nullable: true, description: 'The entry at fault; null when it is missing.' }),
    reason: t.field({ type: AuthLogBreakReason, resolve: (entry) => entry.reason }),
    message: t.exposeString('message'),
  }),
})

const AuthLogChainAnchor = builder.objectRef<ChainAnchor>('AuthLogChainAnchor').implement({
  description: 'Where recomputation started: the beginning (sequence 0, zero hash) or a signed checkpoint.',
  fields: (t) => ({
    sequence: t.field({ type: 'BigInt', resolve: (anchor) => anchor.sequence }),
    hash: t.string({ resolve: (anchor) => hex(anchor.hash) }),
    checkpointId: t.exposeString('checkpointId', { nullable: true }),
  }),
})

const AuthLogVerification = builder.objectRef<VerificationResult>('AuthLogVerification').implement({
  fields: (t) => ({
    ok: t.exposeBoolean('ok'),
    entriesChecked: t.exposeInt('entriesChecked', { description: 'Entries whose hash was recomputed.' }),
    checkpointsChecked: t.exposeInt('checkpointsChecked', { description: 'Signed checkpoints compared with the recomputed chain.' }),
    anchor: t.field({ type: AuthLogChainAnchor, resolve: (result) => result.anchor }),
    lastSequence: t.field({ type: 'BigInt', description: 'The last entry whose hash was reproduced.', resolve: (result) => result.lastSequence }),
    lastHash: t.string({ resolve: (result) => hex(result.lastHash) }),
    firstBroken: t.field({ type: AuthLogBrokenEntry, nullable: true, resolve: (result) => result.firstBroken }),
  }),
})

const AuthLogCheckpointReason = builder.enumType('AuthLogCheckpointReason', {
  values: {
    INTERVAL: { value: 'interval', description: 'Signed because CUSTOS_AUDIT_CHECKPOINT_ENTRIES or _SECONDS was reached.' },
    ON_DEMAND: { value: 'on_demand', description: 'Signed by createAuthLogCheckpoint.' },
    RETENTION: { value: 'retention', description: 'Signed at a partition\'s last entry before retention dropped it.' },
  } as const,
})

const AuthLogCheckpoint = builder.objectRef<Checkpoint>('AuthLogCheckpoint').implement({
  description: 'A signed statement that the chain had `hash` at `sequence`. Verify `signature` (Ed25519, base64) over the UTF-8 bytes of `payload` with authLogPublicKey.',
  fields: (t) => ({
    id: t.exposeString('id'),
    sequence: t.field({ type: 'BigInt', resolve: (checkpoint) => checkpoint.sequence }),
    hash: t.string({ description: 'The entry\'s chain hash, lowercase hex.', resolve: (checkpoint) => hex(checkpoint.hash) }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    payload: t.string({
      description: 'The signed text: custos-audit/v1\\n<sequence>\\n<hash>\\n<createdAt, ISO 8601 UTC with milliseconds>\\n',
      resolve: (checkpoint) => checkpointPayload(checkpoint),
    }),
    signature: t.string({ resolve: (checkpoint) => Buffer.from(checkpoint.signature).toString('base64') }),
    reason: t.field({ type: AuthLogCheckpointReason, resolve: (checkpoint) => checkpoint.reason }),
  }),
})

const CreateAuthLogCheckpointResponse = defineResponse('CreateAuthLogCheckpoint', ['EMPTY_LOG', 'CHAIN_BROKEN'] as const, {
  result: AuthLogCheckpoint,
  extendError: (t) => ({
    firstBroken: t.field({
      type: AuthLogBrokenEntry,
      nullable: true,
      description: 'With CHAIN_BROKEN: where the chain breaks.',
      resolve: (error) => (error.firstBroken as BrokenEntry | undefined) ?? null,
    }),
  }),
})

builder.queryFields((t) => ({
  verifyAuthLog: t.field({
    type: AuthLogVerification,
    description:
      'Recomputes the hash chain of the audit log, from `from` (default: the beginning) to `to` (default: the head), starting at the nearest ' +
      'signed checkpoint, and reports the first broken entry. A range must name entries the log holds: from <= to <= the head (a `from` ' +
      'among entries retention dropped starts at the first one kept); otherwise BAD_USER_INPUT naming the argument. Requires system:viewAuthLog.',
    authScopes: { privilege: 'system:viewAuthLog' },
    extensions: READS_AUDIT_LOG,
    args: { from: t.arg({ type: 'BigInt', required: false }), to: t.arg({ type: 'BigInt', required: false }) },
    resolve: (_root, args, context) =>
      rejectingInvalidInput(() =>
        verifyAuthLog(context.services.db, { from: args.from, to: args.to, publicKey: context.services.auditSigner.verificationKeys }),
      ),
  }),
  authLogCheckpoints: t.field({
    type: [AuthLogCheckpoint],
    description: 'Signed checkpoints, newest first. Requires system:viewAuthLog. limit defaults to 100, at most 500.',
    authScopes: { privilege: 'system:viewAuthLog' },
    extensions: READS_AUDIT_LOG,
    args: { limit: t.arg.int({ required: false }), offset: t.arg.int({ required: false }) },
    resolve: async (_root, args, context) => {
      try {
        const offset = args.offset ?? 0
        if (!Number.isInteger(offset) || offset < 0) throw new AuthLogQueryError('offset must not be negative', 'offset')
        return await listCheckpoints(context.prisma, { limit: pageSize(args.limit), offset })
      } catch (error) {
        if (error instanceof AuthLogQueryError) throw badInputError(error.message, error.argument)
        throw error
      }
    },
  }),
  authLogPublicKey: t.string({
    description: 'The Ed25519 public key (PEM, SPKI) checkpoint signatures verify with; also served at GET /.well-known/custos-audit-key.',
    authScopes: { authenticated: true },
    resolve: (_root, _args, context) => context.services.auditSigner.publicKeyPem,
  }),
  authLogRetiredPublicKeys: t.stringList({
    description:
      'Ed25519 public keys (PEM, SPKI) of signing keys rotated out (CUSTOS_SIGNING_KEY_RETIRED): checkpoints signed before the rotation ' +
      'verify with one of them. Empty when the key was never rotated.',
    authScopes: { authenticated: true },
    resolve: (_root, _args, context) => [...context.services.auditSigner.retiredPublicKeyPems],
  }),
}))

builder.mutationField('createAuthLogCheckpoint', (t) =>
  t.field({
    type: CreateAuthLogCheckpointResponse,
    description:
      'Verifies the chain since the last checkpoint before `sequence` (default: the head) and signs a checkpoint at `sequence`; ' +
      'recorded as an auth_log_checkpoint entry. Sign the last entry of an exported range to prove all of it offline. ' +
      'A sequence past the head, or among entries retention dropped, is BAD_USER_INPUT. Requires system:viewAuthLog.',
    authScopes: { privilege: 'system:viewAuthLog' },
    extensions: READS_AUDIT_LOG,
    args: { sequence: t.arg({ type: 'BigInt', required: false }) },
    resolve: (_root, args, context) =>
      rejectingInvalidInput(() =>
        createCheckpoint(context.services.db, context.services.auditSigner, {
          reason: 'on_demand',
          actor: context.actor,
          at: args.sequence == null ? undefined : BigInt(args.sequence),
        }),
      ),
  }),
)
