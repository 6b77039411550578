// The webhook scenario: three partner receivers on loopback, two that answer at once and one that
// hangs until the worker gives up on it, an endpoint for each of three organisations, a burst of
// events written into the outbox, and one `npm run worker` process that relays them into
// deliveries and delivers them. It measures what the healthy partners get (deliveries a second,
// and the delay from an event's commit to its receipt) and how often the hanging one was asked.
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { Webhook } from 'standardwebhooks'
import { demoOrganisationIds } from '../../src/demo/demo-data.js'
import { loadSops } from '../../src/sops/registry.js'
import { newSecret } from '../../src/webhooks/signature.js'
import { sampleMemory, startWorker, type Worker } from './processes.js'
import { fixed, megabytes, table } from './report.js'
import { type BenchSchema, dropSchema, migrateWithDemoOrganisations } from './schema.js'
import { seedCases } from './seed.js'

export interface WebhookRunOptions extends BenchSchema {
  name: string
  events: number
  /** A third partner's receiver besides the two healthy ones: none, one that answers, or one that never answers. */
  third: 'none' | 'answers' | 'hangs'
  /** Events per transaction of the burst. */
  chunk: number
  /** Events a second, written a tenth of a second's worth at a time; without it, all at once. */
  rate?: number
  timeoutSeconds: number
  root: string
  log: (line: string) => void
  /** Hands over the worker as soon as it runs, so that an interrupted bench can stop it. */
  started: (worker: Worker) => void
}

export interface WebhookRunResult {
  name: string
  events: number
  /** Deliveries the healthy receivers should get: one per event each. */
  expected: number
  received: number
  duplicates: number
  badSignatures: number
  /** From the first event's commit to the last healthy receipt. */
  seconds: number
  perSecond: number
  p50: number
  p99: number
  max: number
  /** Deliveries the third receiver was asked to take. */
  thirdRequests: number
  peakRss: number
}

interface Receipt {
  eventId: string
  at: number
  verified: boolean
}

