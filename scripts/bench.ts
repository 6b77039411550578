// The benchmark: each hot operation of the service beside a minimal implementation written by hand
// on the same schema (scripts/bench/minimal.ts), in the same run, interleaved rounds, medians. It
// first checks on a small twin data set that both answer the same and write the same rows, and
// counts the statements each sends; then it seeds a large data set into a schema of its own, loads
// the compiled service and the minimal one with autocannon, and prints one table. Then webhooks
// with one worker process (scripts/bench/webhooks.ts), and the embedded database (scripts/bench/embedded.ts).
// It reports; it never fails on a target.
//   DATABASE_URL=postgres://… npm run bench -- [--cases 10000] [--duration 3] [--rounds 3] [--warmup 1]
//     [--connections 10] [--schema bench_x] [--keep] [--tsx] [--only api|webhooks|embedded]
//     [--webhook-events 2000] [--webhook-chunk 250] [--webhook-timeout 10] [--webhook-rate 100] [--webhook-seconds 10]

import { execFileSync } from 'node:child_process'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { installKeyring, newKeyEntry, parseKeyring } from '../src/crypto/keyring.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { loadSops } from '../src/sops/registry.js'
import { runEmbedded } from './bench/embedded.js'
import { checkEquivalence, type EquivalenceReport } from './bench/equivalence.js'
import { type LoadResult, load } from './bench/load.js'
import {
  consuming,
  eligible,
  factory,
  type OperationName,
  operationNames,
  operationTitles,
  shuffled,
} from './bench/plan.js'
import { type Server, startServer, type Worker } from './bench/processes.js'
import { queryTable, timeQueries } from './bench/queries.js'
import { fixed, type Measured, megabytes, resultTable, seconds, table, targetSummary } from './bench/report.js'
import {
  dropSchema,
  feedCursors,
  freshCases,
  inspectSchema,
  migrateWithDemoOrganisations,
  tableSizes,
} from './bench/schema.js'
import { seedCases, vacuumAnalyze } from './bench/seed.js'
import { runWebhookScenario, type WebhookRunResult, webhookTable } from './bench/webhooks.js'

const root = fileURLToPath(new URL('..', import.meta.url))
// The service on PostgreSQL needs master keys; the bench's processes share one made for the run.
process.env.DATA_ENCRYPTION_KEYS ||= newKeyEntry('bench')
installKeyring(parseKeyring(process.env.DATA_ENCRYPTION_KEYS))

const { values: flags } = parseArgs({
  options: {
    cases: { type: 'string', default: '10000' },
    duration: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    connections: { type: 'string', default: '10' },
    schema: { type: 'string' },
    keep: { type: 'boolean', default: false },
    tsx: { type: 'boolean', default: false },
    chunk: { type: 'string', default: '10000' },
    'seed-workers': { type: 'string', default: '2' },
    'check-cases': { type: 'string', default: '300' },
    only: { type: 'string' },
    'webhook-events': { type: 'string', default: '2000' },
    'webhook-chunk': { type: 'string', default: '250' },
    'webhook-timeout': { type: 'string', default: '10' },
    'webhook-rate': { type: 'string', default: '100' },
    'webhook-seconds': { type: 'string', default: '10' },
  },
})

function whole(name: string, raw: string | undefined, min: number): number {
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min) throw new Error(`--${name} must be a whole number of at least ${min}`)
  return value
}

const databaseUrl = process.env.DATABASE_URL ?? ''
if (databaseUrl === '') {
  console.error('npm run bench needs DATABASE_URL: a PostgreSQL database to create its schemas in')
  process.exit(2)
}
const options = {
  cases: whole('cases', flags.cases, 1000),
  duration: whole('duration', flags.duration, 1),
  rounds: whole('rounds', flags.rounds, 1),
  warmup: whole('warmup', flags.warmup, 0),
  connections: whole('connections', flags.connections, 1),
  chunk: whole('chunk', flags.chunk, 100),
  seedWorkers: whole('seed-workers', flags['seed-workers'], 1),
  checkCases: whole('check-cases', flags['check-cases'], 30),
  webhookEvents: whole('webhook-events', flags['webhook-events'], 100),
  webhookChunk: whole('webhook-chunk', flags['webhook-chunk'], 1),
  webhookTimeout: whole('webhook-timeout', flags['webhook-timeout'], 1),
  webhookRate: whole('webhook-rate', flags['webhook-rate'], 1),
  webhookSeconds: whole('webhook-seconds', flags['webhook-seconds'], 1),
}
const scenarios = ['api', 'webhooks', 'embedded'] as const
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
const load1 = () => os.loadavg()[0]?.toFixed(2)
const servers: Array<Server | Worker> = []
/** Schemas of the webhook runs; each run drops its own, and an interrupted run is dropped here. */
const webhookSchemas: string[] = []
let dropOnExit = false

