// The bench schema: what state it is in, how to set it up with the project's own migrator and demo
// organisations, and the few facts about its contents that the load plan needs.
import pg from 'pg'
import { openDatabase } from '../../src/db/database.js'
import { migrate, readMigrations } from '../../src/db/migrate.js'
import { seedDemoIfEmpty } from '../../src/demo/seed.js'
import { encodeCursor } from '../../src/http/pagination.js'

export interface BenchSchema {
  connectionString: string
  schema: string
}

export async function withClient<T>(
  { connectionString, schema }: BenchSchema,
  work: (client: pg.Client) => Promise<T>,
) {
  const client = new pg.Client({ connectionString, options: `-c search_path="${schema}"` })
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end()
  }
}

/**
 * `absent` or `empty`: seed it. `{ seeded }`: an earlier run seeded it and kept it. `foreign`: it holds
 * something else, which a benchmark must neither write into nor drop.
 */
export async function inspectSchema(target: BenchSchema): Promise<'absent' | 'empty' | 'foreign' | { seeded: number }> {
  return withClient(target, async (client) => {
    const exists = await client.query('select 1 from pg_namespace where nspname = $1', [target.schema])
    if (exists.rowCount === 0) return 'absent'
    const cases = await client.query<{ found: string | null }>('select to_regclass($1) as found', [
      `"${target.schema}".cases`,
    ])
    if (!cases.rows[0]?.found) {
      const tables = await client.query('select 1 from pg_tables where schemaname = $1 limit 1', [target.schema])
      return tables.rowCount === 0 ? 'empty' : 'foreign'
    }
    const { rows } = await client.query<{ seeded: string | null; total: string }>(
      `select max(seq) filter (where id = md5('case-' || seq)::uuid) as seeded, count(*) as total from cases`,
    )
    const seeded = Number(rows[0]?.seeded ?? 0)
    if (seeded > 0) return { seeded }
    return Number(rows[0]?.total ?? 0) === 0 ? 'empty' : 'foreign'
  })
}

/** The project's migrations and demo organisations with their keys, exactly as the service sets them up. */
export async function migrateWithDemoOrganisations({ connectionString, schema }: BenchSchema): Promise<void> {
  const database = await openDatabase({ databaseUrl: connectionString, databaseSchema: schema })
  try {
    await migrate(database, await readMigrations())
    await seedDemoIfEmpty(database.db)
  } finally {
    await database.close()
  }
}

export async function dropSchema({ connectionString, schema }: BenchSchema): Promise<void> {
  const client = new pg.Client({ connectionString })
  await client.connect()
  try {
    await client.query(`drop schema if exists "${schema}" cascade`)
    // Where a job queue ran on the schema, it kept its tables beside it (src/db/database.ts).
    await client.query(`drop schema if exists "${schema}_pgboss" cascade`)
  } finally {
    await client.end()
  }
}

export async function tableSizes(target: BenchSchema): Promise<string> {
  return withClient(target, async (client) => {
    const { rows } = await client.query<{ name: string; rows: string; size: string }>(
      `select c.relname as name, c.reltuples::bigint::text as rows, pg_size_pretty(pg_total_relation_size(c.oid)) as size
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where n.nspname = $1 and c.relkind = 'r' and c.reltuples > 0
       order by pg_total_relation_size(c.oid) desc`,
      [target.schema],
    )
    return rows.map((row) => `${row.name} ${Number(row.rows).toLocaleString('en-US')} rows ${row.size}`).join('; ')
  })
}

/**
 * The seeded cases each change can still take: an earlier run on a kept schema used some. A case
 * waits for its enquiry at return_decided, its enquiry waits to be read while `sent`, and it can be
 * put on hold while at referral_sent (scripts/bench/plan.ts says which n each operation takes).
 */
export async function freshCases(
  target: BenchSchema,
): Promise<{ send: number[]; firstRead: number[]; transition: number[] }> {
  return withClient(target, async (client) => {
    const numbers = async (text: string) =>
      (await client.query<{ n: string }>(text)).rows.map((row) => Number(row.n)).sort((a, b) => a - b)
    return {
      send: await numbers(`select seq as n from cases where seq % 3 = 0 and step = 'return_decided'
        and id = md5('case-' || seq)::uuid`),
      firstRead: await numbers(`select seq as n from packets where seq % 3 = 1 and status = 'sent'
        and id = md5('packet-' || seq)::uuid`),
      transition: await numbers(`select seq as n from cases where seq % 3 = 2 and step = 'referral_sent'
        and id = md5('case-' || seq)::uuid`),
    }
  })
}

/** Cursors into an organisation's feed, spread over all of it and never within a page of its end. */
export async function feedCursors(target: BenchSchema, organisationId: string, wanted: number): Promise<string[]> {
  return withClient(target, async (client) => {
    const total = await client.query<{ count: string }>(
      'select count(*) from event_audiences where organisation_id = $1',
      [organisationId],
    )
    const last = Number(total.rows[0]?.count ?? 0) - 51
    const { rows } = await client.query<{ txid: string; seq: string }>(
      `select txid::text, seq::text from (
         select txid, seq, row_number() over (order by txid, seq) as position
         from event_audiences where organisation_id = $1
       ) as feed
       where position % $2 = 0 and position <= $3`,
      [organisationId, Math.max(1, Math.floor(last / wanted)), last],
    )
    return rows.map((row) => encodeCursor([row.txid, row.seq]))
  })
}
