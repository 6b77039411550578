// Keeps the comparison honest: the same small data set seeded twice, the service on one copy and
// the minimal implementation on the other, both built in this process; one request of each
// operation to each, with every statement each sends counted (`begin` and `commit` included; every
// key has authenticated once before, as in a running service, so the service's key lookup is not).
// Their answers must be equal, and so must the rows they wrote, once the ids and times that
// necessarily differ are named by their order of appearance.
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { installKeyring, parseKeyring } from '../../src/crypto/keyring.js'
import { openDatabase } from '../../src/db/database.js'
import { readMigrations } from '../../src/db/migrate.js'
import { demoOrganisationIds, demoOrganisations } from '../../src/demo/demo-data.js'
import { encodeCursor } from '../../src/http/pagination.js'
import { loadSops } from '../../src/sops/registry.js'
import { caseId, consentId, md5Uuid, packetId } from './dataset.js'
import { buildMinimal } from './minimal.js'
import { eligible, type OperationName, operationNames, requestOf } from './plan.js'
import { dropSchema, migrateWithDemoOrganisations } from './schema.js'
import { seedCases } from './seed.js'

/** Counts what a pool's connections send: each query is a round trip to PostgreSQL. */
export function countStatements(pool: pg.Pool): { count: number } {
  const counter = { count: 0 }
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown
    client.query = ((...args: unknown[]) => {
      counter.count += 1
      return query(...args)
    }) as typeof client.query
  })
  return counter
}

interface Side {
  app: FastifyInstance
  counter: { count: number }
  schema: string
  feedCursor: string
}

export interface OperationCheck {
  operation: OperationName
  status: { service: number; minimal: number }
  statements: { service: number; minimal: number }
  /** Where the two answers differ, after naming ids and times; empty when equal. */
  differences: string[]
}

export interface EquivalenceReport {
  operations: OperationCheck[]
  /** Per table written, where the rows differ; empty when equal. */
  rows: { table: string; differences: string[] }[]
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/

/**
 * A value with what necessarily differs between the two copies named instead: ids made during the
 * check by their order of appearance, times of the check, transaction ids, sealed values.
 */
export function normalise(value: unknown, names: Map<string, string>, stable: Set<string>, since: number): unknown {
  if (typeof value === 'string') {
    if (TIME.test(value)) {
      const at = Date.parse(value)
      if (at >= since - 1000 && at <= Date.now() + 1000) return '<now>'
    }
    return value.replaceAll(UUID, (id) => {
      if (stable.has(id)) return id
      if (!names.has(id)) names.set(id, `<id ${names.size + 1}>`)
      return names.get(id) as string
    })
  }
  if (Array.isArray(value)) return value.map((item) => normalise(item, names, stable, since))
  if (value !== null && typeof value === 'object') {
    if ('alg' in value && 'ct' in value && 'iv' in value) return '<sealed>'
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [
        key,
        key === 'txid' || key === 'data_key' ? `<${key}>` : normalise(item, names, stable, since),
      ]),
    )
  }
  return value
}

/** Paths where two normalised values differ, at most a few. */
export function differences(a: unknown, b: unknown, path = '', found: string[] = []): string[] {
  if (found.length >= 5) return found
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)])
    for (const key of keys) {
      differences((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], `${path}/${key}`, found)
    }
  } else if (JSON.stringify(a) !== JSON.stringify(b)) {
    found.push(
      `${path || '/'}: service ${JSON.stringify(a)?.slice(0, 120)}, minimal ${JSON.stringify(b)?.slice(0, 120)}`,
    )
  }
  return found
}

