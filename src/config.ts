import path from 'node:path'

export interface Config {
  readonly host: string
  readonly port: number
  /** PostgreSQL connection string; without it the service runs on embedded PGlite in `dataDir`. */
  readonly databaseUrl: string | undefined
  /** Schema to work in on PostgreSQL (created if missing); `public` by default. */
  readonly databaseSchema: string
  /**
   * PostgreSQL only: the `application_name` of every connection, to find the service's sessions in
   * `pg_stat_activity`; `trm-api`, or `trm-api:<schema>` outside `public`, unless set.
   */
  readonly databaseApplicationName: string | undefined
  /** PostgreSQL only: how long a request waits for a connection, new or free in the pool, before it answers 503. */
  readonly databaseConnectTimeoutMs: number
  readonly dataDir: string
  readonly logLevel: string
  /** The bearer token a Prometheus scraper sends to `/metrics`; no `/metrics` without one. */
  readonly metricsToken?: string | undefined
  /** Seed the demo data set into an empty database: `auto` seeds only the embedded one. */
  readonly demoData: 'auto' | 'always' | 'never'
  readonly bodyLimitBytes: number
  /** The largest attachment (a scanned document) accepted, in bytes; larger uploads are refused with 413. */
  readonly attachmentMaxBytes: number
  readonly rateLimitPerMinute: number
  readonly authFailuresPerMinute: number
  /** How many API processes share the two limits above; each process enforces its share of them. */
  readonly rateLimitProcesses: number
  readonly trustProxy: boolean
  /** How long a client has to send a whole request, headers and body (then 408 and the socket closes). */
  readonly requestTimeoutMs: number
  /** How long a client has to send the request's headers; at most `requestTimeoutMs`. */
  readonly headersTimeoutMs: number
  /** How long an idle keep-alive connection stays open between requests. */
  readonly keepAliveTimeoutMs: number
  /** How long a socket may stay silent before it is closed; longer than the longest long poll, or 0 for never. */
  readonly connectionTimeoutMs: number
  /** The most sockets one process holds open; 0 for no limit. */
  readonly maxConnections: number
  /** Run the background jobs in this process (`in-process`), or leave them to `npm run worker` processes (`external`). */
  readonly jobs: 'in-process' | 'external'
  /** How often a worker looks for job runs whose worker died, to retry them. */
  readonly jobSuperviseSeconds: number
  /**
   * The Ed25519 private key that signs audit checkpoints, as a JWK or PKCS8 PEM; on the embedded
   * database one is made in the data directory when this is not set.
   */
  readonly auditSigningKey: string | undefined
  /** The least time between two signed checkpoints of the audit chain. */
  readonly auditCheckpointMinutes: number
  /**
   * The master keys that wrap the data key of every case, `kid:base64,kid:base64` (32 bytes each);
   * on the embedded database a key file in the data directory is made when this is not set.
   */
  readonly dataEncryptionKeys: string | undefined
  /** The master key that wraps new data keys; the last of `dataEncryptionKeys` when not set. */
  readonly dataEncryptionKeyId: string | undefined
  /** The list of destroyed data keys, kept outside the database and applied again at start. */
  readonly erasedKeysFile: string
  /**
   * How long a closed case is kept before the retention job erases it, per procedure (ISO 8601
   * durations, from the case's final step), and for any other procedure.
   */
  readonly retention: { readonly bySop: Readonly<Record<string, string>>; readonly otherwise: string }
  /** Statistical disclosure control of the indicators: counts of cases from 1 to this − 1 are suppressed. */
  readonly statisticsThreshold: number
  readonly webhooks: {
    /** Development only: let webhooks go to http URLs and to loopback, link-local and private addresses. */
    readonly allowPrivateTargets: boolean
    readonly timeoutSeconds: number
    readonly retryLimit: number
    readonly retryDelaySeconds: number
    readonly disableAfterFailedDeliveries: number
    /** Deliveries in flight at once in one process. */
    readonly concurrency: number
    /** Deliveries in flight at once to one endpoint, across all processes. */
    readonly perEndpointInFlight: number
    /** Consecutive failed attempts at one endpoint that pause its deliveries in a process. */
    readonly breakerFailures: number
    /** How long such a pause lasts before the endpoint is tried again. */
    readonly breakerCooldownSeconds: number
  }
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
    databaseApplicationName: applicationName(env, 'DATABASE_APPLICATION_NAME'),
    databaseConnectTimeoutMs: integer(env, 'DATABASE_CONNECT_TIMEOUT_MS', 10_000, 100, 600_000),
    dataDir: path.resolve(env.DATA_DIR ?? 'data'),
    logLevel: oneOf(env, 'LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    demoData: oneOf(env, 'DEMO_DATA', 'auto', ['auto', 'always', 'never']),
    bodyLimitBytes: integer(env, 'BODY_LIMIT_BYTES', 1_048_576, 1024, 64 * 1_048_576),
    attachmentMaxBytes: integer(env, 'ATTACHMENT_MAX_BYTES', 10 * 1_048_576, 1024, 64 * 1_048_576),
    rateLimitPerMinute: integer(env, 'RATE_LIMIT_PER_MINUTE', 600, 1, 1_000_000),
    authFailuresPerMinute: integer(env, 'AUTH_FAILURES_PER_MINUTE', 20, 1, 1_000_000),
    rateLimitProcesses: integer(env, 'RATE_LIMIT_PROCESSES', 1, 1, 1000),
    trustProxy: oneOf(env, 'TRUST_PROXY', 'false', ['true', 'false']) === 'true',
    requestTimeoutMs: integer(env, 'REQUEST_TIMEOUT_MS', 30_000, 1_000, 600_000),
    headersTimeoutMs: integer(env, 'HEADERS_TIMEOUT_MS', 10_000, 1_000, 600_000),
    keepAliveTimeoutMs: integer(env, 'KEEP_ALIVE_TIMEOUT_MS', 72_000, 1_000, 600_000),
    connectionTimeoutMs: integer(env, 'CONNECTION_TIMEOUT_MS', 60_000, 0, 3_600_000),
    maxConnections: integer(env, 'MAX_CONNECTIONS', 0, 0, 1_000_000),
    jobs: oneOf(env, 'JOBS', 'in-process', ['in-process', 'external']),
    jobSuperviseSeconds: integer(env, 'JOB_SUPERVISE_SECONDS', 60, 1, 3600),
    auditSigningKey: env.AUDIT_SIGNING_KEY || undefined,
    metricsToken: env.METRICS_TOKEN || undefined,
    auditCheckpointMinutes: integer(env, 'AUDIT_CHECKPOINT_MINUTES', 60, 1, 10_080),
    dataEncryptionKeys: env.DATA_ENCRYPTION_KEYS || undefined,
    dataEncryptionKeyId: env.DATA_ENCRYPTION_KEY_ID || undefined,
    erasedKeysFile: path.resolve(env.ERASED_KEYS_FILE || path.join(env.DATA_DIR ?? 'data', 'erased-keys.jsonl')),
    retention: Object.freeze({
      bySop: Object.freeze({ ...DEFAULT_RETENTION, ...durations(env, 'RETENTION_PERIODS') }),
      otherwise: duration(env, 'RETENTION_DEFAULT', 'P5Y'),
    }),
    statisticsThreshold: integer(env, 'STATISTICS_THRESHOLD', 5, 2, 100),
    webhooks: Object.freeze({
      allowPrivateTargets: oneOf(env, 'WEBHOOK_ALLOW_PRIVATE_TARGETS', 'false', ['true', 'false']) === 'true',
      timeoutSeconds: integer(env, 'WEBHOOK_TIMEOUT_SECONDS', 10, 1, 60),
      retryLimit: integer(env, 'WEBHOOK_RETRY_LIMIT', 8, 0, 20),
      retryDelaySeconds: integer(env, 'WEBHOOK_RETRY_DELAY_SECONDS', 30, 1, 3600),
      disableAfterFailedDeliveries: integer(env, 'WEBHOOK_DISABLE_AFTER_FAILED_DELIVERIES', 5, 1, 1000),
      concurrency: integer(env, 'WEBHOOK_CONCURRENCY', 64, 1, 1000),
      perEndpointInFlight: integer(env, 'WEBHOOK_PER_ENDPOINT_IN_FLIGHT', 16, 1, 1000),
      breakerFailures: integer(env, 'WEBHOOK_BREAKER_FAILURES', 5, 1, 1000),
      breakerCooldownSeconds: integer(env, 'WEBHOOK_BREAKER_COOLDOWN_SECONDS', 60, 1, 3600),
    }),
  }
  if (config.headersTimeoutMs > config.requestTimeoutMs) {
    throw new ConfigError('HEADERS_TIMEOUT_MS must not exceed REQUEST_TIMEOUT_MS: the headers are part of the request')
  }
  if (config.connectionTimeoutMs > 0 && config.connectionTimeoutMs <= LONGEST_POLL_MS) {
    throw new ConfigError(
      `CONNECTION_TIMEOUT_MS must be 0 or more than ${LONGEST_POLL_MS}: a long poll of the event feed is silent that long`,
    )
  }
  return Object.freeze(config)
}

