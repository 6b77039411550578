// The list and feed queries alone, as the service sends them (its own query functions, on its own
// database layer with named statements), one after another with nothing else loading the
// database: what issue 14's "list and feed query p95" measures, apart from HTTP and concurrency.
import { performance } from 'node:perf_hooks'
import { listCases } from '../../src/cases/queries.js'
import { openDatabase } from '../../src/db/database.js'
import { demoOrganisationIds } from '../../src/demo/demo-data.js'
import { eventsAfter } from '../../src/events/outbox.js'
import { fixed, table } from './report.js'
import { type BenchSchema, withClient } from './schema.js'

export interface QueryTiming {
  query: string
  p50: number
  p95: number
  max: number
}

/** Times `times` pages of each query, from positions spread at random over the data set. */
export async function timeQueries(target: BenchSchema, times = 200): Promise<QueryTiming[]> {
  const organisationId = demoOrganisationIds.iomPoland
  const positions = await withClient(target, async (client) => ({
    seqs: (
      await client.query<{ seq: string }>(
        `select seq::text from cases join case_parties on case_parties.case_id = cases.id
         where case_parties.organisation_id = $1 order by random() limit $2`,
        [organisationId, times],
      )
    ).rows.map((row) => row.seq),
    events: (
      await client.query<{ txid: string; seq: string }>(
        'select txid::text, seq::text from event_audiences where organisation_id = $1 order by random() limit $2',
        [organisationId, times],
      )
    ).rows,
  }))
  const database = await openDatabase({ databaseUrl: target.connectionString, databaseSchema: target.schema })
  try {
    const timed = async (query: string, pages: (() => Promise<unknown>)[]): Promise<QueryTiming> => {
      await pages[0]?.() // prepares the statement on the connection, as a running service has
      const ms: number[] = []
      for (const page of pages) {
        const started = performance.now()
        await page()
        ms.push(performance.now() - started)
      }
      ms.sort((a, b) => a - b)
      const at = (share: number) => ms[Math.min(ms.length - 1, Math.floor(share * ms.length))] ?? Number.NaN
      return { query, p50: at(0.5), p95: at(0.95), max: ms[ms.length - 1] ?? Number.NaN }
    }
    return [
      await timed('list: GET /v1/cases?limit=50, first page', [
        ...positions.seqs.map(() => () => listCases(database.db, { organisationId, limit: 50 })),
      ]),
      await timed('list: GET /v1/cases?limit=50, a later page', [
        ...positions.seqs.map((after) => () => listCases(database.db, { organisationId, limit: 50, after })),
      ]),
      await timed('feed: GET /v1/events?limit=50 after a cursor', [
        ...positions.events.map((after) => () => eventsAfter(database.db, organisationId, after, 50)),
      ]),
    ]
  } finally {
    await database.close()
  }
}

export function queryTable(timings: QueryTiming[]): string {
  return table(
    ['query (IOM Poland, sequential, statement prepared)', 'p50 ms', 'p95 ms', 'max ms'],
    timings.map((timing) => [timing.query, fixed(timing.p50, 2), fixed(timing.p95, 2), fixed(timing.max, 2)]),
  )
}
