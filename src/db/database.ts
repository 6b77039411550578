import { setTimeout as sleep } from 'node:timers/promises'
import type { PGlite } from '@electric-sql/pglite'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import type { DB } from './schema.js'
import { prepareStatements, StatementCounter } from './statements.js'

/** Runs plain SQL scripts, many statements each, inside one transaction (for migrations). */
export interface ScriptSession {
  exec(script: string): Promise<void>
  query<R>(sql: string, params?: unknown[]): Promise<R[]>
}

/** What the job queue needs to keep its own tables next to ours. */
export type JobBackend =
  | { kind: 'postgres'; connectionString: string; schema: string }
  | { kind: 'pglite'; pglite: PGlite }

export interface Database {
  readonly kind: 'postgres' | 'pglite'
  readonly db: Kysely<DB>
  readonly jobBackend: JobBackend
  /** PostgreSQL only: the connection pool, for its metrics. */
  readonly pool?: Pick<pg.Pool, 'totalCount' | 'idleCount' | 'waitingCount'>
  /** Statements this process sent through `db`, transaction control included. */
  readonly statements: StatementCounter
  scriptTransaction<T>(work: (session: ScriptSession) => Promise<T>): Promise<T>
  /**
   * Hears `NOTIFY` on a channel, from this process and every other on the database, until the
   * returned function is called. `hearing(false)` says notifications may be missed from now
   * on (the connection that listens broke); `hearing(true)`, that they are heard (again).
   */
  listen(channel: string, listener: NotificationListener): Promise<() => Promise<void>>
  close(): Promise<void>
}

export interface NotificationListener {
  notified(payload: string): void
  hearing(on: boolean): void
}

export interface DatabaseOptions {
  databaseUrl?: string | undefined
  /** PostgreSQL only: the schema every connection works in (created if missing). */
  databaseSchema?: string
  /** PGlite only: a data directory, or undefined for an in-memory database. */
  dataDir?: string | undefined
  /** PostgreSQL only: `application_name` of every connection; derived from the schema when not given. */
  databaseApplicationName?: string | undefined
  /** PostgreSQL only: how long to wait for a connection, new or free in the pool. */
  databaseConnectTimeoutMs?: number
  /**
   * PostgreSQL only: told when a connection breaks outside any query (the server restarted, or an
   * administrator ended the session). The pool drops the connection and opens new ones as needed.
   */
  onConnectionError?: (error: Error) => void
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.databaseUrl) return openPostgres(options.databaseUrl, options)
  // Loaded only here: on PostgreSQL the embedded database costs the process no memory.
  const { openPglite } = await import('./embedded.js')
  return openPglite(options.dataDir)
}

async function openPostgres(url: string, options: DatabaseOptions): Promise<Database> {
  const schema = options.databaseSchema ?? 'public'
  const onConnectionError = options.onConnectionError ?? (() => {})
  // In the connection string, so that the job queue's own connections carry the name too.
  const connectionString = withApplicationName(url, options.databaseApplicationName, defaultApplicationName(schema))
  if (schema !== 'public') {
    const admin = new pg.Client({ connectionString })
    admin.on('error', onConnectionError)
    await admin.connect()
    try {
      await admin.query(`create schema if not exists "${schema}"`)
    } catch (error) {
      // Two processes creating the schema at once can both pass the "if not exists"; the loser's error means it exists.
      if (!['23505', '42P06'].includes((error as { code?: string }).code ?? '')) throw error
    } finally {
      await admin.end()
    }
  }
  const pool = new pg.Pool({
    connectionString,
    max: 10,
    connectionTimeoutMillis: options.databaseConnectTimeoutMs ?? 10_000,
    ...(schema === 'public' ? {} : { options: `-c search_path="${schema}"` }),
  })
  // Unheard, a connection's error is an uncaught exception that ends the process. The pool hears
  // those of idle connections; a connection that is checked out needs its own listener, for when it
  // breaks between two statements. Either way the pool discards it and the next request reconnects.
  pool.on('error', onConnectionError)
  const statements = new StatementCounter()
  pool.on('connect', (client) => {
    client.on('error', onConnectionError)
    prepareStatements(client, statements)
  })
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) })
  const listeners = new Set<() => Promise<void>>()
  return {
    kind: 'postgres',
    db,
    pool,
    statements,
    jobBackend: { kind: 'postgres', connectionString, schema: schema === 'public' ? 'pgboss' : `${schema}_pgboss` },
    async scriptTransaction(work) {
      const client = await pool.connect()
      try {
        await client.query('begin')
        const result = await work({
          exec: async (script) => {
            await client.query(script)
          },
          query: async (sql, params) => (await client.query(sql, params)).rows,
        })
        await client.query('commit')
        return result
      } catch (error) {
        await client.query('rollback').catch(() => {})
        throw error
      } finally {
        client.release()
      }
    },
    async listen(channel, listener) {
      const stop = listenOnPostgres(connectionString, schema, channel, listener, onConnectionError)
      listeners.add(stop)
      return async () => {
        listeners.delete(stop)
        await stop()
      }
    },
    async close() {
      await Promise.all([...listeners].map((stop) => stop()))
      await db.destroy()
    },
  }
}

