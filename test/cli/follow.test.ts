import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { AuthLogEntryJson } from '../../src/audit/export.js'
import { follow } from '../../src/cli/log.js'
import { ServerSource } from '../../src/cli/logSource.js'
import { type TestApp, startTestApp } from '../testkit/app.js'
import { seedLogEntries, tamper } from '../testkit/fixtures.js'

/**
 * `custos log --follow` against a real server: an entry committed after the first page was read,
 * within the millisecond of the newest entry shown, is still printed (it comes later in the chain).
 */

let app: TestApp
beforeAll(async () => {
  app = await startTestApp()
})
afterAll(() => app?.stop())

it('prints an entry committed after the first page within the millisecond of the newest shown', async () => {
  const identifier = `follow-${randomUUID()}@example.test`
  const filter = { personInputIdentifier: identifier }
  const shownAt = new Date(Date.now() - 1_000)
  await seedLogEntries(app, [{ personInputIdentifier: identifier, createdAt: shownAt }])
  const initial = (await new ServerSource(app.url, app.rootToken).page(filter, 10, null)).entries.reverse()
  expect(initial).toHaveLength(1)

  const lateId = randomUUID()
  // The late entry commits just after the first page: same time as the newest shown, a later sequence.
  class LateEntrySource extends ServerSource {
    private firstRead = true
    override async page(...args: Parameters<ServerSource['page']>) {
      if (this.firstRead) {
        this.firstRead = false
        await tamper(
          app.app.services.db,
          `INSERT INTO person_auth_log (id, type, success, created_at, person_input_identifier, metadata, event_data, sequence, hash)
           VALUES ($1, 'login', false, $2, $3, '{}', '{}', 1, decode(repeat('00', 32), 'hex'))`,
          [lateId, shownAt.toISOString(), identifier],
        )
      }
      return super.page(...args)
    }
  }
  const source = new LateEntrySource(app.url, app.rootToken)
  const printed: AuthLogEntryJson[] = []
  const stop = new AbortController()
  // A follower that missed it would wait for ever: it has had its chance after a few polls.
  const giveUp = setTimeout(() => stop.abort(), 3_000)
  await follow(source, filter, initial, 100, (entries) => {
    printed.push(...entries)
    if (printed.length > 0) stop.abort()
  }, stop.signal)
  clearTimeout(giveUp)
  expect(printed.map((entry) => entry.id)).toEqual([lateId])
})
