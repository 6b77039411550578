import path from 'node:path'

export interface Config {
  readonly host: string
  readonly port: number
  /** PostgreSQL connection string; without it the service runs on embedded PGlite in `dataDir`. */
  readonly databaseUrl: string | undefined
  /** Schema to work in on PostgreSQL (created if missing); `public` by default. */
  readonly databaseSchema: string
  readonly dataDir: string
  readonly logLevel: string
  /** Seed the demo data set into an empty database: `auto` seeds only the embedded one. */
  readonly demoData: 'auto' | 'always' | 'never'
  readonly bodyLimitBytes: number
  readonly rateLimitPerMinute: number
  readonly authFailuresPerMinute: number
  readonly trustProxy: boolean
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const config: Config = {
    host: env.HOST ?? '127.0.0.1',
    port: integer(env, 'PORT', 3000, 0, 65535),
    databaseUrl: env.DATABASE_URL || undefined,
    databaseSchema: identifier(env, 'DATABASE_SCHEMA', 'public'),
    dataDir: path.resolve(env.DATA_DIR ?? 'data'),
    logLevel: oneOf(env, 'LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    demoData: oneOf(env, 'DEMO_DATA', 'auto', ['auto', 'always', 'never']),
    bodyLimitBytes: integer(env, 'BODY_LIMIT_BYTES', 1_048_576, 1024, 64 * 1_048_576),
    rateLimitPerMinute: integer(env, 'RATE_LIMIT_PER_MINUTE', 600, 1, 1_000_000),
    authFailuresPerMinute: integer(env, 'AUTH_FAILURES_PER_MINUTE', 20, 1, 1_000_000),
    trustProxy: oneOf(env, 'TRUST_PROXY', 'false', ['true', 'false']) === 'true',
  }
  return Object.freeze(config)
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, not "${raw}"`)
  }
  return value
}

function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, fallback: T, allowed: readonly T[]): T {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, not "${raw}"`)
  }
  return raw as T
}

function identifier(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(raw)) {
    throw new ConfigError(`${name} must be a lower-case SQL identifier, not "${raw}"`)
  }
  return raw
}