/**
 * Closed cases are kept five years (the usual limitation period for claims about assistance
 * given), a child's ten, so that the file outlives the child's coming of age.
 */
const DEFAULT_RETENTION: Record<string, string> = { 'adult-return': 'P5Y', 'child-return': 'P10Y' }

const ISO_DURATION = /^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$/

function duration(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (!ISO_DURATION.test(raw)) throw new ConfigError(`${name} must be an ISO 8601 duration such as P5Y, not "${raw}"`)
  return raw
}

/** `sop-id:P5Y,other-sop:P10Y`. */
function durations(env: NodeJS.ProcessEnv, name: string): Record<string, string> {
  const raw = env[name]
  if (raw === undefined || raw === '') return {}
  const entries = raw.split(',').map((entry) => entry.trim().split(':'))
  for (const entry of entries) {
    if (entry.length !== 2 || !/^[a-z0-9-]+$/.test(entry[0] ?? '') || !ISO_DURATION.test(entry[1] ?? '')) {
      throw new ConfigError(
        `${name} must be "<procedure id>:<ISO 8601 duration>" entries, comma-separated, not "${raw}"`,
      )
    }
  }
  return Object.fromEntries(entries)
}

/** The longest `wait` the contract allows on the event feed. */
const LONGEST_POLL_MS = 30_000

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

function applicationName(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name]
  if (raw === undefined || raw === '') return undefined
  if (!/^[A-Za-z0-9._:-]{1,63}$/.test(raw)) {
    throw new ConfigError(`${name} must be 1 to 63 letters, digits, ".", "_", ":" or "-", not "${raw}"`)
  }
  return raw
}

function identifier(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(raw)) {
    throw new ConfigError(`${name} must be a lower-case SQL identifier, not "${raw}"`)
  }
  return raw
}
