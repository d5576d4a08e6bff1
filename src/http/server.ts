import { type IncomingMessage, type ServerResponse, createServer } from 'node:http'
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor'
import { renderGraphiQL } from '@graphql-yoga/render-graphiql'
import { GraphQLError, type ValidationContext } from 'graphql'
import { type Plugin, createGraphQLError, createYoga } from 'graphql-yoga'
import { MAX_LOG_READS, logReadsInBatch, logReadsPerOperation } from '../schema/audit/logReads.js'
import { schema } from '../schema/index.js'
import { useCompiledExecution } from './compiledExecution.js'
import { type AppServices, type NodeServerContext, createContextFactory } from './context.js'
import { rejectUnstorableInput } from './rejectUnstorableInput.js'
import { exportFormatFor, handleAuditLogExport } from './export.js'

export const GRAPHQL_PATH = '/tenant'
/** The Ed25519 public key (PEM, SPKI) that audit log checkpoints verify with. */
export const AUDIT_KEY_PATH = '/.well-known/custos-audit-key'

// GraphiQL with its scripts, styles and workers inlined (yoga's default loads them from a CDN).
// The page is about 9 MB and its options never change, so it is built once.
let graphiqlPage: string | undefined
const renderOfflineGraphiQL: typeof renderGraphiQL = (options) => (graphiqlPage ??= renderGraphiQL(options))

/**
 * Gives every error a machine-readable code: GraphQL validation failures
 * (unknown fields, malformed literals) and variable coercion failures
 * (a malformed DateTime in variables) otherwise reach clients without one.
 */
function useErrorCodes(): Plugin {
  const withCode = (error: GraphQLError, code: string) =>
    error.extensions?.code
      ? error
      : new GraphQLError(error.message, { nodes: error.nodes, source: error.source, positions: error.positions, path: error.path, originalError: error.originalError, extensions: { ...error.extensions, code } })
  return {
    onValidate: () => ({ result, setResult }) => {
      if (result.length > 0) setResult(result.map((error) => withCode(error, 'GRAPHQL_VALIDATION_FAILED')))
    },
    onExecute: () => ({
      onExecuteDone: ({ result, setResult }) => {
        if (!('errors' in result) || !result.errors || result.data !== undefined) return
        // Errors before any resolver ran are the request's fault (variables that do not coerce).
        setResult({ ...result, errors: result.errors.map((error) => withCode(error, 'BAD_USER_INPUT')) })
      },
    }),
  }
}

/**
 * graphql-armor's validation limits (aliases, depth, cost) throw out of validation by default:
 * the client got HTTP 200 and an error with no code whose message began "Syntax Error:". Reported
 * instead, they answer like any failed validation (400, GRAPHQL_VALIDATION_FAILED, useErrorCodes).
 */
const asValidationErrors = {
  propagateOnRejection: false,
  onReject: [
    (context: ValidationContext | null, error: GraphQLError) =>
      context?.reportError(new GraphQLError(error.message.replace(/^Syntax Error: /, ''), { nodes: error.nodes })),
  ],
}

/**
 * Requests yoga cannot read get a JSON error with a code. A POST whose body no parser reads (a
 * content type other than JSON, a GraphQL string or a form) gets 415, where yoga's own answer is a
 * bare 415 with an empty body; a parser's failure is a plain 400 (refusingMalformedJson). Runs
 * after yoga's parsers, which are registered before any plugin.
 */
function useRequestParseErrors(): Plugin {
  return {
    onRequestParse: ({ request, requestParser, setRequestParser, endResponse, fetchAPI }) => {
      if (requestParser) return void setRequestParser(refusingMalformedJson(requestParser))
      // Other methods are yoga's 405.
      if (request.method !== 'POST') return
      const message = 'Send the operation as application/json (or application/graphql, or a URL-encoded form).'
      endResponse(fetchAPI.Response.json({ errors: [{ message, extensions: { code: 'UNSUPPORTED_MEDIA_TYPE' } }] }, { status: 415 }))
    },
  }
}

/** How yoga reads a request's GraphQL parameters. */
type RequestParser = NonNullable<Parameters<NonNullable<Plugin['onRequestParse']>>[0]['requestParser']>

const badRequest = (message: string) => createGraphQLError(message, { extensions: { http: { status: 400 }, code: 'BAD_REQUEST' } })

/**
 * Yoga refuses a JSON body that does not parse (400, BAD_REQUEST), but with the parser's own error
 * (its name, and a message quoting the body) in `extensions.originalError`, and lets the
 * SyntaxError of malformed `variables` or `extensions` in a query string or URL-encoded form
 * escape as a 500. Both become a plain BAD_REQUEST.
 */
function refusingMalformedJson(parse: RequestParser): RequestParser {
  return async (request) => {
    try {
      return await parse(request)
    } catch (error) {
      if (error instanceof SyntaxError) throw badRequest('The variables or extensions parameter is not valid JSON.')
      if (error instanceof GraphQLError && error.extensions.code === 'BAD_REQUEST') throw badRequest(error.message)
      throw error
    }
  }
}

/** The most tokens an operation's text may hold (graphql-armor refuses more, GRAPHQL_PARSE_FAILED). */
const MAX_TOKENS = 5000

/**
 * A request may read the audit log only a few times (src/schema/audit/logReads.ts): each operation
 * is checked by a validation rule, and a batch as a whole once it is parsed. Every operation of a
 * batch over the limit is then answered with the refusal instead of running (the refusal cannot be
 * a validation error: yoga caches those by query text, and the text alone is allowed).
 */
