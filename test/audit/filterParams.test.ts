import { describe, expect, it } from 'vitest'
import { parseIsoDate } from '../../src/audit/filterParams.js'

describe('parseIsoDate (export parameters and the command line)', () => {
  it('rounds an instant finer than a millisecond up to the next one, as the GraphQL DateTime does', () => {
    expect(parseIsoDate('2026-12-05T06:30:00.2149Z')?.toISOString()).toBe('2026-12-05T06:30:00.215Z')
    expect(parseIsoDate('2026-12-05T06:30:00.214000000Z')?.toISOString()).toBe('2026-12-05T06:30:00.214Z')
    expect(parseIsoDate('2026-12-05T07:30:00.9999+01:00')?.toISOString()).toBe('2026-12-05T06:30:01.000Z')
    expect(parseIsoDate('2026-12-05')?.toISOString()).toBe('2026-12-05T00:00:00.000Z')
    expect(parseIsoDate('2026-02-30')).toBeUndefined()
  })
})
