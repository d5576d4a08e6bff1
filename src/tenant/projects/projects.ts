import { randomUUID } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import { encrypt } from '../../crypto/encryption.js'
import type { Prisma } from '../../generated/prisma/client.js'
import { issueApiKey } from '../apiKeys/apiKeys.js'
import { requireTokenHash } from '../apiKeys/tokens.js'
import { runCommand, type Transaction } from '../command.js'
import { lockRow } from '../rowLock.js'
import { mergeConfig } from '../config/tenantConfig.js'
import type { TenantContext } from '../context.js'
import { InvalidInputError, requireJsonObject, requireTextWithinLimit } from '../invalidInput.js'
import { fail, succeed } from '../outcome.js'
import { PROJECT_ADMIN_MEMBERSHIP_ROLE } from '../permissions.js'
import { findProjectBySlug, writeMemberships } from './memberships.js'

const slugPattern = /^[a-z0-9][a-z0-9_-]{0,62}$/
const secretKeyPattern = /^[A-Za-z0-9_.-]{1,128}$/

/** The membership role of the API key createProject makes for deployments. */
export const DEPLOYER_ROLE = 'deployer'

export interface ProjectSecretInput {
  readonly key: string
  readonly value: string
}

export interface CreateProjectInput {
  readonly projectSlug: string
  readonly name?: string | null
  readonly config?: unknown
  readonly secrets?: readonly ProjectSecretInput[] | null
  /** The deployer key's token hash, computed by the caller. */
  readonly deployTokenHash?: string | null
  readonly noDeployToken?: boolean | null
}

function checkSecretKey(key: string, argument: string) {
  if (!secretKeyPattern.test(key)) throw new InvalidInputError(`${argument} must be 1-128 characters of A-Z a-z 0-9 _ . -`, argument)
}

/** What a project secret's ciphertext is bound to: it decrypts only as this project's `key`. */
export const projectSecretBinding = (projectId: string, key: string) => `project_secret:${projectId}:${key}`

/** Stores a secret encrypted (AES-256-GCM); a second write of a key replaces it and bumps its version. */
async function storeSecret(context: TenantContext, tx: Transaction, projectId: string, { key, value }: ProjectSecretInput) {
  const valueEncrypted = new Uint8Array(encrypt(context.encryptionKey, value, projectSecretBinding(projectId, key)))
  await tx.projectSecret.upsert({
    where: { projectId_key: { projectId, key } },
    create: { projectId, key, valueEncrypted },
    update: { valueEncrypted, version: { increment: 1 } },
  })
}

/** The argument a deploy token's caller-computed hash comes in. */
const DEPLOY_TOKEN_HASH = 'options.deployTokenHash'

/**
 * Creates a project with its secrets. A caller who could not otherwise manage
 * it (a project_creator) becomes its `admin` member. Unless `noDeployToken`,
 * a deployer API key (membership role `deployer`) is made as well. Each of
 * these is recorded as its own entry: project_create, then
 * project_membership_create and api_key_create when they happen.
 */
