// The benchmark: seeds a realistic data set into a schema of its own on PostgreSQL, starts the real
// service and a bare baseline that executes the same SQL, loads both with autocannon and prints one
// table; then it delivers a burst of webhooks with one worker process (scripts/bench/webhooks.ts).
// It reports; it never fails on a target.
//   DATABASE_URL=postgres://… npm run bench -- [--cases 100000] [--connections 10] [--seconds 10]
//     [--warmup 2] [--schema bench_x] [--keep] [--save-sql captured.json]
//     [--only api|webhooks] [--webhook-events 5000] [--webhook-chunk 250] [--webhook-timeout 10]
//     [--webhook-rate 100] [--webhook-seconds 30]

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { newKeyEntry } from '../src/crypto/keyring.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { loadSops } from '../src/sops/registry.js'
import { type Captured, openCaptureSession } from './bench/capture.js'
import { receiverSlots, senderSlots } from './bench/dataset.js'
import { type LoadResult, load, type RequestFactory } from './bench/load.js'
import {
  type CasePlan,
  captureRequests,
  decodeFeedCursor,
  listSampleSeq,
  type Operation,
  operations,
  planCases,
} from './bench/plan.js'
import { highWaterMark, type Server, startServer, type Worker } from './bench/processes.js'
import { timeQuery } from './bench/queries.js'
import type { ScriptFile } from './bench/replay.js'
import {
  fixed,
  type Measured,
  megabytes,
  resultTable,
  seconds,
  statementSummary,
  targetSummary,
  timingTable,
} from './bench/report.js'
import {
  dropSchema,
  feedCursors,
  inspectSchema,
  migrateWithDemoOrganisations,
  tableSizes,
  touchedCases,
} from './bench/schema.js'
import { seedCases, vacuumAnalyze } from './bench/seed.js'
import { verifySeededData } from './bench/verify.js'
import { runWebhookScenario, type WebhookRunResult, webhookTable } from './bench/webhooks.js'

const root = fileURLToPath(new URL('..', import.meta.url))
// The service on PostgreSQL needs master keys; the bench's processes share one made for the run.
process.env.DATA_ENCRYPTION_KEYS ||= newKeyEntry('bench')

const { values: flags } = parseArgs({
  options: {
    cases: { type: 'string', default: '100000' },
    connections: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    schema: { type: 'string' },
    keep: { type: 'boolean', default: false },
    chunk: { type: 'string', default: '10000' },
    'seed-workers': { type: 'string', default: '2' },
    'query-runs': { type: 'string', default: '200' },
    'save-sql': { type: 'string' },
    only: { type: 'string' },
    'webhook-events': { type: 'string', default: '5000' },
    'webhook-chunk': { type: 'string', default: '250' },
    'webhook-timeout': { type: 'string', default: '10' },
    'webhook-rate': { type: 'string', default: '100' },
    'webhook-seconds': { type: 'string', default: '30' },
  },
})

function whole(name: string, raw: string | undefined, min: number): number {
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min) throw new Error(`--${name} must be a whole number of at least ${min}`)
  return value
}

const databaseUrl = process.env.DATABASE_URL ?? ''
if (databaseUrl === '') {
  console.error('npm run bench needs DATABASE_URL: a PostgreSQL database to create its schema in')
  process.exit(2)
}
const options = {
  cases: whole('cases', flags.cases, 1000),
  connections: whole('connections', flags.connections, 1),
  seconds: whole('seconds', flags.seconds, 1),
  warmup: whole('warmup', flags.warmup, 0),
  chunk: whole('chunk', flags.chunk, 100),
  seedWorkers: whole('seed-workers', flags['seed-workers'], 1),
  queryRuns: whole('query-runs', flags['query-runs'], 10),
  webhookEvents: whole('webhook-events', flags['webhook-events'], 100),
  webhookChunk: whole('webhook-chunk', flags['webhook-chunk'], 1),
  webhookTimeout: whole('webhook-timeout', flags['webhook-timeout'], 1),
  webhookRate: whole('webhook-rate', flags['webhook-rate'], 1),
  webhookSeconds: whole('webhook-seconds', flags['webhook-seconds'], 1),
}
const scenarios = ['api', 'webhooks'] as const
const only = flags.only
if (only !== undefined && !(scenarios as readonly string[]).includes(only)) {
  console.error(`--only must be one of ${scenarios.join(', ')}, not "${only}"`)
  process.exit(2)
}
const runs = (scenario: (typeof scenarios)[number]) => only === undefined || only === scenario
const stamp = new Date().toISOString().replaceAll(/[-:]/g, '').replace('T', '_').slice(0, 15)
const schema = flags.schema ?? process.env.DATABASE_SCHEMA ?? `bench_${stamp}`
if (!/^[a-z_][a-z0-9_]{0,50}$/.test(schema) || schema === 'public') {
  console.error(`the bench schema must be a lower-case SQL identifier other than public, not "${schema}"`)
  process.exit(2)
}