/**
 * A connection of its own that listens on a channel, opened again (with backoff) whenever it
 * breaks; while it is down, the listener knows it may miss notifications.
 */
function listenOnPostgres(
  connectionString: string,
  schema: string,
  channel: string,
  listener: NotificationListener,
  onConnectionError: (error: Error) => void,
): () => Promise<void> {
  let stopped = false
  let client: pg.Client | undefined
  let wake: (() => void) | undefined
  const connect = async () => {
    for (let attempt = 0; !stopped; attempt += 1) {
      const next = new pg.Client({
        connectionString,
        ...(schema === 'public' ? {} : { options: `-c search_path="${schema}"` }),
      })
      const lost = new Promise<void>((resolve) => {
        next.on('error', (error) => {
          onConnectionError(error)
          resolve()
        })
        next.on('end', () => resolve())
      })
      next.on('notification', (message) => {
        if (message.channel === channel) listener.notified(message.payload ?? '')
      })
      try {
        await next.connect()
        await next.query(`listen "${channel}"`)
        // Stopped while connecting: nothing else would end this connection, and waiting on it would hang.
        if (stopped) {
          await next.end().catch(() => {})
          return
        }
        client = next
        attempt = 0
        listener.hearing(true)
        await lost
      } catch (error) {
        if (!isDatabaseUnavailable(error)) onConnectionError(error as Error)
      }
      client = undefined
      next.end().catch(() => {})
      if (stopped) return
      listener.hearing(false)
      await new Promise<void>((resolve) => {
        wake = resolve
        setTimeout(resolve, Math.min(500 * 2 ** attempt, 10_000)).unref()
      })
    }
  }
  const running = connect()
  return async () => {
    stopped = true
    wake?.()
    await client?.end().catch(() => {})
    await running
  }
}

function defaultApplicationName(schema: string): string {
  return schema === 'public' ? 'trm-api' : `trm-api:${schema}`
}

/** The connection string naming the application: as given, else as the URL says, else the default. */
function withApplicationName(connectionString: string, given: string | undefined, fallback: string): string {
  let url: URL
  try {
    url = new URL(connectionString)
  } catch {
    return connectionString
  }
  if (given === undefined && url.searchParams.has('application_name')) return connectionString
  url.searchParams.set('application_name', given ?? fallback)
  return url.toString()
}

const unavailableCodes = new Set([
  '57P01', // admin_shutdown: the server is stopping, or an administrator ended the session
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: the server is starting or stopping
  '53300', // too_many_connections
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
])

// pg reports a broken or timed-out connection by message only.
const unavailableMessages =
  /^(Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect)/

/**
 * Whether an error means the database cannot be reached right now (restarting, failing over,
 * unreachable), as opposed to a statement that failed: a request may be retried later.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  const code = (error as { code?: unknown }).code
  // Class 08 is every connection exception.
  if (typeof code === 'string' && (/^08[0-9A-Z]{3}$/.test(code) || unavailableCodes.has(code))) return true
  if (unavailableMessages.test(error.message)) return true
  // Node reports a refused connection to a name with several addresses as an AggregateError.
  if (error instanceof AggregateError) return error.errors.some(isDatabaseUnavailable)
  return false
}

/**
 * Runs `work` again while the database cannot be reached, waiting longer each time (up to 10 s):
 * a process that starts during a restart or a failover waits for the database instead of exiting.
 */
export async function whenDatabaseAvailable<T>(
  work: () => Promise<T>,
  onWait: (error: Error, delayMs: number) => void,
): Promise<T> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await work()
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error
      const delayMs = Math.min(500 * 2 ** attempt, 10_000)
      onWait(error as Error, delayMs)
      await sleep(delayMs)
    }
  }
}
