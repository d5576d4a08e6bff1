import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { schema } from '../../src/schema/index.js'
import { startTestApp, type TestApp } from '../testkit/app.js'
import {
  addIdentityProvider,
  addProjectMember,
  configureTenant,
  createGlobalApiKey,
  createProject,
  enableOtp,
  idpRedirect,
  mailedPasswordReset,
  mailedPasswordlessRequest,
  personWithRoles,
  prepareOtp,
  projectAdmin,
  readLog,
  signIn,
  signUpPerson,
  strongPassword,
  totpCode,
  uniqueEmail,
  type SignedInPerson,
  type TestPerson,
} from '../testkit/fixtures.js'
import { databaseFingerprint, logSize } from '../testkit/expectations.js'
import { type MailCatcher, startMailCatcher } from '../testkit/mail.js'
import { type OidcTestProvider, startOidcProvider } from '../testkit/oidc.js'

/**
 * Every query and mutation of the API under every role: allowed calls succeed,
 * denied ones answer FORBIDDEN and change and record nothing. The operations
 * are read from the schema, so a new one without a row fails here.
 */

const roles = ['super_admin', 'project_admin', 'other_project_admin', 'project_creator', 'person', 'login', 'anonymous'] as const
type Role = (typeof roles)[number]

const PROJECT = 'acl'
const everyone: Role[] = roles.filter((role) => role !== 'anonymous')
const persons: Role[] = ['super_admin', 'project_admin', 'other_project_admin', 'project_creator', 'person']
const superAdmin: Role[] = ['super_admin']
const projectAdmins: Role[] = ['super_admin', 'project_admin']
/** The login key's sign-in flows (super_admin holds every privilege). */
const signInClients: Role[] = ['super_admin', 'login']

interface Caller {
  readonly token: string | undefined
  readonly person: SignedInPerson | undefined
}

interface Row {
  /** The operation with its selection; `$`-variables come from `variables`. */
  readonly document: string
  readonly allowed: readonly Role[]
  /** Fresh variables for one call: creates whatever the call acts on. */
  readonly variables?: (caller: Caller) => Promise<Record<string, unknown>>
  /** The call ends the caller's session: give it a session of its own. */
  readonly endsSession?: boolean
  /** The call changes the caller's own account (second factor, password, email): each call gets a new caller of its role. */
  readonly ownAccount?: boolean
}

let app: TestApp
let mail: MailCatcher
let idp: OidcTestProvider
let idpSlug: string
let callers: Record<Role, Caller>
let signInTarget: TestPerson
/** Signs in through the identity provider, whose first sign-in clears the password signInTarget's rows use. */
let idpTarget: TestPerson

const asPerson = (person: SignedInPerson): Caller => ({ token: person.token, person })
/** A caller of each role (persons are new ones, signed in). */
const newCaller: Record<Role, () => Promise<Caller>> = {
  super_admin: async () => asPerson(await personWithRoles(app, ['super_admin'])),
  project_admin: async () => asPerson(await projectAdmin(app, PROJECT)),
  other_project_admin: async () => asPerson(await projectAdmin(app, 'elsewhere')),
  project_creator: async () => asPerson(await personWithRoles(app, ['project_creator'])),
  person: async () => asPerson(await personWithRoles(app, [])),
  login: async () => ({ token: app.loginToken, person: undefined }),
  anonymous: async () => ({ token: undefined, person: undefined }),
}

const random = () => randomBytes(4).toString('hex')
const okFields = 'ok error { code developerMessage }'
const freshPerson = async () => signUpPerson(app)

async function rootCall(document: string, variables: Record<string, unknown>) {
  const response = await app.gql(document, { variables, token: app.rootToken })
  const payload = Object.values(response.data ?? {})[0] as { ok?: boolean } | undefined
  if (!payload?.ok) throw new Error(`setup failed: ${JSON.stringify(response)}`)
}

const freshIdp = async () => ({ slug: await addIdentityProvider(app, { configuration: { url: 'https://idp.example.test', clientId: 'c', clientSecret: 's' } }) })

const member = [{ role: 'editor', variables: [] }]

async function freshMember() {
  const { identityId } = await freshPerson()
  await addProjectMember(app, PROJECT, identityId, member)
  return { id: identityId }
}

/** Gives a person caller an active second factor. */
async function withActiveOtp(caller: Caller) {
  if (caller.person) await enableOtp(app, caller.person)
  return {}
}