const target = { connectionString: databaseUrl, schema }
const log = (line = '') => process.stdout.write(`${line}\n`)
const servers: Array<Server | Worker> = []
/** Schemas of the webhook runs; each run drops its own, and an interrupted run is dropped here. */
const webhookSchemas: string[] = []
let dropOnExit = false
let scratch: string | undefined

async function cleanUp() {
  await Promise.allSettled(servers.map((server) => server.stop()))
  servers.length = 0
  if (scratch) rmSync(scratch, { recursive: true, force: true })
  for (const webhookSchema of webhookSchemas.splice(0)) await dropSchema({ ...target, schema: webhookSchema })
  if (dropOnExit) {
    dropOnExit = false
    await dropSchema(target)
    log(`dropped the schema ${schema}`)
  } else if (runs('api')) {
    log(`kept the schema ${schema}: DATABASE_SCHEMA=${schema} npm run bench reuses it`)
  }
}
process.once('SIGINT', () => {
  log('\ninterrupted: cleaning up')
  void cleanUp().finally(() => process.exit(130))
})

async function prepareSchema(): Promise<number> {
  const state = await inspectSchema(target)
  if (state === 'foreign') {
    throw new Error(`the schema ${schema} holds data that this benchmark did not seed: name another one`)
  }
  if (typeof state === 'object') {
    log(
      `reusing the ${fixed(state.seeded)} cases seeded earlier into ${schema} (--cases is ignored; it is never dropped)`,
    )
    return state.seeded
  }
  dropOnExit = !flags.keep
  await migrateWithDemoOrganisations(target)
  const procedure = loadSops().current('adult')
  log(`seeding ${fixed(options.cases)} cases into ${schema}…`)
  const started = Date.now()
  let reported = 0
  await seedCases({
    ...target,
    cases: options.cases,
    chunk: options.chunk,
    workers: options.seedWorkers,
    procedure,
    now: new Date(),
    onProgress: (seeded) => {
      if (seeded - reported >= options.cases / 10 || seeded === options.cases) {
        reported = seeded
        log(`  ${fixed(seeded)} cases (${seconds(Date.now() - started)})`)
      }
    },
  })
  const seeded = Date.now() - started
  const vacuumStarted = Date.now()
  await vacuumAnalyze(target.connectionString, schema)
  log(
    `seeded ${fixed(options.cases)} cases in ${seconds(seeded)}; vacuum analyze ${seconds(Date.now() - vacuumStarted)}`,
  )
  return options.cases
}

/** Captures one request of each kind through the service built in this process, and writes the scripts for the baseline. */
async function captureSql(plan: CasePlan, cases: number, feedCursor: string) {
  const session = await openCaptureSession(databaseUrl, schema)
  const captured: Record<string, Captured> = {}
  const requests = captureRequests(plan, cases, feedCursor)
  try {
    for (const [name, request] of Object.entries(requests)) {
      const result = await session.capture(request)
      if (result.status >= 300) {
        throw new Error(`capturing ${name}: the service answered ${result.status} ${JSON.stringify(result.body)}`)
      }
      captured[name] = result
    }
  } finally {
    await session.close()
  }
  scratch = mkdtempSync(path.join(os.tmpdir(), 'trm-bench-'))
  const file: ScriptFile = {
    capturedAt: Date.now(),
    scripts: Object.fromEntries(Object.entries(captured).map(([name, result]) => [name, result.script])),
  }
  const scriptsFile = path.join(scratch, 'scripts.json')
  writeFileSync(scriptsFile, JSON.stringify(file))
  if (flags['save-sql']) writeFileSync(flags['save-sql'], JSON.stringify(file, null, 2))
  return { captured, scriptsFile }
}