export function createProject(context: TenantContext, input: CreateProjectInput) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    if (!slugPattern.test(input.projectSlug)) {
      throw new InvalidInputError('projectSlug must be 1-63 characters of a-z 0-9 _ - and start with a letter or digit.', 'projectSlug')
    }
    const config = input.config == null ? {} : requireJsonObject(input.config, 'config')
    const secrets = input.secrets ?? []
    secrets.forEach(({ key }, index) => checkSecretKey(key, `secrets[${index}].key`))
    const secretKeys = [...new Set(secrets.map((secret) => secret.key))].sort()
    if (secretKeys.length !== secrets.length) throw new InvalidInputError('Secret keys must be unique.', 'secrets')
    if (input.deployTokenHash != null) requireTokenHash(input.deployTokenHash, DEPLOY_TOKEN_HASH)
    requireTextWithinLimit(input.name, 'name')
    const name = input.name ?? input.projectSlug
    // ON CONFLICT DO NOTHING: a concurrent create of the same slug answers ALREADY_EXISTS, not a unique violation.
    const project = { id: randomUUID(), slug: input.projectSlug, name, config: config as Prisma.InputJsonObject }
    const { count } = await tx.project.createMany({ data: [project], skipDuplicates: true })
    if (count === 0) return fail('ALREADY_EXISTS' as const, `Project ${input.projectSlug} already exists.`)
    for (const secret of secrets) await storeSecret(context, tx, project.id, secret)
    audit({ type: 'project_create', success: true, eventData: { projectSlug: project.slug, name, secretKeys } })

    const caller = context.caller
    if (caller && !context.permissions.has('project:update')) {
      const after = await writeMemberships(tx, project.id, caller.identityId, [{ role: PROJECT_ADMIN_MEMBERSHIP_ROLE, variables: [] }])
      audit({
        type: 'project_membership_create',
        success: true,
        targetPersonId: caller.personId,
        eventData: { projectId: project.id, identityId: caller.identityId, before: [], after },
      })
    }
    let deployerApiKey = null
    if (!input.noDeployToken) {
      const description = `Deployer of ${project.slug}`
      deployerApiKey = await issueApiKey(context, tx, { description, tokenHash: input.deployTokenHash, tokenHashArgument: DEPLOY_TOKEN_HASH })
      const memberships = await writeMemberships(tx, project.id, deployerApiKey.identity.id, [{ role: DEPLOYER_ROLE, variables: [] }])
      audit({
        type: 'api_key_create',
        success: true,
        eventData: { ...deployerApiKey.recorded, memberships },
      })
    }
    return succeed({ deployerApiKey })
  })
}

export interface UpdateProjectInput {
  readonly projectSlug: string
  readonly name?: string | null
  readonly config?: unknown
  /** Deep-merge `config` into the stored one instead of replacing it. */
  readonly mergeConfig?: boolean | null
}

/** Changes a project's name and config, recording the values before and after of what changed. */
export function updateProject(context: TenantContext, input: UpdateProjectInput) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    const config = input.config == null ? undefined : requireJsonObject(input.config, 'config')
    requireTextWithinLimit(input.name, 'name')
    await lockRow(tx, 'project', { slug: input.projectSlug })
    const project = await findProjectBySlug(tx, input.projectSlug)
    if (!project) return fail('PROJECT_NOT_FOUND' as const, `Project ${input.projectSlug} not found.`)
    const before: { name?: string; config?: Prisma.JsonValue } = {}
    const after: { name?: string; config?: Prisma.JsonValue } = {}
    if (input.name != null && input.name !== project.name) {
      before.name = project.name
      after.name = input.name
    }
    if (config !== undefined) {
      const next = input.mergeConfig ? mergeConfig(project.config, config) : config
      if (!isDeepStrictEqual(next, project.config)) {
        before.config = project.config
        after.config = next as Prisma.JsonValue
      }
    }
    // The same name and config again: no change, and no project_update in the log.
    if (Object.keys(after).length === 0) return succeed(null)
    await tx.project.update({
      where: { id: project.id },
      data: { name: after.name, config: after.config as Prisma.InputJsonObject | undefined },
    })
    audit({ type: 'project_update', success: true, eventData: { projectSlug: project.slug, before, after } })
    return succeed(null)
  })
}

/** Sets one project secret (encrypted at rest); only the key name is recorded. */
export function setProjectSecret(context: TenantContext, input: { projectSlug: string } & ProjectSecretInput) {
  return runCommand(context.prisma, context.actor, async ({ tx, audit }) => {
    checkSecretKey(input.key, 'key')
    const project = await findProjectBySlug(tx, input.projectSlug)
    if (!project) return fail('PROJECT_NOT_FOUND' as const, `Project ${input.projectSlug} not found.`)
    await storeSecret(context, tx, project.id, input)
    audit({ type: 'project_secret_change', success: true, eventData: { projectSlug: project.slug, key: input.key } })
    return succeed(null)
  })
}
