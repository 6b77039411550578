import type { PGlite } from '@electric-sql/pglite'
import { Kysely, PGliteDialect, PostgresDialect } from 'kysely'
import pg from 'pg'
import type { DB } from './schema.js'

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
  scriptTransaction<T>(work: (session: ScriptSession) => Promise<T>): Promise<T>
  close(): Promise<void>
}

export interface DatabaseOptions {
  databaseUrl?: string | undefined
  /** PostgreSQL only: the schema every connection works in (created if missing). */
  databaseSchema?: string
  /** PGlite only: a data directory, or undefined for an in-memory database. */
  dataDir?: string | undefined
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return options.databaseUrl
    ? openPostgres(options.databaseUrl, options.databaseSchema ?? 'public')
    : openPglite(options.dataDir)
}

async function openPostgres(connectionString: string, schema: string): Promise<Database> {
  if (schema !== 'public') {
    const admin = new pg.Client({ connectionString })
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
    ...(schema === 'public' ? {} : { options: `-c search_path="${schema}"` }),
  })
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) })
  return {
    kind: 'postgres',
    db,
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
    close: () => db.destroy(),
  }
}

async function openPglite(dataDir: string | undefined): Promise<Database> {
  // Loaded only here: on PostgreSQL the embedded database costs the process no memory.
  const { PGlite } = await import('@electric-sql/pglite')
  return pgliteDatabase(await PGlite.create(dataDir))
}

/** The service's database on an embedded PGlite that is already open, for instance one loaded from a dump. */
export function pgliteDatabase(pglite: PGlite): Database {
  const db = new Kysely<DB>({ dialect: new PGliteDialect({ pglite }) })
  return {
    kind: 'pglite',
    db,
    jobBackend: { kind: 'pglite', pglite },
    scriptTransaction: (work) =>
      pglite.transaction((tx) =>
        work({
          exec: async (script) => {
            await tx.exec(script)
          },
          query: async <R>(sql: string, params?: unknown[]) => (await tx.query<R>(sql, params)).rows,
        }),
      ),
    close: () => db.destroy(),
  }
}