/** The two paging queries alone at the seeded size: every partner's list of cases, every receiver's feed. */
async function timePagingQueries(captured: Record<string, Captured>, cases: number, feedCursor: string) {
  const listScript = captured.listCasesPage?.script
  const feedScript = captured.listEvents?.script
  if (!listScript || !feedScript) return []
  const partners = [...new Set([...senderSlots, ...receiverSlots].map((slot) => slot.organisationId))]
  const listVariants = Array.from({ length: options.queryRuns }, (_, index) => ({
    replace: new Map([
      [demoOrganisationIds.iomPoland, partners[index % partners.length] ?? ''],
      [listSampleSeq(cases), String(51 + Math.floor((((index * 7919) % 10_007) / 10_007) * (cases - 51)))],
    ]),
  }))
  const receivers = [...new Set(receiverSlots.map((slot) => slot.organisationId))]
  const cursors = new Map<string, string[]>()
  for (const organisationId of receivers) {
    cursors.set(organisationId, await feedCursors(target, organisationId, options.queryRuns))
  }
  const sample = decodeFeedCursor(feedCursor)
  const feedVariants = Array.from({ length: options.queryRuns }, (_, index) => {
    const organisationId = receivers[index % receivers.length] ?? ''
    const positions = cursors.get(organisationId) ?? []
    const cursor = decodeFeedCursor(positions[Math.floor(index / receivers.length) % positions.length] ?? feedCursor)
    return {
      replace: new Map([
        [demoOrganisationIds.iomUkraine, organisationId],
        [sample.txid, cursor.txid],
        [sample.seq, cursor.seq],
      ]),
    }
  })
  return [
    await timeQuery(
      databaseUrl,
      schema,
      'list cases (a page of 50 after a cursor)',
      listScript,
      /from "cases" inner join "case_parties"/,
      listVariants,
    ),
    await timeQuery(
      databaseUrl,
      schema,
      'event feed (a page of 50 after a cursor)',
      feedScript,
      /from event_audiences/,
      feedVariants,
    ),
  ]
}

async function startServers(scriptsFile: string) {
  const service = await startServer(
    'service',
    'src/server.ts',
    {
      DATABASE_URL: databaseUrl,
      DATABASE_SCHEMA: schema,
      LOG_LEVEL: 'warn',
      JOBS: 'external',
      DEMO_DATA: 'never',
      // The highest value src/config.ts accepts: the load must never meet the rate limit.
      RATE_LIMIT_PER_MINUTE: '1000000',
    },
    '/health/ready',
    root,
  )
  servers.push(service)
  const baseline = await startServer(
    'baseline',
    'scripts/bench/baseline-server.ts',
    { DATABASE_URL: databaseUrl, DATABASE_SCHEMA: schema, BENCH_SCRIPTS: scriptsFile },
    '/ready',
    root,
  )
  servers.push(baseline)
  return { service, baseline }
}

async function run(operation: Operation, server: Server, next: RequestFactory): Promise<LoadResult> {
  const common = {
    url: server.url,
    pid: server.pid,
    connections: options.connections,
    next,
    idlePath: server.readyPath,
  }
  let amount: number | undefined
  if (options.warmup > 0) {
    const warm = await load({ ...common, seconds: options.warmup })
    // Too few fresh cases left for the whole run at the warm-up's pace: send what is left, and say so.
    const left = next.remaining?.()
    if (left !== undefined && left < warm.requestsPerSecond * options.seconds * 1.2) {
      amount = left >= options.connections ? left : 0
    }
  }
  const result =
    amount === 0
      ? await load({ ...common, seconds: options.seconds, next: () => undefined })
      : await load({ ...common, seconds: options.seconds, ...(amount === undefined ? {} : { amount }) })
  const short = amount !== undefined ? { ...result, exhausted: true } : result
  // Other work on the machine skews a run; the load average printed with it tells.
  log(
    `  ${operation.name} on the ${server.name}: ${fixed(short.requestsPerSecond)} req/s, ` +
      `load average ${os.loadavg()[0]?.toFixed(2)}` +
      (short.exhausted
        ? ` (too few fresh cases: ${fixed(short.requests)} requests in ${fixed(short.seconds, 1)} s)`
        : ''),
  )
  return short
}

async function main() {
  const startedAt = new Date()
  log(`trm-api bench, ${startedAt.toISOString()}`)
  const loadAverage = os.loadavg().map((value) => value.toFixed(2))
  log(`node ${process.version}, ${os.cpus().length} cores, load average ${loadAverage.join(' ')}`)
  if (runs('api')) await apiScenario(startedAt)
  if (runs('webhooks')) await webhookScenario()
}

/**
 * Each load three times, on a fresh schema with a fresh worker: the two healthy receivers alone;
 * with a third receiver that answers; with a third that never answers. The hanging partner's cost
 * to the others is the difference between the last two (the relay and the queue do the same work
 * for both); the first shows what a third partner costs at all. A burst measures how fast the
 * backlog drains; a steady rate below that measures the delay a partner sees.
 */
