/**
 * The one place that decides who may do what. Roles grant privileges, written
 * `resource:privilege`; `*` matches any resource or privilege. Every GraphQL
 * field names the privilege it needs (see src/schema/builder.ts), so a field
 * cannot be reached around this module.
 */

export const globalRoles = ['super_admin', 'login', 'person', 'project_creator', 'project_admin'] as const
export type GlobalRole = (typeof globalRoles)[number]

export const isGlobalRole = (role: string): role is GlobalRole => (globalRoles as readonly string[]).includes(role)

/** Every privilege, with the words used when it is refused ("You are not allowed to …"). */
export const privilegeCatalog = {
  'system:viewAuthLog': 'view the audit log',
  'person:signUp': 'sign up',
  'person:signIn': 'sign in',
  'person:self': 'manage your own account',
  'person:createSessionToken': 'create session tokens',
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
} as const

export type Privilege = keyof typeof privilegeCatalog
export type PrivilegePattern = Privilege | `${string}:*` | '*:*'
export type RoleGrants = Readonly<Record<string, readonly PrivilegePattern[]>>

/** What each role may do out of the box. `system:viewAuthLog` and `system:configure` belong to super_admin alone. */
export const defaultRoleGrants: RoleGrants = {
  super_admin: ['*:*'],
  login: ['person:signUp', 'person:signIn', 'person:resetPassword', 'person:signInPasswordless', 'person:signInIDP'],
  person: ['person:self'],
  project_creator: [],
  project_admin: [],
}

const matches = (pattern: PrivilegePattern, privilege: Privilege) => {
  const [resource, action] = privilege.split(':')
  const [patternResource, patternAction] = pattern.split(':')
  return (patternResource === '*' || patternResource === resource) && (patternAction === '*' || patternAction === action)
}

export class Permissions {
  /** @param extraGrants privileges granted to further roles through configuration */
  constructor(
    readonly roles: readonly string[],
    private readonly extraGrants: RoleGrants = {},
  ) {}

  has(privilege: Privilege): boolean {
    return this.roles.some((role) =>
      [...(defaultRoleGrants[role] ?? []), ...(this.extraGrants[role] ?? [])].some((pattern) => matches(pattern, privilege)),
    )
  }
}

export const deniedMessage = (privilege: Privilege) => `You are not allowed to ${privilegeCatalog[privilege]}.`