const rows: Record<string, Row> = {
  // Queries
  me: { document: '{ me { id } }', allowed: everyone },
  authLog: { document: '{ authLog(limit: 1) { hasMore } }', allowed: superAdmin },
  verifyAuthLog: { document: '{ verifyAuthLog { ok entriesChecked } }', allowed: superAdmin },
  authLogCheckpoints: { document: '{ authLogCheckpoints(limit: 1) { sequence } }', allowed: superAdmin },
  authLogPublicKey: { document: '{ authLogPublicKey }', allowed: everyone },
  authLogRetiredPublicKeys: { document: '{ authLogRetiredPublicKeys }', allowed: everyone },
  createAuthLogCheckpoint: { document: 'mutation { createAuthLogCheckpoint { ok } }', allowed: superAdmin },
  authLogTypes: { document: '{ authLogTypes { type count } }', allowed: superAdmin },
  authLogStats: { document: '{ authLogStats(bucket: DAY) { total buckets { start count } } }', allowed: superAdmin },
  projects: { document: '{ projects { slug } }', allowed: everyone },
  projectBySlug: { document: `{ projectBySlug(slug: "${PROJECT}") { slug } }`, allowed: projectAdmins },
  projectMemberships: {
    document: `query ($identityId: String!) { projectMemberships(projectSlug: "${PROJECT}", identityId: $identityId) { role } }`,
    allowed: projectAdmins,
    variables: async () => ({ identityId: (await freshPerson()).identityId }),
  },
  identityProviders: { document: '{ identityProviders { slug } }', allowed: superAdmin },
  mailTemplates: { document: '{ mailTemplates { type } }', allowed: everyone },
  configuration: { document: '{ configuration { login { baseBackoff } } }', allowed: superAdmin },
  checkResetPasswordToken: {
    document: 'query ($requestId: String!, $token: String!) { checkResetPasswordToken(requestId: $requestId, token: $token) }',
    allowed: signInClients,
    variables: async () => ({ requestId: randomUUID(), token: random() }),
  },

  // Mutations
  signUp: {
    document: `mutation ($email: String!) { signUp(email: $email, password: "Pw-long-enough-1") { ${okFields} } }`,
    allowed: ['super_admin', 'login'],
    variables: async () => ({ email: uniqueEmail() }),
  },
  signIn: {
    document: `mutation ($email: String!, $password: String!) { signIn(email: $email, password: $password) { ${okFields} } }`,
    allowed: ['super_admin', 'login'],
    variables: async () => ({ email: signInTarget.email, password: signInTarget.password }),
  },
  createSessionToken: {
    document: `mutation ($personId: String!) { createSessionToken(personId: $personId) { ${okFields} } }`,
    allowed: superAdmin,
    variables: async () => ({ personId: signInTarget.id }),
  },
  signOut: { document: `mutation { signOut { ${okFields} } }`, allowed: persons, endsSession: true },
  configure: { document: `mutation { configure(config: { login: { revealUserExists: false } }) { ${okFields} } }`, allowed: superAdmin },
  prepareOtp: { document: `mutation { prepareOtp { ${okFields} } }`, allowed: persons },
  confirmOtp: {
    document: `mutation ($code: String!) { confirmOtp(otpToken: $code) { ${okFields} } }`,
    allowed: persons,
    ownAccount: true,
    variables: async (caller) => ({ code: caller.person ? await totpCode(await prepareOtp(app, caller.person.token)) : '000000' }),
  },
  disableOtp: {
    document: `mutation { disableOtp { ${okFields} } }`,
    allowed: persons,
    ownAccount: true,
    variables: withActiveOtp,
  },
  regenerateBackupCodes: {
    document: `mutation { regenerateBackupCodes { ${okFields} } }`,
    allowed: persons,
    ownAccount: true,
    variables: withActiveOtp,
  },
  initSignInPasswordless: {
    // An unknown email: answered ok, and no mail goes out in the background while the next call is measured.
    document: `mutation ($email: String!) { initSignInPasswordless(email: $email) { ${okFields} } }`,
    allowed: signInClients,
    variables: async () => ({ email: uniqueEmail('unknown') }),
  },
  activatePasswordlessOtp: {
    document: `mutation ($requestId: String!, $token: String!, $otpHash: String!) {
      activatePasswordlessOtp(requestId: $requestId, token: $token, otpHash: $otpHash) { ${okFields} }
    }`,
    allowed: signInClients,
    variables: async () => {
      const { requestId, token } = await mailedPasswordlessRequest(app, mail, (await freshPerson()).email)
      return { requestId, token, otpHash: createHash('sha256').update(random()).digest('hex') }
    },
  },
  enableMyPasswordless: { document: `mutation { enableMyPasswordless { ${okFields} } }`, allowed: persons, ownAccount: true },
  disableMyPasswordless: { document: `mutation { disableMyPasswordless { ${okFields} } }`, allowed: persons, ownAccount: true },
  signInPasswordless: {
    document: `mutation ($requestId: String!, $token: String!) { signInPasswordless(requestId: $requestId, validationType: token, token: $token) { ${okFields} } }`,
    allowed: signInClients,
    variables: async () => {
      const { requestId, token } = await mailedPasswordlessRequest(app, mail, (await freshPerson()).email)
      return { requestId, token }
    },
  },
  createResetPasswordRequest: {
    document: `mutation ($email: String!) { createResetPasswordRequest(email: $email) { ${okFields} } }`,
    allowed: signInClients,
    variables: async () => ({ email: uniqueEmail('unknown') }),
  },
  resetPassword: {
    document: `mutation ($token: String!, $password: String!) { resetPassword(token: $token, password: $password) { ${okFields} } }`,
    allowed: signInClients,
    variables: async () => ({ token: (await mailedPasswordReset(app, mail, (await freshPerson()).email)).token, password: strongPassword() }),
  },
  changePassword: {
    document: `mutation ($id: String!, $password: String!) { changePassword(personId: $id, password: $password) { ${okFields} } }`,
    allowed: superAdmin,
    variables: async () => ({ id: (await freshPerson()).id, password: strongPassword() }),
  },
  changeMyPassword: {
    document: `mutation ($current: String!, $new: String!) { changeMyPassword(currentPassword: $current, newPassword: $new) { ${okFields} } }`,
    allowed: persons,
    ownAccount: true,
    variables: async (caller) => ({ current: caller.person?.password ?? strongPassword(), new: strongPassword() }),
  },
  changeProfile: {
    document: `mutation ($id: String!, $email: String!) { changeProfile(personId: $id, email: $email) { ${okFields} } }`,
    allowed: superAdmin,
    variables: async () => ({ id: (await freshPerson()).id, email: uniqueEmail('moved') }),
  },
  changeMyProfile: {
    document: `mutation ($email: String!) { changeMyProfile(email: $email) { ${okFields} } }`,
    allowed: persons,
    ownAccount: true,
    variables: async () => ({ email: uniqueEmail('moved') }),
  },
  initSignInIDP: {
    document: `mutation ($slug: String!, $data: Json) { initSignInIDP(identityProvider: $slug, data: $data) { ${okFields} } }`,
    allowed: signInClients,
    variables: async () => ({ slug: idpSlug, data: { redirectUrl: idp.redirectUri } }),
  },
  signInIDP: {
    document: `mutation ($slug: String!, $data: Json) { signInIDP(identityProvider: $slug, data: $data) { ${okFields} } }`,
    allowed: signInClients,
    variables: async () => ({
      slug: idpSlug,
      data: await idpRedirect(app, idp, idpSlug, { sub: `sub-${idpTarget.id}`, email: idpTarget.email, email_verified: true }),
    }),
  },
  createGlobalApiKey: { document: `mutation { createGlobalApiKey(description: "acl", roles: []) { ${okFields} } }`, allowed: superAdmin },
  disableApiKey: {
    document: `mutation ($id: String!) { disableApiKey(id: $id) { ${okFields} } }`,
    allowed: superAdmin,
    variables: async () => ({ id: (await createGlobalApiKey(app, [])).id }),
  },
  addGlobalIdentityRoles: {
    document: `mutation ($id: String!) { addGlobalIdentityRoles(identityId: $id, roles: ["project_creator"]) { ${okFields} } }`,
    allowed: superAdmin,
    variables: async () => ({ id: (await freshPerson()).identityId }),
  },
  removeGlobalIdentityRoles: {
    document: `mutation ($id: String!) { removeGlobalIdentityRoles(identityId: $id, roles: ["person"]) { ${okFields} } }`,
    allowed: superAdmin,
    variables: async () => ({ id: (await freshPerson()).identityId }),
  },
  revokeSession: {
    document: `mutation ($id: String!) { revokeSession(sessionId: $id) { ${okFields} } }`,
    allowed: persons,
    variables: async (caller) => {
      // A second session of the caller's own (of a bystander for callers that are not persons).
      const owner = caller.person ?? signInTarget
      await signIn(app, owner)
      const response = await app.gql('{ me { sessions { id isCurrent } } }', { token: caller.person?.token ?? (await signIn(app, owner)) })
      return { id: response.data.me.sessions.find((session: { isCurrent: boolean }) => !session.isCurrent).id }
    },
  },
  forceSignOutPerson: {
    document: `mutation ($id: String!) { forceSignOutPerson(personId: $id, reason: "acl") { ${okFields} } }`,
    allowed: superAdmin,
    variables: async () => ({ id: (await freshPerson()).id }),
  },
  disablePerson: {
    document: `mutation ($id: String!) { disablePerson(personId: $id) { ${okFields} } }`,
    allowed: superAdmin,
    variables: async () => ({ id: (await freshPerson()).id }),
  },
  createProject: {
    document: `mutation ($slug: String!) { createProject(projectSlug: $slug, options: { noDeployToken: true }) { ${okFields} } }`,
    allowed: ['super_admin', 'project_creator'],
    variables: async () => ({ slug: `p-${random()}` }),
  },
  updateProject: {
    document: `mutation ($name: String!) { updateProject(projectSlug: "${PROJECT}", name: $name) { ${okFields} } }`,
    allowed: projectAdmins,
    variables: async () => ({ name: `ACL ${random()}` }),
  },
  setProjectSecret: {
    document: `mutation ($value: String!) { setProjectSecret(projectSlug: "${PROJECT}", key: "k", value: $value) { ${okFields} } }`,
    allowed: projectAdmins,
    variables: async () => ({ value: random() }),
  },
  addProjectMember: {
    document: `mutation ($id: String!) { addProjectMember(projectSlug: "${PROJECT}", identityId: $id, memberships: [{ role: "editor", variables: [] }]) { ${okFields} } }`,
    allowed: projectAdmins,
    variables: async () => ({ id: (await freshPerson()).identityId }),
  },
  updateProjectMember: {
    document: `mutation ($id: String!) { updateProjectMember(projectSlug: "${PROJECT}", identityId: $id, memberships: [{ role: "viewer", variables: [] }]) { ${okFields} } }`,
    allowed: projectAdmins,
    variables: freshMember,
  },
  removeProjectMember: {
    document: `mutation ($id: String!) { removeProjectMember(projectSlug: "${PROJECT}", identityId: $id) { ${okFields} } }`,
    allowed: projectAdmins,
    variables: freshMember,
  },
  createApiKey: {
    document: `mutation { createApiKey(projectSlug: "${PROJECT}", memberships: [{ role: "editor", variables: [] }], description: "acl") { ${okFields} } }`,
    allowed: projectAdmins,
  },
  invite: {
    document: `mutation ($email: String!) { invite(email: $email, projectSlug: "${PROJECT}", memberships: [{ role: "editor", variables: [] }]) { ${okFields} } }`,
    allowed: projectAdmins,
    variables: async () => ({ email: uniqueEmail('invited') }),
  },
  unmanagedInvite: {
    document: `mutation ($email: String!) { unmanagedInvite(email: $email, projectSlug: "${PROJECT}", memberships: [{ role: "editor", variables: [] }], options: { password: "Pw-long-enough-1" }) { ${okFields} } }`,
    allowed: superAdmin,
    variables: async () => ({ email: uniqueEmail('unmanaged') }),
  },
  addIDP: {
    document: `mutation ($slug: String!) { addIDP(identityProvider: $slug, type: "oidc", configuration: { url: "https://idp.example.test", clientId: "c", clientSecret: "s" }) { ${okFields} } }`,
    allowed: superAdmin,
    variables: async () => ({ slug: `idp-${random()}` }),
  },
  updateIDP: {
    document: `mutation ($slug: String!) { updateIDP(identityProvider: $slug, configuration: { clientId: "d" }, mergeConfiguration: true) { ${okFields} } }`,
    allowed: superAdmin,
    variables: freshIdp,
  },
  disableIDP: { document: `mutation ($slug: String!) { disableIDP(identityProvider: $slug) { ${okFields} } }`, allowed: superAdmin, variables: freshIdp },
  enableIDP: { document: `mutation ($slug: String!) { enableIDP(identityProvider: $slug) { ${okFields} } }`, allowed: superAdmin, variables: freshIdp },
  addMailTemplate: {
    document: `mutation ($variant: String!) { addMailTemplate(template: { projectSlug: "${PROJECT}", type: FORCED_SIGN_OUT, variant: $variant, subject: "s", content: "c" }) { ${okFields} } }`,
    allowed: projectAdmins,
    variables: async () => ({ variant: random() }),
  },
  removeMailTemplate: {
    document: `mutation ($variant: String!) { removeMailTemplate(templateIdentifier: { projectSlug: "${PROJECT}", type: FORCED_SIGN_OUT, variant: $variant }) { ${okFields} } }`,
    allowed: projectAdmins,
    variables: async () => {
      const variant = random()
      await rootCall(
        `mutation ($variant: String!) { addMailTemplate(template: { projectSlug: "${PROJECT}", type: FORCED_SIGN_OUT, variant: $variant, subject: "s", content: "c" }) { ${okFields} } }`,
        { variant },
      )
      return { variant }
    },
  },
}

