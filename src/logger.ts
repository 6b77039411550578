import { type DestinationStream, type Logger, type LoggerOptions, pino } from 'pino'

/** Paths whose values never reach the logs: credentials, and any personal data a body may carry. */
const redactedPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["idempotency-key"]',
  'headers.authorization',
  'body',
  'req.body',
  'res.body',
  '*.body',
  '*.sections',
  '*.key',
  '*.secret',
  '*.password',
  '*.databaseUrl',
  '*.connectionString',
]

/**
 * The properties of an error that may be logged. A database error carries the statement
 * (`query`, `internalQuery`), its parameters, the failing row or key (`detail`), a fragment of
 * the value it could not read (`where`, `hint`) and, for a refused request, the raw bytes
 * (`rawPacket`): any of them may hold a victim's personal data, so none is kept. Names of
 * constraints, tables and columns are the schema's, and say what failed.
 */
const loggedProperties = ['code', 'severity', 'constraint', 'table', 'schema', 'column', 'dataType', 'statusCode']

/**
 * Double-quoted parts of a message are values more often than names: PostgreSQL writes `invalid
 * input syntax for type uuid: "…"` and V8 writes `Unexpected token, "…" is not valid JSON`.
 */
const QUOTED = /"(?:[^"\\]|\\.)*"/g

function censor(text: string): string {
  return text.replace(QUOTED, '"[redacted]"')
}

/** An error PostgreSQL (or PGlite) reported: it has a SQLSTATE and a severity. */
function isDatabaseError(error: Record<string, unknown>): boolean {
  return typeof error.code === 'string' && /^[0-9A-Z]{5}$/.test(error.code) && typeof error.severity === 'string'
}

/**
 * The message worth logging. PostgreSQL's own messages name types and constraints and quote any
 * value they mention; a message raised by a function (SQLSTATE class P0) can say anything.
 */
function safeMessage(source: Record<string, unknown>): string {
  if (typeof source.message !== 'string') return ''
  if (isDatabaseError(source) && String(source.code).startsWith('P0')) return '[redacted]'
  return censor(source.message)
}

interface SerializedError {
  type: string
  message: string
  stack?: string
  cause?: SerializedError
  [property: string]: unknown
}

/** Serialises an error for the log without any value it may carry; causes are serialised the same way. */
export function serializeError(error: unknown, depth = 0): SerializedError {
  if (!(error instanceof Error) && (error === null || typeof error !== 'object')) {
    return { type: typeof error, message: '[redacted]' }
  }
  const source = error as Error & Record<string, unknown>
  const type = source.constructor?.name ?? 'Object'
  const message = safeMessage(source)
  const serialized: SerializedError = { type, message }
  if (typeof source.stack === 'string') {
    const frames = source.stack.split('\n').filter((line) => /^\s+at /.test(line))
    serialized.stack = [`${source.name ?? type}: ${message}`, ...frames].join('\n')
  }
  for (const property of loggedProperties) {
    const value = source[property]
    if (typeof value === 'string' || typeof value === 'number') serialized[property] = value
  }
  if (source.cause !== undefined && depth < 5) serialized.cause = serializeError(source.cause, depth + 1)
  if (Array.isArray(source.errors) && depth < 5) {
    serialized.errors = source.errors.slice(0, 10).map((inner: unknown) => serializeError(inner, depth + 1))
  }
  return serialized
}

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: redactedPaths, censor: '[redacted]' },
    serializers: { err: serializeError, error: serializeError },
  }
}

/** The process's logger; `destination` defaults to standard output. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return destination ? pino(loggerOptions(level), destination) : pino(loggerOptions(level))
}
