/**
 * The one place that decides who may do what. Roles grant privileges, written
 * `resource:privilege`; `*` matches any resource or privilege. Every GraphQL
 * field names the privilege it needs (see src/schema/builder.ts), so a field
 * cannot be reached around this module.
 *
 * Global roles grant privileges everywhere. Project-scoped privileges
 * (`projectPrivileges`) are held in project P when a global role grants them
 * (super_admin, or a CUSTOS_ROLE_GRANTS entry), or through the caller's place in P:
 * - a member of P (any membership) holds `projectMemberGrants` in P;
 * - a project admin of P holds `projectAdminGrants` in P. The caller is a project
 *   admin of P when its identity has a membership in P with role `admin` (what
 *   createProject gives a project_creator), or when it has the global role
 *   `project_admin` and any membership in P.
 */

export const globalRoles = ['super_admin', 'login', 'person', 'project_creator', 'project_admin'] as const
export type GlobalRole = (typeof globalRoles)[number]

export const isGlobalRole = (role: string): role is GlobalRole => (globalRoles as readonly string[]).includes(role)

/** The membership role that makes an identity a project admin of its project by itself. */
export const PROJECT_ADMIN_MEMBERSHIP_ROLE = 'admin'

/** Every privilege, with the words used when it is refused ("You are not allowed to …"). */
export const privilegeCatalog = {
  'system:viewAuthLog': 'view the audit log',
  'person:signUp': 'sign up',
  'person:signIn': 'sign in',
  'person:self': 'manage your own account',
  'person:createSessionToken': 'create session tokens',
  'person:forceSignOut': 'sign people out',
  'person:disable': 'disable people',
  'session:viewAny': 'view other people\'s sessions',
  'session:revokeAny': 'revoke other people\'s sessions',
  'apiKey:createGlobal': 'create global API keys',
  'apiKey:disable': 'disable API keys',
  'identity:addGlobalRoles': 'grant global roles',
  'identity:removeGlobalRoles': 'revoke global roles',
  'person:resetPassword': 'reset passwords',
  'person:signInPasswordless': 'sign in without a password',
  'person:signInIDP': 'sign in with an identity provider',
  'person:changePassword': 'change the passwords of other persons',
  'person:changeProfile': 'change the profiles of other persons',
  'system:configure': 'configure the tenant',
  'idp:view': 'view identity providers',
  'idp:manage': 'manage identity providers',
  'project:create': 'create projects',
  'project:view': 'view this project',
  'project:update': 'change this project',
  'project:setSecret': 'set this project\'s secrets',
  'member:view': 'view this project\'s members',
  'member:manage': 'manage this project\'s members',
  'apiKey:create': 'create API keys for this project',
  'person:invite': 'invite people to this project',
  'person:unmanagedInvite': 'invite people with a password you choose',
  'mailTemplate:manage': 'manage these mail templates',
} as const

export type Privilege = keyof typeof privilegeCatalog
export type PrivilegePattern = Privilege | `${string}:*` | '*:*'
export type RoleGrants = Readonly<Record<string, readonly PrivilegePattern[]>>

/**
 * Privileges that are checked against one project (`hasInProject`). `mailTemplate:manage`
 * is checked globally for templates without a project.
 */
export const projectPrivileges = [
  'project:view',
  'project:update',
  'project:setSecret',
  'member:view',
  'member:manage',
  'apiKey:create',
  'person:invite',
  'person:unmanagedInvite',
  'mailTemplate:manage',
] as const satisfies readonly Privilege[]
export type ProjectPrivilege = (typeof projectPrivileges)[number]

/** What each global role may do everywhere. `system:viewAuthLog` and `system:configure` belong to super_admin alone. */
export const defaultRoleGrants: RoleGrants = {
  super_admin: ['*:*'],
  login: ['person:signUp', 'person:signIn', 'person:resetPassword', 'person:signInPasswordless', 'person:signInIDP'],
  person: ['person:self'],
  project_creator: ['project:create'],
  // Only within its projects: see projectAdminGrants.
  project_admin: [],
}

