import { type AuthLogFilter, AuthLogQueryError } from './query.js'

/**
 * AuthLogFilter as URL query parameters, for the export endpoints and the command line that
 * calls them: each filter field is a parameter of the same name; lists repeat the parameter or
 * separate values with commas; booleans are `true`/`false`; dates are ISO 8601.
 */

const listParams = ['types', 'identityIds', 'personIds'] as const
const textParams = [
  'typePrefix',
  'invokedByIdentityId',
  'personId',
  'targetPersonId',
  'personInputIdentifier',
  'q',
  'clientIp',
] as const
const dateParams = ['createdAfter', 'createdBefore'] as const
const booleanParams = ['success'] as const

type FilterParam = (typeof listParams)[number] | (typeof textParams)[number] | (typeof dateParams)[number] | (typeof booleanParams)[number]

const ISO_DATE = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/

/**
 * The log stores created_at to the millisecond, and every instant a reader gives is a bound that
 * takes its own millisecond from below (createdAfter, since) or leaves it out from above
 * (createdBefore): rounding a finer instant up to the next millisecond keeps exactly the entries
 * it names. Date cuts the digits off instead, and `createdAfter …00.2149Z` took in the entries of
 * `.214`.
 */
export function roundedUpToMillisecond(text: string, parsed: Date): Date {
  const finer = /\.\d{3}(\d+)/.exec(text)?.[1]
  return finer !== undefined && /[1-9]/.test(finer) ? new Date(parsed.getTime() + 1) : parsed
}

/** A strict ISO 8601 date or instant (a bare date is midnight UTC; finer than a millisecond, rounded up); undefined when it is not one. */
export function parseIsoDate(text: string): Date | undefined {
  if (!ISO_DATE.test(text)) return undefined
  const date = new Date(text)
  // Date rolls 2003-02-30 over into March; a day the month does not have is an error here.
  const [year, month, day] = text.slice(0, 10).split('-').map(Number) as [number, number, number]
  const calendarDay = new Date(Date.UTC(year, month - 1, day))
  if (calendarDay.getUTCMonth() !== month - 1 || calendarDay.getUTCDate() !== day) return undefined
  return Number.isNaN(date.getTime()) ? undefined : roundedUpToMillisecond(text, date)
}

function parseBoolean(text: string, name: string): boolean {
  if (text === 'true') return true
  if (text === 'false') return false
  throw new AuthLogQueryError(`${name} must be true or false`, name)
}

/**
 * A query string's parameters, refusing one that is not valid percent-encoded UTF-8 (a lone
 * surrogate, a stray byte or `%`): URLSearchParams would turn it into U+FFFD, and the export would
 * search for, and record, text nobody sent.
 */
export function strictSearchParams(search: string): URLSearchParams {
  const decode = (text: string) => {
    try {
      return decodeURIComponent(text.replaceAll('+', ' '))
    } catch {
      return undefined
    }
  }
  for (const pair of search.replace(/^\?/, '').split('&')) {
    const at = pair.indexOf('=')
    const name = at === -1 ? pair : pair.slice(0, at)
    const decodedName = decode(name)
    if (decodedName === undefined || decode(at === -1 ? '' : pair.slice(at + 1)) === undefined) {
      throw new AuthLogQueryError(`${decodedName ?? name} is not valid percent-encoded UTF-8`, decodedName ?? name)
    }
  }
  return new URLSearchParams(search)
}

/**
 * Reads a filter from query parameters. `extra` names further parameters the caller handles
 * itself; any other unknown parameter is an error, so a misspelt filter never widens an export.
 * Only lists may repeat; any other parameter given twice (an extra one too) has no single meaning.
 */
export function filterFromParams(params: URLSearchParams, extra: readonly string[] = []): AuthLogFilter {
  const filter: Record<string, unknown> = {}
  const single = (name: string) => {
    const value = params.get(name) ?? undefined
    // What a caller typed can be empty (signIn with email ""), and authLog finds it: so does the export.
    if (value === '' && name !== 'personInputIdentifier') throw new AuthLogQueryError(`${name} is empty`, name)
    return value
  }
  for (const name of new Set(params.keys())) {
    if (!([...listParams, ...textParams, ...dateParams, ...booleanParams] as string[]).includes(name) && !extra.includes(name)) {
      throw new AuthLogQueryError(`Unknown parameter: ${name}`, name)
    }
    if (!(listParams as readonly string[]).includes(name) && params.getAll(name).length > 1) {
      throw new AuthLogQueryError(`${name} may be given only once`, name)
    }
  }
  for (const name of listParams) {
    if (!params.has(name)) continue
    const values = params.getAll(name).flatMap((value) => value.split(','))
    if (values.some((value) => value === '')) throw new AuthLogQueryError(`${name} holds an empty value`, name)
    filter[name] = values
  }
  for (const name of textParams) {
    const value = single(name)
    if (value !== undefined) filter[name] = value
  }
  for (const name of booleanParams) {
    const value = single(name)
    if (value !== undefined) filter[name] = parseBoolean(value, name)
  }
  for (const name of dateParams) {
    const value = single(name)
    if (value === undefined) continue
    const date = parseIsoDate(value)
    if (!date) throw new AuthLogQueryError(`${name} is not an ISO 8601 date: ${value}`, name)
    filter[name] = date
  }
  return filter as AuthLogFilter
}

/** The query parameters for a filter: what filterFromParams reads back. */
export function filterToParams(filter: AuthLogFilter): URLSearchParams {
  const params = new URLSearchParams()
  for (const [name, value] of Object.entries(filter) as [FilterParam, unknown][]) {
    if (value == null) continue
    if (Array.isArray(value)) for (const item of value) params.append(name, String(item))
    else params.set(name, value instanceof Date ? value.toISOString() : String(value))
  }
  return params
}
