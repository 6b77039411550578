import { type Logger, type LoggerOptions, pino } from 'pino'

/** Paths whose values never reach the logs: credentials, and any personal data a body may carry. */
const redactedPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'body',
  'req.body',
  '*.key',
  '*.secret',
  '*.password',
  '*.databaseUrl',
]

export function loggerOptions(level: string): LoggerOptions {
  return { level, redact: { paths: redactedPaths, censor: '[redacted]' } }
}

export function createLogger(level: string): Logger {
  return pino(loggerOptions(level))
}