/** A partner's receiver on its own port: answers 204 to a delivery whose signature verifies, or never answers. */
async function startReceiver(behaviour: 'answers' | 'hangs') {
  const receipts: Receipt[] = []
  const held: ServerResponse[] = []
  let verifier: Webhook | undefined
  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const at = Date.now()
      const headers = request.headers as Record<string, string>
      if (behaviour === 'hangs') {
        held.push(response)
        receipts.push({ eventId: headers['webhook-id'] ?? '', at, verified: true })
        return
      }
      let verified = false
      try {
        verifier?.verify(Buffer.concat(chunks).toString(), headers)
        verified = true
      } catch {}
      receipts.push({ eventId: headers['webhook-id'] ?? '', at, verified })
      response.writeHead(verified ? 204 : 400).end()
    })
  })
  server.keepAliveTimeout = 30_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/trm/webhooks`,
    receipts,
    verifyWith(secret: string) {
      verifier = new Webhook(secret)
    },
    async close() {
      for (const response of held) response.destroy()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

async function withClient<T>({ connectionString, schema }: BenchSchema, work: (client: pg.Client) => Promise<T>) {
  const client = new pg.Client({ connectionString, options: `-c search_path="${schema}"` })
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end()
  }
}

async function registerEndpoint(client: pg.Client, organisationId: string, url: string): Promise<string> {
  const { rows } = await client.query<{ id: string }>(
    `insert into webhook_endpoints (organisation_id, url, description, enabled, disabled_reason)
     values ($1, $2, 'bench receiver', true, null) returning id`,
    [organisationId, url],
  )
  const secret = newSecret()
  await client.query('insert into webhook_secrets (endpoint_id, secret) values ($1, $2)', [rows[0]?.id, secret])
  return secret
}

/**
 * Writes the events, each concerning the three organisations: `chunk` a transaction back to back,
 * or at `rate` a second in ten transactions a second. Answers each event's commit time.
 */
async function writeEvents(
  client: pg.Client,
  events: number,
  chunk: number,
  rate: number | undefined,
): Promise<Map<string, number>> {
  const audience = [demoOrganisationIds.iomPoland, demoOrganisationIds.iomUkraine, demoOrganisationIds.iomAlbania]
  const { rows: cases } = await client.query<{ id: string }>('select id from cases order by seq limit 1')
  const committed = new Map<string, number>()
  const perTransaction = rate ? Math.max(1, Math.round(rate / 10)) : chunk
  const started = Date.now()
  for (let first = 1; first <= events; first += perTransaction) {
    if (rate) {
      const due = started + ((first - 1) / rate) * 1000
      if (due > Date.now()) await sleep(due - Date.now())
    }
    const last = Math.min(events, first + perTransaction - 1)
    await client.query('begin')
    const { rows } = await client.query<{ id: string }>(
      `with inserted as (
         insert into events (type, case_id, organisation_ids, data)
         select 'case.opened', $3, $4::uuid[], jsonb_build_object('case_reference', 'PL-UA-2026-B' || lpad(n::text, 6, '0'))
         from generate_series($1::int, $2::int) as n
         returning id, txid, seq
       ), audiences as (
         insert into event_audiences (organisation_id, txid, seq, event_id)
         select organisation_id, inserted.txid, inserted.seq, inserted.id
         from inserted, unnest($4::uuid[]) as organisation_id
       )
       select id from inserted`,
      [first, last, cases[0]?.id, audience],
    )
    await client.query('commit')
    const at = Date.now()
    for (const row of rows) committed.set(row.id, at)
  }
  return committed
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN
}

export async function runWebhookScenario(options: WebhookRunOptions): Promise<WebhookRunResult> {
  const { log } = options
  const target = { connectionString: options.connectionString, schema: options.schema }
  const receivers = {
    first: await startReceiver('answers'),
    second: await startReceiver('answers'),
    third: await startReceiver(options.third === 'hangs' ? 'hangs' : 'answers'),
  }
  let worker: Worker | undefined
  try {
    await migrateWithDemoOrganisations(target)
    const procedure = loadSops().current('adult')
    // A few cases for the events to belong to; the relay starts after their own events.
    await seedCases({ ...target, cases: 10, chunk: 10, workers: 1, procedure, now: new Date() })
    await withClient(target, async (client) => {
      await client.query(
        `update event_relay_position set (txid, seq) =
           (select txid, seq from events order by txid desc, seq desc limit 1)`,
      )
      receivers.first.verifyWith(await registerEndpoint(client, demoOrganisationIds.iomPoland, receivers.first.url))
      receivers.second.verifyWith(await registerEndpoint(client, demoOrganisationIds.iomUkraine, receivers.second.url))
      if (options.third !== 'none') {
        receivers.third.verifyWith(await registerEndpoint(client, demoOrganisationIds.iomAlbania, receivers.third.url))
      }
    })

    const env = {
      DATABASE_URL: options.connectionString,
      DATABASE_SCHEMA: options.schema,
      LOG_LEVEL: 'info',
      WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
      WEBHOOK_TIMEOUT_SECONDS: String(options.timeoutSeconds),
    }
    worker = await startWorker('worker', 'src/worker.ts', env, /"msg":"worker started"/, options.root)
    options.started(worker)
    const memory = sampleMemory(worker.pid)

    log(
      `  ${options.name}: writing ${fixed(options.events)} events, ` +
        (options.rate ? `${fixed(options.rate)} a second…` : `${options.chunk} a transaction…`),
    )
    const committed = await withClient(target, (client) =>
      writeEvents(client, options.events, options.chunk, options.rate),
    )
    const expected = options.events * 2
    const healthy = () => {
      const unique = new Map<string, Receipt>()
      let duplicates = 0
      for (const [index, receiver] of [receivers.first, receivers.second].entries()) {
        for (const receipt of receiver.receipts) {
          if (!committed.has(receipt.eventId)) continue
          const key = `${index}:${receipt.eventId}`
          if (unique.has(key)) duplicates += 1
          else unique.set(key, receipt)
        }
      }
      return { unique, duplicates }
    }
    // Waits while deliveries keep arriving; gives up after a minute without one.
    let lastCount = 0
    let lastProgress = Date.now()
    for (;;) {
      const count = healthy().unique.size
      if (count >= expected) break
      if (count > lastCount) {
        lastCount = count
        lastProgress = Date.now()
      } else if (Date.now() - lastProgress > 60_000) {
        log(`  ${options.name}: no delivery for a minute; stopping at ${fixed(count)} of ${fixed(expected)}`)
        break
      }
      await sleep(200)
    }
    const peakRss = memory.stop()
    const { unique, duplicates } = healthy()
    const first = Math.min(...committed.values())
    const delays: number[] = []
    let last = first
    let badSignatures = 0
    for (const receipt of unique.values()) {
      delays.push(receipt.at - (committed.get(receipt.eventId) ?? receipt.at))
      last = Math.max(last, receipt.at)
      if (!receipt.verified) badSignatures += 1
    }
    delays.sort((a, b) => a - b)
    const seconds = (last - first) / 1000
    const thirdRequests = receivers.third.receipts.filter((receipt) => committed.has(receipt.eventId)).length
    return {
      name: options.name,
      events: options.events,
      expected,
      received: unique.size,
      duplicates,
      badSignatures,
      seconds,
      perSecond: seconds > 0 ? unique.size / seconds : Number.NaN,
      p50: percentile(delays, 50),
      p99: percentile(delays, 99),
      max: delays.at(-1) ?? Number.NaN,
      thirdRequests,
      peakRss,
    }
  } finally {
    await worker?.stop()
    await Promise.all(Object.values(receivers).map((receiver) => receiver.close()))
    await dropSchema(target)
  }
}

export function webhookTable(results: WebhookRunResult[]): string {
  return table(
    [
      'run',
      'events',
      'healthy deliveries',
      'deliveries/s',
      'delay p50 ms',
      'delay p99 ms',
      'delay max ms',
      'duplicates',
      'bad signatures',
      'third receiver asked',
      'worker peak RSS MB',
    ],
    results.map((result) => [
      result.name,
      fixed(result.events),
      `${fixed(result.received)} of ${fixed(result.expected)}`,
      fixed(result.perSecond),
      fixed(result.p50),
      fixed(result.p99),
      fixed(result.max),
      fixed(result.duplicates),
      fixed(result.badSignatures),
      fixed(result.thirdRequests),
      megabytes(result.peakRss),
    ]),
  )
}