function limitLogReads(): Plugin {
  const refusedBatches = new WeakMap<Request, GraphQLError>()
  return {
    onRequestParse: ({ request }) => ({
      onRequestParseDone: ({ requestParserResult }) => {
        if (!Array.isArray(requestParserResult) || requestParserResult.length < 2) return
        const reads = logReadsInBatch(schema, requestParserResult, MAX_TOKENS)
        if (reads <= MAX_LOG_READS) return
        const message = `A request may read the audit log at most ${MAX_LOG_READS} times; this batch reads it ${reads} times.`
        refusedBatches.set(request, new GraphQLError(message, { extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }))
      },
    }),
    onParams: ({ request, setResult }) => {
      const refusal = refusedBatches.get(request)
      if (refusal) setResult({ errors: [refusal] })
    },
    onValidate: ({ addValidationRule }) => addValidationRule(logReadsPerOperation),
  }
}

/** The largest request body the GraphQL endpoint reads: a batch of ten operations with their variables fits many times over. */
export const MAX_REQUEST_BODY_BYTES = 1024 * 1024

/**
 * A GraphQL request body must announce its size, so the limit holds before a byte of it is read
 * (node's parser then keeps the body to exactly Content-Length bytes). This replaces yoga's own
 * limit, which streams every body through a counting transform: a measurable share of the CPU of
 * each request.
 */
function bodyRefusal(req: IncomingMessage): { status: number; code: string; message: string } | undefined {
  if (req.headers['transfer-encoding'] !== undefined) {
    return { status: 411, code: 'LENGTH_REQUIRED', message: 'A request body must come with a Content-Length header.' }
  }
  if (Number(req.headers['content-length'] ?? 0) > MAX_REQUEST_BODY_BYTES) {
    return { status: 413, code: 'REQUEST_ENTITY_TOO_LARGE', message: `Request body too large: at most ${MAX_REQUEST_BODY_BYTES} bytes.` }
  }
  return undefined
}

function createGraphQLHandler(services: AppServices) {
  return createYoga<NodeServerContext>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    context: createContextFactory(services),
    // Unexpected errors reach clients as "Unexpected error." with no stack; GraphQLErrors we raise pass through.
    maskedErrors: { isDev: false },
    logging: {
      debug: (...args) => services.logger.debug({ args }, 'yoga'),
      info: (...args) => services.logger.info({ args }, 'yoga'),
      warn: (...args) => services.logger.warn({ args }, 'yoga'),
      error: (...args) => services.logger.error({ err: args[0] }, 'yoga error'),
    },
    graphiql: { title: 'Custos tenant API', defaultQuery: '{ me { id roles person { email } } }' },
    renderGraphiQL: renderOfflineGraphiQL,
    landingPage: false,
    batching: { limit: 10 },
    // No operation takes a file.
    multipart: false,
    // Checked before yoga runs (bodyRefusal).
    maxRequestBodySize: false,
    plugins: [
      EnvelopArmorPlugin({
        maxAliases: { n: 50, ...asValidationErrors },
        maxDepth: { n: 12, ...asValidationErrors },
        maxTokens: { n: MAX_TOKENS },
        costLimit: { maxCost: 20_000, ...asValidationErrors },
        blockFieldSuggestion: { enabled: true },
      }),
      useRequestParseErrors(),
      limitLogReads(),
      useErrorCodes(),
      rejectUnstorableInput(),
      useCompiledExecution(),
    ],
  })
}

function sendJson(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
  res.end(JSON.stringify(body))
}

/** Health, readiness, the audit log export and the GraphQL endpoint on one node:http server. */
export function createHttpServer(services: AppServices) {
  const yoga = createGraphQLHandler(services)
  const requestLog = services.logger.child({ component: 'http' })

  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now()
    res.on('finish', () => {
      // Path only: query strings may carry tokens.
      requestLog.info(
        { method: req.method, path: req.url?.split('?')[0], status: res.statusCode, ms: Math.round(performance.now() - started) },
        'request',
      )
    })
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    try {
      if (path === '/health') return sendJson(res, 200, { status: 'ok' })
      if (path === '/ready') {
        const ready = await services.db.ping()
        return sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'database unreachable' })
      }
      const exportFormat = exportFormatFor(path)
      if (exportFormat) return await handleAuditLogExport(services, req, res, exportFormat)
      if (path === AUDIT_KEY_PATH) {
        if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: 'Method not allowed' })
        res.writeHead(200, { 'content-type': 'application/x-pem-file', 'cache-control': 'public, max-age=300' })
        return res.end(req.method === 'HEAD' ? undefined : services.auditSigner.publicKeyPem)
      }
      if (path === GRAPHQL_PATH || path.startsWith(`${GRAPHQL_PATH}/`)) {
        const refusal = bodyRefusal(req)
        if (refusal) return sendJson(res, refusal.status, { errors: [{ message: refusal.message, extensions: { code: refusal.code } }] })
        return await yoga.handle(req, res)
      }
      return sendJson(res, 404, { error: 'Not found' })
    } catch (error) {
      requestLog.error({ err: error }, 'request failed')
      if (!res.headersSent) sendJson(res, 500, { error: 'Internal server error' })
      else res.end()
    }
  })
  // Keep-alive sockets must not hold a graceful shutdown open.
  server.keepAliveTimeout = 5_000
  return server
}
