// The embedded database: PGlite on a data directory, for a service that needs nothing installed.
// Loaded only when it is used, so that a process on PostgreSQL holds none of it.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import {
  PGlite,
  type Transaction as PgliteTransaction,
  parse,
  protocol,
  type QueryOptions,
  type Results,
} from '@electric-sql/pglite'
import { Kysely, PGliteDialect } from 'kysely'
import type { Database } from './database.js'
import type { DB } from './schema.js'
import { PREPARED_PER_CONNECTION, StatementCounter } from './statements.js'

const execFileAsync = promisify(execFile)
const { serialize } = protocol
const { parseDescribeStatementResults, parseResults } = parse

/**
 * PostgreSQL's shared buffers in the embedded database. PGlite's default (128 MB) is memory the
 * process holds whether or not the data needs it; a small office's data is read through the
 * operating system's file cache as well.
 */
const EMBEDDED_SHARED_BUFFERS = '16MB'

export async function openPglite(dataDir: string | undefined): Promise<Database> {
  if (dataDir !== undefined && !existsSync(path.join(dataDir, 'PG_VERSION'))) await initialiseApart(dataDir)
  const startParams = [...PGlite.defaultStartParams, '-c', `shared_buffers=${EMBEDDED_SHARED_BUFFERS}`]
  return pgliteDatabase(await PGlite.create(dataDir, { startParams }))
}

/**
 * Makes a new embedded database in `dataDir` in a short-lived process of its own: PGlite's initdb
 * holds about 850 MB while it runs, and a process that ran it keeps that memory, where one that
 * opens the finished directory holds a fifth of it.
 */
async function initialiseApart(dataDir: string): Promise<void> {
  const pglite = JSON.stringify(import.meta.resolve('@electric-sql/pglite'))
  const script = `const { PGlite } = await import(${pglite}); await (await PGlite.create(${JSON.stringify(dataDir)})).close()`
  await execFileAsync(process.execPath, ['--input-type=module', '--eval', script])
}

/** The service's database on an embedded PGlite that is already open, for instance one loaded from a dump. */
export function pgliteDatabase(pglite: PGlite): Database {
  const statements = new StatementCounter()
  const db = new Kysely<DB>({ dialect: new PGliteDialect({ pglite: preparedPglite(pglite, statements) }) })
  return {
    kind: 'pglite',
    db,
    statements,
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
    async listen(channel, listener) {
      // One process, one database: nothing is missed while it is open.
      const stop = await pglite.listen(channel, (payload) => listener.notified(payload))
      listener.hearing(true)
      // A closed database listens to no one any more.
      return () => (pglite.closed ? Promise.resolve() : stop().catch(() => {}))
    },
    close: () => db.destroy(),
  }
}

/**
 * The embedded database as Kysely sees it, counting each statement and the begin and commit of
 * each transaction, and running every parameterised statement as a named one: PGlite's own
 * `query` parses, describes, binds and executes in six calls into the database and plans the text
 * every time, where a named statement is parsed and planned once and then runs in one call (bind,
 * describe, execute, sync). At most `limit` texts are named; beyond them PGlite's `query` runs them.
 */
export function preparedPglite(pglite: PGlite, counter: StatementCounter, limit = PREPARED_PER_CONNECTION): PGlite {
  const named = new Map<string, PreparedText>()
  /** Runs a statement as PGlite's `query` would; the caller holds the database. */
  const run = async (text: string, values: unknown[] | undefined, options: QueryOptions | undefined, inTx: boolean) => {
    if (values === undefined || values.length === 0 || options?.blob !== undefined) return undefined
    let statement = named.get(text)
    if (statement === undefined) {
      if (named.size >= limit) return undefined
      const name = `trm_${named.size}`
      const described = await pglite.execProtocol(
        concat([serialize.parse({ name, text }), serialize.describe({ type: 'S', name }), serialize.sync()]),
        { syncToFs: false },
      )
      statement = { name, types: parseDescribeStatementResults(described.messages) }
      named.set(text, statement)
    }
    const { name, types } = statement
    const serialized = values.map((value, index) => {
      if (value === null || value === undefined) return null
      const type = types[index] as number
      const serializer = options?.serializers?.[type] ?? pglite.serializers[type]
      return serializer ? serializer(value) : String(value)
    })
    const { messages } = await pglite.execProtocol(
      concat([
        serialize.bind({ statement: name, values: serialized }),
        serialize.describe({ type: 'P' }),
        serialize.execute({}),
        serialize.sync(),
      ]),
      { syncToFs: !inTx },
    )
    return parseResults(messages, pglite.parsers, options)[0]
  }
  const query =
    (inTx: boolean, fallback: (...args: Parameters<PGlite['query']>) => Promise<Results<unknown>>) =>
    async (text: string, values?: unknown[], options?: QueryOptions) => {
      counter.add()
      // PGlite's own order: a statement outside a transaction waits for any transaction to end.
      const prepared = await (inTx
        ? pglite.runExclusive(() => run(text, values, options, true))
        : pglite._runExclusiveTransaction(() => pglite.runExclusive(() => run(text, values, options, false))))
      return prepared ?? fallback(text, values, options)
    }
  const countedTransaction = (tx: PgliteTransaction): PgliteTransaction =>
    new Proxy(tx, {
      get(target, property) {
        if (property === 'query') return query(true, (...args) => target.query(...args))
        return Reflect.get(target, property)
      },
    })
  return new Proxy(pglite, {
    get(target, property) {
      if (property === 'query') return query(false, (...args) => target.query(...args))
      if (property === 'transaction') {
        return <T>(work: (tx: PgliteTransaction) => Promise<T>) => {
          counter.add(2)
          return target.transaction((tx) => work(countedTransaction(tx)))
        }
      }
      const value = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

interface PreparedText {
  name: string
  /** The type of each parameter, as PostgreSQL inferred it: which serializer a value takes. */
  types: number[]
}

function concat(messages: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(messages.reduce((length, message) => length + message.length, 0))
  let offset = 0
  for (const message of messages) {
    all.set(message, offset)
    offset += message.length
  }
  return all
}