beforeAll(async () => {
  mail = await startMailCatcher()
  idp = await startOidcProvider()
  app = await startTestApp({ SMTP_URL: mail.url })
  // optOut: fresh persons may sign in without a password, and each person may toggle it.
  await configureTenant(app, { passwordless: { enabled: 'optOut' } })
  await createProject(app, { slug: PROJECT })
  await createProject(app, { slug: 'elsewhere' })
  idpSlug = await addIdentityProvider(app, { configuration: idp.configuration })
  signInTarget = await signUpPerson(app)
  idpTarget = await signUpPerson(app)
  callers = {} as Record<Role, Caller>
  for (const role of roles) callers[role] = await newCaller[role]()
})
afterAll(async () => {
  await app?.stop()
  await idp?.close()
  await mail?.close()
})

const operations = () => [
  ...Object.keys(schema.getQueryType()?.getFields() ?? {}),
  ...Object.keys(schema.getMutationType()?.getFields() ?? {}),
]

it('has a row for every query and mutation of the schema, and none for operations that do not exist', () => {
  expect(Object.keys(rows).sort()).toEqual(operations().sort())
})

describe.each(Object.entries(rows))('%s', (_name, row) => {
  it.each(roles)('as %s', async (role) => {
    let caller = row.ownAccount ? await newCaller[role]() : callers[role]
    if (row.endsSession && caller.person) caller = { ...caller, token: await signIn(app, caller.person) }
    const variables = (await row.variables?.(caller)) ?? {}
    const allowed = row.allowed.includes(role)
    const before = allowed ? '' : await databaseFingerprint(app)
    const mark = await logSize(app)

    const response = await app.gql(row.document, { variables, token: caller.token })

    if (allowed) {
      expect(response.errors, JSON.stringify(response.errors)).toBeUndefined()
      const payload = Object.values(response.data ?? {})[0] as { ok?: boolean; error?: unknown } | null
      if (payload && typeof payload === 'object' && 'ok' in payload) expect(payload, JSON.stringify(payload)).toMatchObject({ ok: true })
    } else {
      expect(response.errors?.[0]?.extensions?.code, JSON.stringify(response)).toBe('FORBIDDEN')
      expect(response.errors?.[0]?.message).toMatch(/^You are not allowed to .+\.$/)
      expect(await logSize(app)).toBe(mark)
      expect(await databaseFingerprint(app)).toBe(before)
    }
  })
})

