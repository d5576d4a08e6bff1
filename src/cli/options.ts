import { type ParseArgsConfig, parseArgs } from 'node:util'
import { parseIsoDate } from '../audit/filterParams.js'
import { type AuthLogFilter, AuthLogQueryError, parseAuthLogFilter } from '../audit/query.js'

/** Wrong arguments: the message and the command's usage are printed, exit status 2. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>

/** Options every reading command takes: where to read, and which entries. */
export const filterOptions = {
  url: { type: 'string' },
  token: { type: 'string' },
  type: { type: 'string', multiple: true },
  'type-prefix': { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  person: { type: 'string', multiple: true },
  identity: { type: 'string', multiple: true },
  ip: { type: 'string' },
  search: { type: 'string', short: 'q' },
  failed: { type: 'boolean' },
  succeeded: { type: 'boolean' },
} as const satisfies Options

export const filterUsage = `Source (default: DATABASE_URL, else the embedded database in CUSTOS_DATA_DIR):
  --url URL             a running Custos server (or CUSTOS_URL), e.g. http://localhost:4000
  --token TOKEN         its bearer token with system:viewAuthLog (or CUSTOS_TOKEN)
Filters (AND-combined; repeat --type/--person/--identity or separate values with commas):
  --type TYPE           event type, e.g. login
  --type-prefix PREFIX  event types starting with PREFIX, e.g. project_ or 2fa_
  --since ISO           entries at or after this time (ISO 8601)
  --until ISO           entries before this time
  --person ID           entries about this person
  --identity ID         entries by this acting identity
  --ip ADDRESS|CIDR     client address, or every address in a block
  -q, --search TEXT     case-insensitive text in identifier, error, user agent, metadata, event data
  --failed | --succeeded
`

/** Parses argv strictly: an unknown or malformed option is a UsageError. */
export function parseCommandLine<T extends Options>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
}

/** For a command without options: true when --help asks for its usage; anything else is a UsageError. */
export function wantsHelpOnly(args: string[]): boolean {
  return parseCommandLine(args, { help: { type: 'boolean', short: 'h' } }).help === true
}

function dateOption(value: string | undefined, name: string): Date | undefined {
  if (value === undefined) return undefined
  const date = parseIsoDate(value)
  if (!date) throw new UsageError(`--${name} is not an ISO 8601 date: ${value}`)
  return date
}

/**
 * A repeatable option's values. An empty one (`--type ,`) is an error, as on the export endpoint:
 * dropped, it would leave an empty list, which matches nothing on the database and everything in a URL.
 */
function list(values: string[] | undefined, name: string): string[] | undefined {
  const items = values?.flatMap((value) => value.split(','))
  if (items?.includes('')) throw new UsageError(`--${name} holds an empty value`)
  return items
}

type FilterValues = { [K in keyof typeof filterOptions]?: (typeof filterOptions)[K] extends { multiple: true } ? string[] : (typeof filterOptions)[K] extends { type: 'boolean' } ? boolean : string }

/** The filter the options describe, checked the way the server checks it. */
export function filterFromOptions(values: FilterValues): AuthLogFilter {
  if (values.failed && values.succeeded) throw new UsageError('--failed and --succeeded exclude each other')
  // The export endpoint refuses an empty parameter; GraphQL would read it as no constraint.
  if (values['type-prefix'] === '') throw new UsageError('--type-prefix is empty')
  const filter: AuthLogFilter = {
    types: list(values.type, 'type'),
    typePrefix: values['type-prefix'],
    createdAfter: dateOption(values.since, 'since'),
    createdBefore: dateOption(values.until, 'until'),
    personIds: list(values.person, 'person'),
    identityIds: list(values.identity, 'identity'),
    clientIp: values.ip,
    q: values.search,
    success: values.failed ? false : values.succeeded ? true : undefined,
  }
  const defined = Object.fromEntries(Object.entries(filter).filter(([, value]) => value !== undefined)) as AuthLogFilter
  try {
    parseAuthLogFilter(defined)
  } catch (error) {
    if (error instanceof AuthLogQueryError) throw new UsageError(error.message)
    throw error
  }
  return defined
}