/** What any member of a project may do in that project. */
export const projectMemberGrants: readonly PrivilegePattern[] = ['project:view']

/** What a project admin may do in the projects it administers. */
export const projectAdminGrants: readonly PrivilegePattern[] = [
  ...projectMemberGrants,
  'project:update',
  'project:setSecret',
  'member:*',
  'apiKey:create',
  'person:invite',
  'mailTemplate:manage',
]

const matches = (pattern: PrivilegePattern, privilege: Privilege) => {
  const [resource, action] = privilege.split(':')
  const [patternResource, patternAction] = pattern.split(':')
  return (patternResource === '*' || patternResource === resource) && (patternAction === '*' || patternAction === action)
}

/** Whether `pattern` names a privilege of the catalog (or a wildcard over some). */
export const isKnownPrivilegePattern = (pattern: string): pattern is PrivilegePattern =>
  /^[^:]+:[^:]+$/.test(pattern) && Object.keys(privilegeCatalog).some((privilege) => matches(pattern as PrivilegePattern, privilege as Privilege))

/** The caller's membership roles in a project, by slug (empty when none or no such project). */
export type ProjectRolesLoader = (projectSlug: string) => Promise<readonly string[]>

export class Permissions {
  /**
   * @param extraGrants privileges granted to further roles through configuration (CUSTOS_ROLE_GRANTS)
   * @param projectRolesOf the caller's membership roles in a project
   */
  constructor(
    readonly roles: readonly string[],
    private readonly extraGrants: RoleGrants = {},
    private readonly projectRolesOf: ProjectRolesLoader = async () => [],
  ) {}

  /** Held everywhere, through a global role. */
  has(privilege: Privilege): boolean {
    return this.roles.some((role) =>
      [...(defaultRoleGrants[role] ?? []), ...(this.extraGrants[role] ?? [])].some((pattern) => matches(pattern, privilege)),
    )
  }

  /**
   * Whether the caller holds everything global role `role` gives, so it may hand the role out or
   * take it away: it holds the role itself, or every privilege the role grants everywhere (and, for
   * project_admin, every project admin's privilege). Without this, whoever was delegated
   * identity:addGlobalRoles or apiKey:createGlobal could give out privileges it never had.
   */
  mayConfer(role: GlobalRole): boolean {
    if (this.roles.includes(role)) return true
    // person's own person:self is what every sign-up gets (the login key gives it without holding it); what CUSTOS_ROLE_GRANTS adds to it is not.
    const defaults = role === 'person' ? [] : (defaultRoleGrants[role] ?? [])
    const granted = [...defaults, ...(this.extraGrants[role] ?? []), ...(role === 'project_admin' ? projectAdminGrants : [])]
    const privileges = (Object.keys(privilegeCatalog) as Privilege[]).filter((privilege) => granted.some((pattern) => matches(pattern, privilege)))
    return privileges.every((privilege) => this.has(privilege))
  }

  /** Held in the project `projectSlug` (see the module comment for the rule). */
  async hasInProject(privilege: ProjectPrivilege, projectSlug: string): Promise<boolean> {
    if (this.has(privilege)) return true
    const grants = this.projectGrants(await this.projectRolesOf(projectSlug))
    return grants.some((pattern) => matches(pattern, privilege))
  }

  /** What the caller may do in a project where its identity holds `membershipRoles`. */
  private projectGrants(membershipRoles: readonly string[]): readonly PrivilegePattern[] {
    if (membershipRoles.length === 0) return []
    const admin = membershipRoles.includes(PROJECT_ADMIN_MEMBERSHIP_ROLE) || this.roles.includes('project_admin')
    return admin ? projectAdminGrants : projectMemberGrants
  }
}

export const deniedMessage = (privilege: Privilege) => `You are not allowed to ${privilegeCatalog[privilege]}.`