describe('project_admin membership rule', () => {
  it('gives a plain member (no project_admin role, no admin membership) view access only', async () => {
    const plain = await personWithRoles(app, [])
    await addProjectMember(app, PROJECT, plain.identityId, [{ role: 'editor', variables: [] }])
    expect((await app.gql(rows.projectBySlug!.document, { token: plain.token })).data.projectBySlug).toEqual({ slug: PROJECT })
    const update = await app.gql(`mutation { updateProject(projectSlug: "${PROJECT}", name: "x") { ok } }`, { token: plain.token })
    expect(update.errors?.[0]).toMatchObject({ message: 'You are not allowed to change this project.', extensions: { code: 'FORBIDDEN' } })
  })

  it('makes a member with role admin a project admin without any global role', async () => {
    const admin = await personWithRoles(app, [])
    await addProjectMember(app, PROJECT, admin.identityId, [{ role: 'admin', variables: [] }])
    const update = await app.gql(`mutation { updateProject(projectSlug: "${PROJECT}", name: "by admin member") { ok } }`, { token: admin.token })
    expect(update.data.updateProject.ok).toBe(true)
  })
})

describe('CUSTOS_ROLE_GRANTS', () => {
  it('grants authLog to a role through configuration, and only to that role', async () => {
    const granted = await startTestApp({ CUSTOS_ROLE_GRANTS: JSON.stringify({ project_admin: ['system:viewAuthLog'] }) })
    try {
      const auditor = await personWithRoles(granted, ['project_admin'])
      const person = await personWithRoles(granted, [])
      const query = '{ authLog(limit: 500) { entries { type } } }'
      const allowed = await granted.gql(query, { token: auditor.token })
      expect(allowed.errors).toBeUndefined()
      expect(allowed.data.authLog.entries.length).toBe((await readLog(granted, { limit: 500 })).entries.length)
      expect((await granted.gql(query, { token: person.token })).errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
    } finally {
      await granted.stop()
    }
  })
})
