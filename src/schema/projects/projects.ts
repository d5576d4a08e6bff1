import type { Prisma } from '../../generated/prisma/client.js'
import { type Membership as MembershipShape, changeProjectMember, findProjectBySlug, membershipsOf } from '../../tenant/projects/memberships.js'
import { projectMembers, visibleMembershipsOf, visibleProjectsWhere } from '../../tenant/projects/projectQueries.js'
import { createProject, setProjectSecret, updateProject } from '../../tenant/projects/projects.js'
import { isUuid } from '../../tenant/ids.js'
import type { Outcome } from '../../tenant/outcome.js'
import { builder } from '../builder.js'
import { ApiKeyWithToken, membershipValidationField } from '../apiKeys/apiKeys.js'
import { rejectingInvalidInput } from '../errors.js'
import { Identity } from '../identity/identity.js'
import { Membership, MembershipInput } from './membershipTypes.js'
import { defineResponse } from '../responses.js'

const MemberType = builder.enumType('MemberType', { values: ['API_KEY', 'PERSON'] as const })

const ProjectMembersFilter = builder.inputType('ProjectMembersFilter', {
  fields: (t) => ({
    memberType: t.field({ type: MemberType, required: false }),
    email: t.stringList({ required: false }),
    identityId: t.stringList({ required: false }),
    personId: t.stringList({ required: false }),
  }),
})

const ProjectMembersInput = builder.inputType('ProjectMembersInput', {
  fields: (t) => ({
    limit: t.int({ required: false }),
    offset: t.int({ required: false }),
    filter: t.field({ type: ProjectMembersFilter, required: false }),
  }),
})

interface IdentityWithMemberships {
  identity: Prisma.IdentityGetPayload<object>
  memberships: MembershipShape[]
}

const ProjectIdentityRelation = builder.objectRef<IdentityWithMemberships>('ProjectIdentityRelation').implement({
  fields: (t) => ({
    identity: t.field({ type: Identity, resolve: (relation) => relation.identity }),
    memberships: t.field({ type: [Membership], resolve: (relation) => relation.memberships }),
  }),
})

export const Project = builder.prismaObject('Project', {
  fields: (t) => ({
    id: t.exposeString('id'),
    name: t.exposeString('name'),
    slug: t.exposeString('slug'),
    config: t.expose('config', { type: 'Json' }),
    members: t.field({
      type: [ProjectIdentityRelation],
      description: 'Identities with memberships in the project, by identity creation. Requires member:view in the project.',
      authScopes: (project) => ({ projectPrivilege: { privilege: 'member:view', projectSlug: project.slug } }),
      args: {
        input: t.arg({ type: ProjectMembersInput, required: false }),
        memberType: t.arg({ type: MemberType, required: false, deprecationReason: 'Use args' }),
      },
      resolve: (project, args, context) =>
        projectMembers(context, project.id, {
          ...args.input?.filter,
          memberType: args.input?.filter?.memberType ?? args.memberType,
          limit: args.input?.limit,
          offset: args.input?.offset,
        }),
    }),
  }),
})

const IdentityProjectRelation = builder.objectRef<{ project: Prisma.ProjectGetPayload<object>; memberships: MembershipShape[] }>(
  'IdentityProjectRelation',
).implement({
  fields: (t) => ({
    project: t.field({ type: Project, resolve: (relation) => relation.project }),
    memberships: t.field({ type: [Membership], resolve: (relation) => relation.memberships }),
  }),
})

builder.prismaObjectField('Identity', 'projects', (t) =>
  t.field({
    type: [IdentityProjectRelation],
    description: "The identity's project memberships: all of them for your own identity or with a global project:view, else those of projects where you hold member:view.",
    authScopes: { authenticated: true },
    resolve: (identity, _args, context) => visibleMembershipsOf(context, identity.id),
  }),
)

builder.queryFields((t) => ({
  projects: t.prismaField({
    type: ['Project'],
    description: 'All projects with a global project:view (super_admin); otherwise the projects you are a member of.',
    authScopes: { authenticated: true },
    resolve: (query, _root, _args, context) =>
      context.prisma.project.findMany({ ...query, where: visibleProjectsWhere(context), orderBy: { slug: 'asc' } }),
  }),
  projectBySlug: t.prismaField({
    type: 'Project',
    nullable: true,
    authScopes: (_root, args) => ({ projectPrivilege: { privilege: 'project:view', projectSlug: args.slug } }),
    args: { slug: t.arg.string({ required: true }) },
    resolve: (query, _root, args, context) => context.prisma.project.findUnique({ ...query, where: { slug: args.slug } }),
  }),
  projectMemberships: t.field({
    type: [Membership],
    authScopes: (_root, args) => ({ projectPrivilege: { privilege: 'member:view', projectSlug: args.projectSlug } }),
    args: { projectSlug: t.arg.string({ required: true }), identityId: t.arg.string({ required: true }) },
    resolve: async (_root, args, context) => {
      const project = await findProjectBySlug(context.prisma, args.projectSlug)
      return project && isUuid(args.identityId) ? membershipsOf(context.prisma, project.id, args.identityId) : []
    },
  }),
}))

const ProjectSecretInput = builder.inputType('ProjectSecret', {
  fields: (t) => ({ key: t.string({ required: true }), value: t.string({ required: true }) }),
})