async function cleanUp() {
  await Promise.allSettled(servers.map((server) => server.stop()))
  servers.length = 0
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
  log(`seeding ${fixed(options.cases)} cases into ${schema}, encrypted at rest…`)
  const started = Date.now()
  let reported = 0
  await seedCases({
    ...target,
    cases: options.cases,
    chunk: options.chunk,
    workers: options.seedWorkers,
    procedure: loadSops().current('adult'),
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

function equivalenceTable(report: EquivalenceReport): string {
  const operations = table(
    ['operation', 'status service / minimal', 'statements service / minimal', 'same answer'],
    report.operations.map((check) => [
      operationTitles[check.operation],
      `${check.status.service} / ${check.status.minimal}`,
      `${check.statements.service} / ${check.statements.minimal}`,
      check.differences.length === 0 ? 'yes' : `NO: ${check.differences.join('; ')}`,
    ]),
  )
  const rows = report.rows.map(
    (check) =>
      `  ${check.table}: ${check.differences.length === 0 ? 'same rows' : `DIFFERENT: ${check.differences.join('; ')}`}`,
  )
  return `${operations}\nrows written by all seven:\n${rows.join('\n')}`
}

let built = false
/** The service as production runs it: compiled by `npm run build` (into build/), unless --tsx. */
function serviceEntry(): string {
  if (flags.tsx) return 'src/server.ts'
  if (!built) {
    const started = Date.now()
    execFileSync('bash', ['scripts/build.sh'], { cwd: root, stdio: 'ignore' })
    built = true
    log(`compiled the service (npm run build) in ${seconds(Date.now() - started)}`)
  }
  return 'build/src/server.js'
}

async function startServers() {
  const entry = serviceEntry()
  const common = { DATABASE_URL: databaseUrl, DATABASE_SCHEMA: schema }
  const service = await startServer(
    'service',
    entry,
    {
      ...common,
      LOG_LEVEL: 'warn',
      JOBS: 'external',
      DEMO_DATA: 'never',
      // The highest value src/config.ts accepts: the load must never meet the rate limit.
      RATE_LIMIT_PER_MINUTE: '1000000',
    },
    '/health/live',
    root,
  )
  servers.push(service)
  const minimal = await startServer('minimal', 'scripts/bench/minimal-server.ts', common, '/ready', root)
  servers.push(minimal)
  return { service, minimal }
}

async function run(server: Server, operation: OperationName, cases: number[], cursors: string[]): Promise<LoadResult> {
  const common = { url: server.url, pid: server.pid, connections: options.connections }
  // A warm-up would spend fresh cases: the changes run warm after the reads anyway.
  if (options.warmup > 0 && !consuming.has(operation)) {
    await load({ ...common, seconds: options.warmup, next: factory(operation, cases, cursors) })
  }
  const result = await load({
    ...common,
    seconds: options.duration,
    next: factory(operation, cases, cursors),
    ...(consuming.has(operation) ? { amount: cases.length } : {}),
  })
  log(
    `  ${operationTitles[operation]} on the ${server.name}: ${fixed(result.requestsPerSecond)} req/s, ` +
      `p95 ${fixed(result.p95, 1)} ms, load average ${load1()}` +
      (result.exhausted ? ` (out of fresh cases after ${fixed(result.seconds, 1)} s)` : ''),
  )
  return result
}

async function main() {
  const startedAt = new Date()
  log(`trm-api bench, ${startedAt.toISOString()}`)
  log(
    `node ${process.version}, ${os.cpus().length} cores, load average ${os
      .loadavg()
      .map((v) => v.toFixed(2))
      .join(' ')}`,
  )
  if (runs('api')) await apiScenario(startedAt)
  if (runs('webhooks')) await webhookScenario()
  if (runs('embedded')) {
    log('\nembedded database (PGlite): the service over HTTP beside PGlite alone in this process')
    log(
      await runEmbedded({
        root,
        entry: serviceEntry(),
        seconds: options.duration,
        connections: options.connections,
        log,
      }),
    )
  }
  log(
    `\nfinished ${new Date().toISOString()}, load average ${os
      .loadavg()
      .map((v) => v.toFixed(2))
      .join(' ')}`,
  )
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
  log(`\nchecking the minimal implementation against the service on twin data sets of ${options.checkCases} cases…`)
  const report = await checkEquivalence({
    connectionString: databaseUrl,
    prefix: `${schema}_check`,
    cases: options.checkCases,
    masterKeys: process.env.DATA_ENCRYPTION_KEYS ?? '',
  })
  log(equivalenceTable(report))
  const statements = new Map(report.operations.map((check) => [check.operation, check.statements]))

  const cases = await prepareSchema()
  log(`tables: ${await tableSizes(target)}`)
  const fresh = await freshCases(target)
  const cursors = await feedCursors(target, demoOrganisationIds.iomUkraine, 5000)
  const reads = shuffled(
    Array.from({ length: cases }, (_, index) => index + 1).filter((n) => eligible('read', n)),
    1,
  )
  /** Each change's fresh cases, shuffled, then dealt out: half to each implementation, a share to each round. */
  const shares = (operation: OperationName, side: 0 | 1, round: number): number[] => {
    if (!consuming.has(operation)) return operation === 'read' ? reads : []
    const mine = shuffled(fresh[operation as keyof typeof fresh], 2).filter((_, index) => index % 2 === side)
    const size = Math.floor(mine.length / options.rounds)
    return mine.slice(round * size, (round + 1) * size)
  }

  log('\nthe list and feed queries alone, before any load:')
  const timings = await timeQueries(target)
  log(queryTable(timings))

  const { service, minimal } = await startServers()
  log(
    `\nload: ${options.connections} connections, ${options.rounds} rounds of ${options.duration} s per run ` +
      `(${options.warmup} s warm-up before each read), the two implementations interleaved`,
  )
  const results: Measured[] = operationNames.map((operation) => ({
    operation,
    service: [],
    minimal: [],
    statements: statements.get(operation) ?? { service: Number.NaN, minimal: Number.NaN },
  }))
  for (let round = 0; round < options.rounds; round++) {
    log(`round ${round + 1} of ${options.rounds}`)
    for (const measured of results) {
      const order = round % 2 === 0 ? (['service', 'minimal'] as const) : (['minimal', 'service'] as const)
      for (const name of order) {
        const server = name === 'service' ? service : minimal
        const cases = shares(measured.operation, name === 'service' ? 0 : 1, round)
        measured[name].push(await run(server, measured.operation, cases, cursors))
      }
    }
  }
  const peakRss = Math.max(...results.flatMap((measured) => measured.service.map((result) => result.peakRss)))
  log(
    `\nresults: ${fixed(cases)} cases, ${startedAt.toISOString()}, medians of ${options.rounds} rounds, load average ${load1()}`,
  )
  log(resultTable(results))
  log(
    `peak RSS under load: service (${flags.tsx ? 'tsx' : 'compiled'}) ${megabytes(peakRss)} MB, minimal ` +
      `${megabytes(Math.max(...results.flatMap((measured) => measured.minimal.map((result) => result.peakRss))))} MB`,
  )
  log(`\n${targetSummary(results, cases, peakRss, timings)}`)
  const unequal =
    report.operations.filter((check) => check.differences.length > 0).length +
    report.rows.filter((check) => check.differences.length > 0).length
  if (unequal > 0)
    log(`\nthe minimal implementation DIFFERS from the service in ${unequal} place(s): see the check above`)
  await Promise.allSettled(servers.map((server) => server.stop()))
  servers.length = 0
}

try {
  await main()
} catch (error) {
  console.error(error)
  process.exitCode = 1
} finally {
  await cleanUp()
}
