import { createHash } from 'node:crypto'
import { type RawBuilder, sql } from 'kysely'
import type pg from 'pg'

/** Distinct statement texts one connection prepares at most; texts beyond them run unnamed. */
export const PREPARED_PER_CONNECTION = 500

/** Statements sent to the database by this process, transaction control included. */
export class StatementCounter {
  #count = 0

  get count(): number {
    return this.#count
  }

  add(statements = 1): void {
    this.#count += statements
  }
}

/**
 * Makes every parameterised statement of a pg connection a named one, so that PostgreSQL parses
 * and plans it once per connection rather than on every execution. The name is a hash of the
 * text, so one text always gets one name. A connection names at most `limit` texts: code that
 * builds texts of many shapes (lists of varying length) then runs unnamed beyond it, rather
 * than filling the server's memory with statements prepared once and never used again.
 */
export function prepareStatements(client: pg.PoolClient, counter: StatementCounter, limit = PREPARED_PER_CONNECTION) {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown
  // The name of each text this connection prepared, by text.
  const named = new Map<string, string>()
  const wrapped = (...args: unknown[]) => {
    counter.add()
    const [text, values] = args
    if (typeof text !== 'string' || !Array.isArray(values) || values.length === 0 || args.length > 2) {
      return query(...args)
    }
    let name = named.get(text)
    if (name === undefined) {
      if (named.size >= limit) return query(text, values)
      name = statementName(text)
      named.set(text, name)
    }
    return query({ name, text, values })
  }
  client.query = wrapped as typeof client.query
}

function statementName(text: string): string {
  return `trm_${createHash('sha1').update(text).digest('base64url')}`
}

/**
 * `column = any($1)` for a list of uuids: one statement text whatever the list's length, where
 * `in ($1, $2, …)` would be a new statement, planned and prepared anew, for every length.
 */
export function isAnyUuid(column: string, ids: readonly string[]): RawBuilder<boolean> {
  return sql<boolean>`${sql.ref(column)} = any(${[...ids]}::uuid[])`
}