/** The rows each table holds of what the check wrote, in the order they were written. */
const writtenRows: Record<string, string> = {
  cases: 'select to_jsonb(t) as row from cases t where updated_at >= $1 order by seq',
  packets: 'select to_jsonb(t) as row from packets t where updated_at >= $1 order by seq',
  case_transitions: 'select to_jsonb(t) as row from case_transitions t where at >= $1 order by id',
  events: 'select to_jsonb(t) as row from events t where occurred_at >= $1 order by seq',
  event_audiences: `select to_jsonb(t) as row from event_audiences t
    where event_id in (select id from events where occurred_at >= $1) order by seq, organisation_id`,
  audit_records: 'select to_jsonb(t) as row from audit_records t where at >= $1 order by id',
  idempotency_keys: 'select to_jsonb(t) as row from idempotency_keys t where created_at >= $1 order by key',
}

/**
 * Seeds `cases` cases into two schemas `<prefix>_s` and `<prefix>_m`, runs one request of each
 * operation against the service and the minimal implementation, and compares.
 */
export async function checkEquivalence(options: {
  connectionString: string
  prefix: string
  cases: number
  masterKeys: string
  keep?: boolean
}): Promise<EquivalenceReport> {
  const { connectionString, prefix, cases } = options
  const keyring = parseKeyring(options.masterKeys)
  installKeyring(keyring)
  const sops = loadSops()
  const now = new Date()
  const schemas = { service: `${prefix}_s`, minimal: `${prefix}_m` }
  const opened: { close(): Promise<unknown> }[] = []
  try {
    for (const schema of Object.values(schemas)) {
      await dropSchema({ connectionString, schema })
      await migrateWithDemoOrganisations({ connectionString, schema })
      await seedCases({
        connectionString,
        schema,
        cases,
        chunk: cases,
        workers: 1,
        procedure: sops.current('adult'),
        now,
      })
    }
    const since = Date.now()
    const config = loadConfig({
      DATABASE_URL: connectionString,
      DATABASE_SCHEMA: schemas.service,
      DATA_ENCRYPTION_KEYS: options.masterKeys,
      LOG_LEVEL: 'silent',
      JOBS: 'external',
      RATE_LIMIT_PER_MINUTE: '1000000',
    })
    const database = await openDatabase(config)
    const serviceCounter = countStatements(database.pool as pg.Pool)
    // One moment for both: the deadlines they compute from it must agree.
    const clock = { now: () => new Date(since) }
    const serviceApp = await buildApp({ config, database, migrations: await readMigrations(), clock })
    opened.push(serviceApp)
    const pool = new pg.Pool({ connectionString, max: 4, options: `-c search_path="${schemas.minimal}"` })
    const minimalCounter = countStatements(pool)
    const minimalApp = buildMinimal(pool, sops, clock)
    opened.push({ close: () => minimalApp.close().then(() => pool.end()) })
    await Promise.all([serviceApp.ready(), minimalApp.ready()])
    /** A place a few events into IOM Ukraine's feed: the same place in both copies, named by each one's transaction. */
    const cursorOf = async (schema: string) => {
      const client = new pg.Client({ connectionString, options: `-c search_path="${schema}"` })
      await client.connect()
      try {
        const { rows } = await client.query<{ txid: string; seq: string }>(
          `select txid::text, seq::text from event_audiences where organisation_id = $1 order by txid, seq offset 5 limit 1`,
          [demoOrganisationIds.iomUkraine],
        )
        if (!rows[0]) throw new Error(`the feed of IOM Ukraine in ${schema} is too short: seed more cases`)
        return encodeCursor([rows[0].txid, rows[0].seq])
      } finally {
        await client.end()
      }
    }
    const sides: Record<'service' | 'minimal', Side> = {
      service: {
        app: serviceApp,
        counter: serviceCounter,
        schema: schemas.service,
        feedCursor: await cursorOf(schemas.service),
      },
      minimal: {
        app: minimalApp,
        counter: minimalCounter,
        schema: schemas.minimal,
        feedCursor: await cursorOf(schemas.minimal),
      },
    }
    // A running service has met its partners' keys before: each authenticates once on a read that writes nothing.
    for (const organisation of demoOrganisations) {
      for (const principal of organisation.principals) {
        const authorization = `Bearer trm_${principal.key.prefix}_${principal.key.secret}`
        const warmed = await serviceApp.inject({ url: '/v1/organisations?limit=1', headers: { authorization } })
        if (warmed.statusCode !== 200)
          throw new Error(`the key of ${principal.id} did not authenticate: ${warmed.body}`)
      }
    }
    const stable = new Set<string>()
    for (const organisation of demoOrganisations) {
      stable.add(organisation.id)
      for (const principal of organisation.principals) stable.add(principal.id)
    }
    for (let n = 1; n <= cases; n++) {
      for (const id of [caseId(n), consentId(n), packetId(n)]) stable.add(id)
      for (let k = 1; k <= 6; k++) stable.add(md5Uuid(`event-${n}-${k}`))
    }
    const names = { service: new Map<string, string>(), minimal: new Map<string, string>() }
    const report: EquivalenceReport = { operations: [], rows: [] }
    for (const operation of operationNames) {
      let n = 1
      while (!eligible(operation, n)) n += 1
      const answers: Record<string, { status: number; body: unknown; statements: number }> = {}
      if (operation === 'feed') {
        for (const side of Object.values(sides)) await feedSettled(connectionString, side.schema)
      }
      for (const [name, side] of Object.entries(sides)) {
        const request = requestOf(operation, n, side.feedCursor, { 'x-request-id': `bench-check-${operation}` })
        if (request.headers['idempotency-key']) request.headers['idempotency-key'] = `bench-check-${operation}`
        const before = side.counter.count
        const response = await side.app.inject({
          method: request.method,
          url: request.path,
          headers: request.headers,
          ...(request.body ? { payload: request.body } : {}),
        })
        const body = response.json() as Record<string, unknown>
        // The feed's cursor names a transaction, which differs between the two copies.
        if (operation === 'feed') body.next_cursor = '<cursor>'
        answers[name] = { status: response.statusCode, body, statements: side.counter.count - before }
      }
      const service = answers.service as { status: number; body: unknown; statements: number }
      const minimal = answers.minimal as { status: number; body: unknown; statements: number }
      const unequal = service.status !== minimal.status
      report.operations.push({
        operation,
        status: { service: service.status, minimal: minimal.status },
        statements: { service: service.statements, minimal: minimal.statements },
        differences: unequal
          ? [
              `service ${JSON.stringify(service.body).slice(0, 160)}`,
              `minimal ${JSON.stringify(minimal.body).slice(0, 160)}`,
            ]
          : differences(
              normalise(service.body, names.service, stable, since),
              normalise(minimal.body, names.minimal, stable, since),
            ),
      })
    }
    for (const [table, query] of Object.entries(writtenRows)) {
      const rows: Record<string, unknown> = {}
      for (const [name, side] of Object.entries(sides)) {
        const client = new pg.Client({ connectionString, options: `-c search_path="${side.schema}"` })
        await client.connect()
        try {
          const result = await client.query<{ row: unknown }>(query, [new Date(since)])
          rows[name] = normalise(
            result.rows.map((row) => row.row),
            names[name as 'service' | 'minimal'],
            stable,
            since,
          )
        } finally {
          await client.end()
        }
      }
      report.rows.push({ table, differences: differences(rows.service, rows.minimal) })
    }
    return report
  } finally {
    for (const item of opened.reverse()) await item.close()
    if (!options.keep) {
      for (const schema of Object.values(schemas)) await dropSchema({ connectionString, schema })
    }
  }
}

/**
 * Waits until every event of the schema shows in the feeds. On PostgreSQL an event shows only once
 * every older transaction of the whole cluster has ended, and another client of a shared cluster
 * may hold one open: without this, one side's feed could show an event the other's holds back.
 */
async function feedSettled(connectionString: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString, options: `-c search_path="${schema}"` })
  await client.connect()
  try {
    for (;;) {
      const { rows } = await client.query<{ held: number }>(
        'select count(*)::int as held from event_audiences where txid >= pg_snapshot_xmin(pg_current_snapshot())',
      )
      if (rows[0]?.held === 0) return
      await sleep(100)
    }
  } finally {
    await client.end()
  }
}
