import { randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { components } from '../../openapi/dist/types.js'
import { isDatabaseUnavailable } from '../db/database.js'
import { type Localisable, localiseDetails } from '../i18n/catalogue.js'
import { answerLanguage } from './language.js'
import { type ProblemName, problemCatalogue, problemPage, problemType } from './problems.js'

export type Problem = components['schemas']['Problem']
type FieldError = NonNullable<Problem['errors']>[number]

/** The problem type of an error that names none: the generic one of its status. */
const codes: Partial<Record<number, ProblemName>> = {
  400: 'bad-request',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not-found',
  405: 'method-not-allowed',
  406: 'not-acceptable',
  408: 'request-timeout',
  412: 'stale-version',
  413: 'payload-too-large',
  414: 'uri-too-long',
  415: 'unsupported-media-type',
  428: 'if-match-required',
  429: 'rate-limited',
  431: 'headers-too-large',
  500: 'internal',
  503: 'database-unavailable',
}

/** An error that answers the request with an RFC 9457 problem document. */
export class ProblemError extends Error {
  readonly status: number
  readonly code: ProblemName
  readonly extras: Record<string, unknown>
  readonly headers: Record<string, string>

  constructor(
    status: number,
    detail: string,
    options: { code?: ProblemName; extras?: Record<string, unknown>; headers?: Record<string, string> } = {},
  ) {
    super(detail)
    this.name = 'ProblemError'
    this.status = status
    this.code = options.code ?? codes[status] ?? (status < 500 ? 'bad-request' : 'internal')
    this.extras = options.extras ?? {}
    this.headers = options.headers ?? {}
  }
}

export function notFound(what: string, id: string): ProblemError {
  return new ProblemError(404, `No ${what} ${id}.`)
}

function problemBody(problem: ProblemError, requestId: string, extras = problem.extras): Problem {
  return {
    type: problemType(problem.code),
    title: problemCatalogue[problem.code].title,
    status: problem.status,
    detail: problem.message,
    request_id: requestId,
    ...extras,
  }
}

export function sendProblem(reply: FastifyReply, problem: ProblemError): FastifyReply {
  const requestId = String(reply.request.id)
  // Set here too: errors of the router are answered before any hook has run.
  reply.code(problem.status).headers({
    ...problem.headers,
    'x-request-id': requestId,
    link: `<${problemPage(problem.code)}>; rel="help"`,
  })
  return reply
    .type('application/problem+json')
    .send(problemBody(problem, requestId, localisedExtras(problem.extras, reply)))
}

/** A refusal's `unmet` details said in the caller's language; their codes stay as they are. */
function localisedExtras(extras: Record<string, unknown>, reply: FastifyReply): Record<string, unknown> {
  if (!Array.isArray(extras.unmet)) return extras
  const language = answerLanguage(reply.request, reply)
  return { ...extras, unmet: localiseDetails(extras.unmet as Localisable[], language) }
}

/** Maps every error to a problem document; hides the cause of a 5xx from the client. */
export function registerProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof ProblemError) return sendProblem(reply, error)
    if (error.validation) return sendProblem(reply, validationProblem(error))
    const status = error.statusCode ?? 500
    if (status === 415) {
      return sendProblem(
        reply,
        new ProblemError(415, `Send the body as application/json, not ${request.headers['content-type']}.`),
      )
    }
    if (status >= 400 && status < 500) {
      return sendProblem(reply, new ProblemError(status, error.message))
    }
    if (isDatabaseUnavailable(error)) {
      request.log.warn({ err: error }, 'database unavailable')
      return sendProblem(reply, databaseUnavailable())
    }
    request.log.error({ err: error }, 'request failed')
    return sendProblem(
      reply,
      new ProblemError(500, 'The service failed to handle the request. Quote the request id when reporting it.'),
    )
  })
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, new ProblemError(404, `There is no ${request.method} ${request.url.split('?')[0]}.`)),
  )
}

/** Seconds a client should wait before retrying while the database restarts or fails over. */
export const DATABASE_RETRY_AFTER_SECONDS = 5

export function databaseUnavailable(): ProblemError {
  return new ProblemError(503, 'The database is unavailable for a moment. Retry after the Retry-After delay.', {
    code: 'database-unavailable',
    headers: { 'retry-after': String(DATABASE_RETRY_AFTER_SECONDS) },
  })
}

/**
 * Fastify's `frameworkErrors`: what its router refuses before a route is found (a path that is
 * not percent-encoded UTF-8, a path segment over `maxParamLength`) is a problem like any other.
 */
export function frameworkErrorProblem(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const problem =
    error.code === 'FST_ERR_BAD_URL'
      ? new ProblemError(400, 'The path is not valid percent-encoded UTF-8.', { code: 'bad-url' })
      : error.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? new ProblemError(414, 'A segment of the path is longer than any identifier of this service.')
        : new ProblemError(500, 'The service failed to handle the request. Quote the request id when reporting it.')
  if (problem.status >= 500) reply.log.error({ err: error }, 'router failed')
  sendProblem(reply, problem)
}

/**
 * Fastify's `clientErrorHandler`: a request that Node's HTTP parser refuses (headers over the
 * size limit, a malformed request line, a request that took too long) never becomes a request,
 * so the answer is written to the socket here, still as a problem document with a request id.
 */
export function clientErrorProblem(this: FastifyInstance, error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const problem =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? new ProblemError(431, 'The request line and headers are larger than the service accepts.')
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new ProblemError(408, 'The request was not received in time.')
        : new ProblemError(400, 'The request is not well-formed HTTP/1.1.', { code: 'bad-request' })
  const requestId = randomUUID()
  this.log.debug({ err: error, reqId: requestId }, 'client error')
  // A route may already have answered (say, a 401 before a slow body finished arriving): a second
  // response on the same connection would be garbage to the client.
  const answered = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent
  if (socket.writable && !answered) {
    const body = JSON.stringify(problemBody(problem, requestId))
    socket.write(
      `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status]}\r\n` +
        'Content-Type: application/problem+json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        `x-request-id: ${requestId}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    )
  }
  socket.destroy(error)
}

/** The 400 of an input that does not match the contract, naming each fault as a pointer or a parameter. */
export function validationProblem(error: Pick<FastifyError, 'validation' | 'validationContext'>): ProblemError {
  const part = error.validationContext ?? 'body'
  const errors: FieldError[] = (error.validation ?? []).map((issue) => {
    const params = issue.params as Record<string, unknown>
    const child = (params.missingProperty ?? params.additionalProperty) as string | undefined
    const path = child === undefined ? issue.instancePath : `${issue.instancePath}/${escapePointer(child)}`
    const detail =
      params.additionalProperty !== undefined ? 'is not an allowed property' : (issue.message ?? 'is invalid')
    if (part === 'body') return { pointer: `#${path}`, detail }
    return { parameter: unescapePointer(path.split('/')[1] ?? ''), detail }
  })
  const where = part === 'body' ? 'request body' : part === 'querystring' ? 'query' : part === 'params' ? 'path' : part
  return new ProblemError(400, `The ${where} does not match the contract.`, { code: 'validation', extras: { errors } })
}

function escapePointer(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1')
}

function unescapePointer(segment: string): string {
  return segment.replaceAll('~1', '/').replaceAll('~0', '~')
}