const CreateProjectOptions = builder.inputType('CreateProjectOptions', {
  fields: (t) => ({
    deployTokenHash: t.string({ required: false, description: "sha256 hex of the deployer key's token, computed by the caller." }),
    noDeployToken: t.boolean({ required: false, description: 'Create no deployer API key.' }),
  }),
})

const CreateProjectResponse = defineResponse('CreateProject', ['ALREADY_EXISTS', 'INIT_ERROR'] as const, {
  result: builder.simpleObject('CreateProjectResult', {
    fields: (t) => ({ deployerApiKey: t.field({ type: ApiKeyWithToken, nullable: true }) }),
  }),
})
const UpdateProjectResponse = defineResponse('UpdateProject', ['PROJECT_NOT_FOUND'] as const)
const SetProjectSecretResponse = defineResponse('SetProjectSecret', ['PROJECT_NOT_FOUND'] as const)

const membershipResponse = (name: string, codes: readonly string[]) => defineResponse(name, codes, { extendError: membershipValidationField })
const AddProjectMemberResponse = membershipResponse('AddProjectMember', ['PROJECT_NOT_FOUND', 'IDENTITY_NOT_FOUND', 'ALREADY_MEMBER', 'INVALID_MEMBERSHIP'])
const UpdateProjectMemberResponse = membershipResponse('UpdateProjectMember', ['PROJECT_NOT_FOUND', 'NOT_MEMBER', 'INVALID_MEMBERSHIP'])
const RemoveProjectMemberResponse = defineResponse('RemoveProjectMember', ['NOT_MEMBER', 'PROJECT_NOT_FOUND'] as const)

/** A project-scoped privilege in the project named by the `projectSlug` argument. */
const inProject =
  (privilege: 'project:update' | 'project:setSecret' | 'member:manage') =>
  (_root: unknown, args: { projectSlug: string }) => ({ projectPrivilege: { privilege, projectSlug: args.projectSlug } })

builder.mutationFields((t) => ({
  createProject: t.field({
    type: CreateProjectResponse,
    nullable: true,
    description: 'Creates a project (project_create). A project_creator becomes its admin member; a deployer API key is made unless options.noDeployToken.',
    authScopes: { privilege: 'project:create' },
    args: {
      projectSlug: t.arg.string({ required: true }),
      name: t.arg.string({ required: false }),
      config: t.arg({ type: 'Json', required: false }),
      secrets: t.arg({ type: [ProjectSecretInput], required: false }),
      options: t.arg({ type: CreateProjectOptions, required: false }),
      deployTokenHash: t.arg.string({ required: false, deprecationReason: 'Use options' }),
    },
    resolve: (_root, args, context) =>
      rejectingInvalidInput(() =>
        createProject(context, {
          ...args,
          deployTokenHash: args.options?.deployTokenHash ?? args.deployTokenHash,
          noDeployToken: args.options?.noDeployToken,
        }),
      ),
  }),
  updateProject: t.field({
    type: UpdateProjectResponse,
    nullable: true,
    authScopes: inProject('project:update'),
    args: {
      projectSlug: t.arg.string({ required: true }),
      name: t.arg.string({ required: false }),
      config: t.arg({ type: 'Json', required: false }),
      mergeConfig: t.arg.boolean({ required: false }),
    },
    resolve: (_root, args, context) => rejectingInvalidInput(() => updateProject(context, args)),
  }),
  setProjectSecret: t.field({
    type: SetProjectSecretResponse,
    nullable: true,
    description: 'Sets a project secret, encrypted at rest. Secrets are write-only.',
    authScopes: inProject('project:setSecret'),
    args: { projectSlug: t.arg.string({ required: true }), key: t.arg.string({ required: true }), value: t.arg.string({ required: true }) },
    resolve: (_root, args, context) => rejectingInvalidInput(() => setProjectSecret(context, args)),
  }),
  addProjectMember: t.field({
    type: AddProjectMemberResponse,
    nullable: true,
    authScopes: inProject('member:manage'),
    args: {
      projectSlug: t.arg.string({ required: true }),
      identityId: t.arg.string({ required: true }),
      memberships: t.arg({ type: [MembershipInput], required: true }),
    },
    resolve: (_root, args, context) => changeProjectMember(context, 'add', args),
  }),
  updateProjectMember: t.field({
    type: UpdateProjectMemberResponse,
    nullable: true,
    description: "Replaces the identity's memberships in the project with the given ones.",
    authScopes: inProject('member:manage'),
    args: {
      projectSlug: t.arg.string({ required: true }),
      identityId: t.arg.string({ required: true }),
      memberships: t.arg({ type: [MembershipInput], required: true }),
    },
    resolve: (_root, args, context) => changeProjectMember(context, 'update', args),
  }),
  removeProjectMember: t.field({
    type: RemoveProjectMemberResponse,
    nullable: true,
    authScopes: inProject('member:manage'),
    args: { projectSlug: t.arg.string({ required: true }), identityId: t.arg.string({ required: true }) },
    // Removal has no memberships to validate and answers NOT_MEMBER for an unknown identity.
    resolve: (_root, args, context) =>
      changeProjectMember(context, 'remove', { ...args, memberships: null }) as Promise<Outcome<null, 'NOT_MEMBER' | 'PROJECT_NOT_FOUND'>>,
  }),
}))
