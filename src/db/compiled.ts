import { type Compilable, CompiledQuery, type Kysely, type Transaction } from 'kysely'
import type { DB } from './schema.js'

type Db = Kysely<DB> | Transaction<DB>

/** Stands in for a value of a compiled-once query while it is built: `slot('caseId')`. */
export type Slot = <T = string>(name: string) => T

class SlotValue {
  constructor(readonly name: string) {}
}

const slot: Slot = (name) => new SlotValue(name) as never

/**
 * A query built and compiled by Kysely once, on first use, then run with each call's values, so
 * that a hot path builds no query. `build` puts `slot(name)` where a call's value goes; a slot may
 * stand only where Kysely passes the value to the database as one parameter (a comparison, an
 * inserted or updated value, a value of an `sql` template), never where Kysely looks into it (the
 * list of an `in`, the keys of a `values` object). Every call gives a value for every slot.
 */
export function compiledOnce<Row>(
  build: (db: Db, slot: Slot) => Compilable<Row>,
): (db: Db, values: Record<string, unknown>) => Promise<Row[]> {
  let compiled: { sql: string; parameters: readonly unknown[] } | undefined
  return async (db, values) => {
    compiled ??= build(db, slot).compile()
    const parameters = compiled.parameters.map((parameter) => {
      if (!(parameter instanceof SlotValue)) return parameter
      if (!(parameter.name in values)) throw new Error(`no value for the slot ${parameter.name}`)
      return values[parameter.name]
    })
    const { rows } = await db.executeQuery(CompiledQuery.raw(compiled.sql, parameters))
    return rows as Row[]
  }
}