async function webhookScenario() {
  log(
    `\nwebhooks: events for three organisations, two healthy receivers, and a third that answers or never does ` +
      `(timeout ${options.webhookTimeout} s), one worker process with the default settings`,
  )
  const loads = [
    { load: `burst of ${fixed(options.webhookEvents)}`, events: options.webhookEvents },
    {
      load: `${fixed(options.webhookRate)} events/s for ${options.webhookSeconds} s`,
      events: options.webhookRate * options.webhookSeconds,
      rate: options.webhookRate,
    },
  ]
  const results: (WebhookRunResult & { load: string })[] = []
  for (const [index, load] of loads.entries()) {
    // The third receiver is the control: what a hanging partner costs the others is the difference
    // between a third that answers and a third that never does, the same work for the relay either way.
    for (const third of ['none', 'answers', 'hangs'] as const) {
      const name = `${load.load}, ${{ none: 'two healthy receivers', answers: 'a third, healthy', hangs: 'a third, hanging' }[third]}`
      const runSchema = `${schema}_wh${index}${third[0]}`
      webhookSchemas.push(runSchema)
      const result = await runWebhookScenario({
        connectionString: databaseUrl,
        schema: runSchema,
        name,
        events: load.events,
        third,
        chunk: options.webhookChunk,
        ...(load.rate ? { rate: load.rate } : {}),
        timeoutSeconds: options.webhookTimeout,
        root,
        log,
        started: (worker) => servers.push(worker),
      })
      webhookSchemas.splice(webhookSchemas.indexOf(runSchema), 1)
      servers.length = 0
      results.push({ ...result, load: load.load })
      log(
        `  ${name}: ${fixed(result.perSecond)} deliveries/s to the healthy receivers, ` +
          `load average ${os.loadavg()[0]?.toFixed(2)}`,
      )
    }
  }
  log(`\nwebhook results (delay: from the event's commit to its receipt by a healthy receiver):`)
  log(webhookTable(results))
  const [, burstHealthy, burstHanging, , steadyHealthy, steadyHanging] = results
  log('\ntargets (reported, not enforced):')
  if (burstHanging) {
    log(
      `  deliveries/s to the healthy receivers beside the hanging one, target ≥ 200: ${fixed(burstHanging.perSecond)} ` +
        `(${burstHanging.perSecond >= 200 ? 'met' : 'NOT met'})`,
    )
  }
  for (const [healthy, hanging] of [
    [burstHealthy, burstHanging],
    [steadyHealthy, steadyHanging],
  ]) {
    if (healthy && hanging) {
      log(
        `  ${hanging.load}: healthy p99 delay with the third receiver hanging / answering ` +
          `${fixed(hanging.p99)} / ${fixed(healthy.p99)} ms (${fixed(hanging.p99 / healthy.p99, 2)}×)`,
      )
    }
  }
}

async function apiScenario(startedAt: Date) {
  const cases = await prepareSchema()
  log(`tables: ${await tableSizes(target)}`)

  const plan = planCases(cases, await touchedCases(target))
  const feed = await feedCursors(target, demoOrganisationIds.iomUkraine, 5000)
  const feedCursor = feed[Math.floor(feed.length / 2)]
  if (!feedCursor) throw new Error('the feed of IOM Ukraine is too short to page')

  const { captured, scriptsFile } = await captureSql(plan, cases, feedCursor)
  log('\nSQL per request, captured from the service (the authentication lookup included):')
  for (const name of ['getCase', 'listCases', 'sendPacket', 'listEvents']) {
    const result = captured[name]
    if (result) log(statementSummary(name, result))
  }
  const timings = await timePagingQueries(captured, cases, feedCursor)

  const { service, baseline } = await startServers(scriptsFile)
  const checks = await verifySeededData(service.url, plan.checked)
  log('\nseeded data served by the service:')
  for (const check of checks) log(`  ${check.ok ? 'ok  ' : 'FAIL'} ${check.what}: ${check.detail}`)

  log(`\nload: ${options.connections} connections, ${options.seconds} s per run after a ${options.warmup} s warm-up`)
  const results: Measured[] = []
  for (const operation of operations(plan, feed)) {
    const serviceResult = await run(operation, service, operation.service)
    const baselineResult = await run(operation, baseline, operation.baseline)
    results.push({ name: operation.name, service: serviceResult, baseline: baselineResult })
  }

  log(`\nresults: ${fixed(cases)} cases, ${startedAt.toISOString()}`)
  log(resultTable(results))
  log(
    `memory high-water mark since start (VmHWM): service ${megabytes(highWaterMark(service.pid) ?? 0)} MB, ` +
      `baseline ${megabytes(highWaterMark(baseline.pid) ?? 0)} MB`,
  )
  if (timings.length > 0) {
    log(`\nquery time alone at ${fixed(cases)} cases, ${options.queryRuns} runs with varying organisation and cursor:`)
    log(timingTable(timings))
    for (const timing of timings) log(`\nEXPLAIN (ANALYZE, BUFFERS), ${timing.name}:\n${timing.plan}`)
  }
  log(`\n${targetSummary(results, timings, cases)}`)
  const failed = checks.filter((check) => !check.ok)
  if (failed.length > 0) log(`\n${failed.length} check(s) of the seeded data FAILED: see above`)
}

try {
  await main()
} catch (error) {
  console.error(error)
  process.exitCode = 1
} finally {
  await cleanUp()
}
