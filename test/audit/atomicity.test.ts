import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCommand } from '../../src/tenant/command.js'
import { fail, succeed } from '../../src/tenant/outcome.js'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { onPostgres } from '../testkit/database.js'
import { signedInPerson, sql, storedLogRows } from '../testkit/fixtures.js'

let app: TestApp

beforeAll(async () => {
  app = await startTestApp()
})

afterAll(() => app?.stop())

/** While `work` runs, the database refuses new log entries of `type` (so the write after the state change fails). */
async function whileLogRefuses<T>(type: string, work: () => Promise<T>): Promise<T> {
  await sql(app, `ALTER TABLE person_auth_log ADD CONSTRAINT test_refuses_entry CHECK (type <> '${type}') NOT VALID`)
  try {
    return await work()
  } finally {
    await sql(app, 'ALTER TABLE person_auth_log DROP CONSTRAINT test_refuses_entry')
  }
}

/** An unexpected failure reaches the client masked: no stack, no SQL, no table names. */
function expectMasked(text: string) {
  expect(text).toContain('Unexpected error.')
  expect(text).not.toMatch(/stack|\bat .+:\d+:\d+|\.ts:\d+|test_refuses_entry|person_auth_log|constraint|prisma|violat/i)
}

const GRANT = `mutation ($identityId: String!, $roles: [String!]!) {
  addGlobalIdentityRoles(identityId: $identityId, roles: $roles) { ok result { identity { roles } } }
}`

describe('a state change and its entry commit together or not at all', () => {
  it('leaves neither the role change nor an entry when the entry cannot be written', async () => {
    const person = await signedInPerson(app)
    const before = await storedLogRows(app)
    const response = await whileLogRefuses('global_role_grant', () =>
      app.gql(GRANT, { variables: { identityId: person.identityId, roles: ['project_admin'] }, token: app.rootToken }),
    )
    expect(response.data?.addGlobalIdentityRoles ?? null).toBeNull()
    expect(response.errors).toHaveLength(1)
    expectMasked(JSON.stringify(response))
    const [identity] = await sql<{ roles: string[] }>(app, 'SELECT roles FROM identity WHERE id = $1', [person.identityId])
    expect(identity!.roles).toEqual(['person'])
    expect(await storedLogRows(app)).toEqual(before)
    // The operator finds the real cause in the server log.
    expect(app.logOutput()).toContain('test_refuses_entry')

    // Without the obstacle the same call goes through, change and entry together.
    const retried = await app.gql(GRANT, { variables: { identityId: person.identityId, roles: ['project_admin'] }, token: app.rootToken })
    expect(retried.data.addGlobalIdentityRoles.result.identity.roles).toEqual(['person', 'project_admin'])
    expect((await storedLogRows(app)).length).toBe(before.length + 1)
  })

  it('leaves no key and no identity behind when the api_key_create entry cannot be written', async () => {
    const count = async () =>
      (await sql<{ keys: number; identities: number }>(app, 'SELECT (SELECT count(*)::int FROM api_key) AS keys, (SELECT count(*)::int FROM identity) AS identities'))[0]
    const [before, rows] = [await count(), await storedLogRows(app)]
    const response = await whileLogRefuses('api_key_create', () =>
      app.gql('mutation { createGlobalApiKey(description: "doomed", roles: ["login"]) { ok result { apiKey { token } } } }', { token: app.rootToken }),
    )
    expectMasked(JSON.stringify(response))
    expect(await count()).toEqual(before)
    expect(await storedLogRows(app)).toEqual(rows)
  })

  it('leaves no session and no entry when a successful sign-in cannot be recorded', async () => {
    const person = await signedInPerson(app)
    const sessions = async () => (await sql(app, "SELECT id FROM api_key WHERE identity_id = $1 AND type = 'session'", [person.identityId])).length
    const [before, rows] = [await sessions(), await storedLogRows(app)]
    const response = await whileLogRefuses('login', () =>
      app.gql('mutation ($e: String!, $p: String!) { signIn(email: $e, password: $p) { ok result { token } } }', {
        variables: { e: person.email, p: person.password },
        token: app.loginToken,
      }),
    )
    expectMasked(JSON.stringify(response))
    expect(await sessions()).toBe(before)
    expect(await storedLogRows(app)).toEqual(rows)
  })
})

