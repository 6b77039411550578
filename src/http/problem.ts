import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify'
import type { components } from '../../openapi/dist/types.js'
import { isDatabaseUnavailable } from '../db/database.js'

export type Problem = components['schemas']['Problem']
type FieldError = NonNullable<Problem['errors']>[number]

const titles: Record<number, string> = {
  400: 'Invalid request',
  401: 'Authentication required',
  403: 'Not allowed',
  404: 'Not found',
  405: 'Method not allowed',
  406: 'Not acceptable',
  409: 'Conflict',
  412: 'Precondition failed',
  413: 'Request body too large',
  415: 'Unsupported media type',
  422: 'Unprocessable request',
  428: 'Precondition required',
  429: 'Too many requests',
  500: 'Internal error',
  503: 'Service not ready',
}

const codes: Record<number, string> = {
  400: 'bad-request',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not-found',
  405: 'method-not-allowed',
  413: 'payload-too-large',
  415: 'unsupported-media-type',
  429: 'rate-limited',
  500: 'internal',
}

/** An error that answers the request with an RFC 9457 problem document. */
export class ProblemError extends Error {
  readonly status: number
  readonly code: string
  readonly extras: Record<string, unknown>
  readonly headers: Record<string, string>

  constructor(
    status: number,
    detail: string,
    options: { code?: string; extras?: Record<string, unknown>; headers?: Record<string, string> } = {},
  ) {
    super(detail)
    this.name = 'ProblemError'
    this.status = status
    this.code = options.code ?? codes[status] ?? `http-${status}`
    this.extras = options.extras ?? {}
    this.headers = options.headers ?? {}
  }
}

export function notFound(what: string, id: string): ProblemError {
  return new ProblemError(404, `No ${what} ${id}.`)
}

export function problemType(code: string): string {
  return `urn:trm:problem:${code}`
}

export function sendProblem(reply: FastifyReply, problem: ProblemError): FastifyReply {
  const body: Problem = {
    type: problemType(problem.code),
    title: titles[problem.status] ?? 'Error',
    status: problem.status,
    detail: problem.message,
    request_id: String(reply.request.id),
    ...problem.extras,
  }
  return reply.code(problem.status).headers(problem.headers).type('application/problem+json').send(body)
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

function validationProblem(error: FastifyError): ProblemError {
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
