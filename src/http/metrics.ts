import { timingSafeEqual } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { sql } from 'kysely'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { Database } from '../db/database.js'

/**
 * Prometheus metrics at `/metrics`, for a scraper that sends `Authorization: Bearer
 * <METRICS_TOKEN>`; without a token configured there is no `/metrics` (404). Requests are
 * counted and timed per contract operation; the gauges of the database (pool, job queue,
 * webhook lag, open escalations) are read when scraped. Labels never hold identifiers or data.
 */
export function registerMetrics(
  app: FastifyInstance,
  database: Database,
  token: string | undefined,
  /** The group commit of read audit records (`ReadAudit`), by its counts. */
  readAudit: { readonly inserts: number; readonly records: number },
): void {
  if (!token) return
  const registry = new Registry()
  const labelNames = ['operation', 'method', 'status'] as const
  const requests = new Counter({
    name: 'trm_http_requests_total',
    help: 'Requests answered, per contract operation, method and status.',
    labelNames,
    registers: [registry],
  })
  const duration = new Histogram({
    name: 'trm_http_request_duration_seconds',
    help: 'Time to answer a request, per contract operation, method and status.',
    labelNames,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  })
  app.addHook('onResponse', async (request, reply) => {
    // Only the routes of the contract (and `other` for the rest): a label per unknown path would grow without bound.
    const labels = {
      operation: request.routeOptions.config.operationId ?? 'other',
      method: request.method,
      status: String(reply.statusCode),
    }
    requests.inc(labels)
    duration.observe(labels, reply.elapsedTime / 1000)
  })

  const pool = database.pool
  if (pool) {
    new Gauge({
      name: 'trm_db_pool_connections',
      help: 'Connections of the PostgreSQL pool of this process, by state.',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        this.set({ state: 'total' }, pool.totalCount)
        this.set({ state: 'idle' }, pool.idleCount)
        this.set({ state: 'waiting_clients' }, pool.waitingCount)
      },
    })
  }
  new Counter({
    name: 'trm_db_statements_total',
    help: 'Statements this process sent to the database, transaction control included.',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(database.statements.count)
    },
  })
  new Counter({
    name: 'trm_audit_read_inserts_total',
    help: 'Inserts (each its own commit) that carried the audit records of reads.',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(readAudit.inserts)
    },
  })
  new Counter({
    name: 'trm_audit_read_records_total',
    help: 'Audit records of reads committed; over the inserts, the size of a group.',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(readAudit.records)
    },
  })
  const db = database.db
  new Gauge({
    name: 'trm_job_queue_jobs',
    help: 'Background jobs per queue: queued (waiting to run) and active.',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset()
      const rows = await jobQueues(database)
      for (const row of rows) {
        this.set({ queue: row.name, state: 'queued' }, Number(row.queued))
        this.set({ queue: row.name, state: 'active' }, Number(row.active))
      }
    },
  })
  new Gauge({
    name: 'trm_webhook_deliveries_pending',
    help: 'Webhook deliveries still to be attempted (pending or retrying).',
    registers: [registry],
    async collect() {
      const row = await sql<{ count: string }>`
        select count(*) as count from webhook_deliveries
        where status in ('pending', 'retrying')`.execute(db)
      this.set(Number(row.rows[0]?.count ?? 0))
    },
  })
  new Gauge({
    name: 'trm_webhook_delivery_lag_seconds',
    help: 'Age of the oldest webhook delivery still to be attempted; 0 when none waits.',
    registers: [registry],
    async collect() {
      const row = await sql<{ lag: string | null }>`
        select extract(epoch from now() - min(created_at)) as lag from webhook_deliveries
        where status in ('pending', 'retrying')`.execute(db)
      this.set(Math.max(0, Number(row.rows[0]?.lag ?? 0)))
    },
  })
  new Gauge({
    name: 'trm_escalations_open',
    help: 'Escalations of cases still at the step they were raised at, by kind.',
    labelNames: ['kind'],
    registers: [registry],
    async collect() {
      this.reset()
      const rows = await sql<{ kind: string; count: string }>`
        select e.kind, count(*) as count from escalations e join cases c on c.id = e.case_id
        where c.step = e.step group by e.kind`.execute(db)
      for (const row of rows.rows) this.set({ kind: row.kind }, Number(row.count))
    },
  })

  const expected = Buffer.from(`Bearer ${token}`)
  app.get('/metrics', { config: { public: true }, schema: { hide: true } }, async (request, reply) => {
    const given = Buffer.from(request.headers.authorization ?? '')
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="metrics"')
        .type('text/plain')
        .send('Send Authorization: Bearer <METRICS_TOKEN>.\n')
    }
    return reply.type(registry.contentType).send(await registry.metrics())
  })
}

/** pg-boss keeps the counts of each queue in its `queue` table; none before the queue first started. */
async function jobQueues(database: Database): Promise<{ name: string; queued: number; active: number }[]> {
  const schema = database.jobBackend.kind === 'postgres' ? database.jobBackend.schema : 'pgboss'
  try {
    const result = await sql<{ name: string; queued: number; active: number }>`
      select name, queued_count as queued, active_count as active from ${sql.table(`${schema}.queue`)}`.execute(
      database.db,
    )
    return result.rows
  } catch {
    return []
  }
}