describe('runCommand', () => {
  const actor = { identityId: null, personId: null, client: { ip: '192.0.2.1', userAgent: 'runCommand test' } }
  const identityExists = async (description: string) => (await sql(app, 'SELECT id FROM identity WHERE description = $1', [description])).length > 0

  it('on a failed outcome rolls back the change and keeps only the failure entries', async () => {
    const description = `rolled back ${randomUUID()}`
    const marker = `marker-${randomUUID()}@example.test`
    const outcome = await runCommand(app.app.services.db.prisma, actor, async ({ tx, audit }) => {
      await tx.identity.create({ data: { description, roles: [] } })
      audit({ type: 'login', success: true, personInputIdentifier: marker })
      audit({ type: 'login', success: false, errorCode: 'INVALID_PASSWORD', personInputIdentifier: marker })
      return fail('NOPE', 'refused after a change')
    })
    expect(outcome).toMatchObject({ ok: false, error: { code: 'NOPE' } })
    expect(await identityExists(description)).toBe(false)
    const entries = (await storedLogRows(app)).filter((row) => row.person_input_identifier === marker)
    expect(entries).toMatchObject([{ success: false, error_code: 'INVALID_PASSWORD', client_ip: '192.0.2.1', user_agent: 'runCommand test' }])
  })

  it('on success commits the change together with every entry it queued', async () => {
    const description = `kept ${randomUUID()}`
    const marker = `marker-${randomUUID()}@example.test`
    await runCommand(app.app.services.db.prisma, actor, async ({ tx, audit }) => {
      await tx.identity.create({ data: { description, roles: [] } })
      audit({ type: 'login', success: false, errorCode: 'KEPT', personInputIdentifier: marker })
      audit({ type: 'login', success: true, personInputIdentifier: marker })
      return succeed(null)
    })
    expect(await identityExists(description)).toBe(true)
    // Failure entries of an operation that still answers ok (an unknown email's reset request) are kept too.
    const entries = (await storedLogRows(app)).filter((row) => row.person_input_identifier === marker)
    expect(entries.map((row) => [row.success, row.error_code]).sort()).toEqual([
      [false, 'KEPT'],
      [true, null],
    ])
  })

  it('refuses to record an administrative event as a failure', async () => {
    const before = await storedLogRows(app)
    await expect(
      runCommand(app.app.services.db.prisma, actor, async ({ audit }) => {
        audit({ type: 'global_role_grant', success: false, eventData: { before: { roles: [] }, after: { roles: [] } } })
        return fail('NOPE', 'refused')
      }),
    ).rejects.toThrow(/recorded only on success/)
    expect(await storedLogRows(app)).toEqual(before)
  })

  const entriesOf = async (marker: string) =>
    (await storedLogRows(app)).filter((row) => row.person_input_identifier === marker).map((row) => [row.type, row.success, row.error_code])

  it('rolls back the change when the work throws, still recording the failure entries', async () => {
    const description = `thrown ${randomUUID()}`
    const marker = `marker-${randomUUID()}@example.test`
    await expect(
      runCommand(app.app.services.db.prisma, actor, async ({ tx, audit }) => {
        await tx.identity.create({ data: { description, roles: [] } })
        audit({ type: 'login', success: true, personInputIdentifier: marker })
        audit({ type: 'login', success: false, errorCode: 'INVALID_PASSWORD', personInputIdentifier: marker })
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    expect(await identityExists(description)).toBe(false)
    expect(await entriesOf(marker)).toEqual([['login', false, 'INVALID_PASSWORD']])
  })

  it('still records the failure entries when the database refuses a statement of the work', async () => {
    const id = randomUUID()
    const marker = `marker-${randomUUID()}@example.test`
    await expect(
      runCommand(app.app.services.db.prisma, actor, async ({ tx, audit }) => {
        audit({ type: 'login', success: false, errorCode: 'INVALID_PASSWORD', personInputIdentifier: marker })
        await tx.$executeRaw`INSERT INTO identity (id) VALUES (${id}::uuid)`
        await tx.$executeRaw`INSERT INTO identity (id) VALUES (${id}::uuid)`
        return succeed(null)
      }),
    ).rejects.toThrow(/identity_pkey|unique/i)
    expect(await sql(app, 'SELECT id FROM identity WHERE id = $1', [id])).toEqual([])
    expect(await entriesOf(marker)).toEqual([['login', false, 'INVALID_PASSWORD']])
  })

  it("throws the work's own error when the failure entries cannot be written either", async () => {
    const marker = `marker-${randomUUID()}@example.test`
    await whileLogRefuses('login', () =>
      expect(
        runCommand(app.app.services.db.prisma, actor, async ({ audit }) => {
          audit({ type: 'login', success: false, errorCode: 'INVALID_PASSWORD', personInputIdentifier: marker })
          throw new Error('boom')
        }),
      ).rejects.toThrow(/^boom$/),
    )
    expect(await entriesOf(marker)).toEqual([])
  })

  it.runIf(onPostgres)('runs a command again when PostgreSQL ends it to break a deadlock, recording each entry once', async () => {
    const [first, second] = [`deadlock a ${randomUUID()}`, `deadlock b ${randomUUID()}`]
    const ids = await Promise.all([first, second].map(async (description) => (await app.app.services.db.prisma.identity.create({ data: { description, roles: [] } })).id))
    const marker = `marker-${randomUUID()}@example.test`
    let runs = 0
    // Each locks one row, waits until both hold theirs, then wants the other's: one of the two is ended.
    let holding = 0
    const bothHolding = () =>
      new Promise<void>((resolve) => {
        const check = () => (holding >= 2 || runs > 2 ? resolve() : setTimeout(check, 10))
        check()
      })
    const lockInOrder = (order: string[], label: string) =>
      runCommand(app.app.services.db.prisma, actor, async ({ tx, audit }) => {
        runs++
        await tx.$queryRaw`SELECT 1 FROM identity WHERE id = ${order[0]}::uuid FOR UPDATE`
        holding++
        await bothHolding()
        await tx.$queryRaw`SELECT 1 FROM identity WHERE id = ${order[1]}::uuid FOR UPDATE`
        audit({ type: 'login', success: true, personInputIdentifier: marker, metadata: { reason: label } })
        return succeed(label)
      })
    const outcomes = await Promise.all([lockInOrder(ids, 'a then b'), lockInOrder([...ids].reverse(), 'b then a')])
    expect(outcomes.map((outcome) => outcome.ok)).toEqual([true, true])
    expect(runs).toBe(3)
    const entries = (await storedLogRows(app)).filter((row) => row.person_input_identifier === marker)
    expect(entries.map((row) => (row.metadata as { reason: string }).reason).sort()).toEqual(['a then b', 'b then a'])
  })
})
