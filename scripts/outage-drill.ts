// The outage drill: a database restart with traffic flowing, on a PostgreSQL cluster of its own.
// It creates a private, temporary cluster on a free port, starts the service (JOBS=external) and
// one worker against it, registers a webhook, sends load, stops the database for a while, starts
// it again, and reports what the clients saw and whether every event written was relayed and
// delivered. It touches no other cluster and removes its own when done. It reports; it never fails.
//   npm run drill:outage -- [--clients 4] [--before 10] [--down 20] [--after 15]
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { demoOrganisations } from '../src/demo/demo-data.js'
import { freePort } from './bench/processes.js'

const { values: options } = parseArgs({
  options: {
    clients: { type: 'string', default: '4' },
    before: { type: 'string', default: '10' },
    down: { type: 'string', default: '20' },
    after: { type: 'string', default: '15' },
  },
})
const clientCount = Number(options.clients)
const seconds = { before: Number(options.before), down: Number(options.down), after: Number(options.after) }
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** IOM Poland's caseworker key from the demo data, which the drill's database is seeded with. */
const sender = (() => {
  const key = demoOrganisations.flatMap((o) => o.principals).find((p) => p.key.prefix === 'demoiomplcw1')?.key
  if (!key) throw new Error('the demo data has no IOM Poland caseworker')
  return `trm_${key.prefix}_${key.secret}`
})()

const newCase = {
  profile: { age_band: '25_34', sex: 'female', nationality: 'UA', country_of_return: 'UA', vulnerabilities: [] },
  sections: { identity: { given_name: 'Drill', family_name: 'Person' } },
}

// ---- a private PostgreSQL cluster -------------------------------------------------------------

function postgresBin(): string {
  const base = '/usr/lib/postgresql'
  const versions = existsSync(base) ? readdirSync(base).sort((a, b) => Number(b) - Number(a)) : []
  for (const version of versions) {
    const bin = path.join(base, version, 'bin')
    if (existsSync(path.join(bin, 'initdb'))) return bin
  }
  return path.dirname(execFileSync('which', ['initdb'], { encoding: 'utf8' }).trim())
}

/** initdb and postgres refuse to run as root: as root, they run as the postgres user. */
function runPostgresTool(bin: string, args: string[]): string {
  const asRoot = process.getuid?.() === 0
  return execFileSync(asRoot ? 'runuser' : bin, asRoot ? ['-u', 'postgres', '--', bin, ...args] : args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

async function privateCluster() {
  const bin = postgresBin()
  const dir = mkdtempSync(path.join(os.tmpdir(), 'trm-outage-drill-'))
  if (process.getuid?.() === 0) execFileSync('chown', ['postgres', dir])
  const data = path.join(dir, 'data')
  const port = await freePort()
  runPostgresTool(path.join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'])
  const pgCtl = (...args: string[]) =>
    runPostgresTool(path.join(bin, 'pg_ctl'), ['-D', data, '-w', '-t', '60', ...args])
  const cluster = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    version: runPostgresTool(path.join(bin, 'postgres'), ['--version']).trim(),
    start: () =>
      pgCtl('-l', path.join(dir, 'postgres.log'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, 'start'),
    stop: () => pgCtl('-m', 'fast', 'stop'),
    remove() {
      try {
        pgCtl('-m', 'immediate', 'stop')
      } catch {}
      rmSync(dir, { recursive: true, force: true })
    },
  }
  cluster.start()
  return cluster
}

// ---- the service's processes ------------------------------------------------------------------

interface Process {
  name: string
  output(): string
  /** Exits the drill did not ask for. */
  exits: number
  stop(): Promise<void>
}

function startProcess(name: string, entry: string, env: Record<string, string>): Process {
  let output = ''
  let stopping = false
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-200_000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const process_: Process = {
    name,
    output: () => output,
    exits: 0,
    async stop() {
      stopping = true
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      if ((await Promise.race([exited.then(() => 'exited'), sleep(15_000).then(() => 'late')])) === 'late') {
        child.kill('SIGKILL')
        await exited
      }
    },
  }
  child.once('exit', () => {
    if (!stopping) process_.exits += 1
  })
  return process_
}

async function waitForReady(url: string, service: Process): Promise<void> {
  const deadline = Date.now() + 90_000
  while (Date.now() < deadline) {
    if (service.exits > 0) throw new Error(`${service.name} exited before it was ready:\n${service.output()}`)
    const status = await fetch(`${url}/health/ready`).then(
      (response) => response.status,
      () => 0,
    )
    if (status === 200) return
    await sleep(250)
  }
  throw new Error(`${service.name} was not ready within 90 s:\n${service.output()}`)
}

/** A partner's webhook receiver: the case of every delivery it got. */
async function startReceiver() {
  const cases = new Set<string>()
  const server = createServer((request, response) => {
    let body = ''
    request.on('data', (chunk) => {
      body += chunk
    })
    request.on('end', () => {
      cases.add(JSON.parse(body).case_id)
      response.writeHead(204).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    cases,
    close: () => {
      server.closeAllConnections()
      server.close()
    },
  }
}

// ---- load ---------------------------------------------------------------------------------------

type Phase = 'before' | 'down' | 'after'
const outcomes = ['2xx', '503 + Retry-After', '503 without', 'other 5xx', '4xx', 'no answer'] as const
type Outcome = (typeof outcomes)[number]

function emptyTally(): Record<Outcome, number> {
  return Object.fromEntries(outcomes.map((outcome) => [outcome, 0])) as Record<Outcome, number>
}

async function send(url: string, init: RequestInit): Promise<{ outcome: Outcome; response?: Response }> {
  try {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) })
    const status = response.status
    const outcome: Outcome =
      status < 300
        ? '2xx'
        : status === 503
          ? Number(response.headers.get('retry-after')) > 0
            ? '503 + Retry-After'
            : '503 without'
          : status >= 500
            ? 'other 5xx'
            : '4xx'
    return { outcome, response }
  } catch {
    return { outcome: 'no answer' }
  }
}

async function query<R extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query<R>(text, values)).rows
  } finally {
    await client.end()
  }
}

/** How many of these cases' case.opened events the relay turned into queued webhook deliveries. */
async function relayedCount(url: string, caseIds: string[]): Promise<number> {
  const rows = await query<{ count: number }>(
    url,
    `select count(distinct e.case_id)::int as count from events e join webhook_deliveries d on d.event_id = e.id
     where e.type = 'case.opened' and d.queued_at is not null and e.case_id = any($1::uuid[])`,
    [caseIds],
  )
  return rows[0]?.count ?? 0
}

/** Where the deliveries of cases whose event never reached the receiver got stuck. */
async function deliveryStates(url: string, caseIds: string[]): Promise<string[]> {
  const deliveries = await query<{ status: string | null; queued: boolean; count: number }>(
    url,
    `select d.status, d.queued_at is not null as queued, count(*)::int as count
     from events e left join webhook_deliveries d on d.event_id = e.id
     where e.type = 'case.opened' and e.case_id = any($1::uuid[]) group by 1, 2 order by 1, 2`,
    [caseIds],
  )
  const jobs = await query<{ state: string; count: number }>(
    url,
    `select state, count(*)::int as count from pgboss.job where name = 'deliver-webhook' group by 1 order by 1`,
  )
  return [
    `undelivered: ${deliveries.map((r) => `${r.status ?? 'no delivery'}${r.queued ? ' (queued)' : ''} ×${r.count}`).join(', ')}`,
    `delivery jobs, all: ${jobs.map((r) => `${r.state} ×${r.count}`).join(', ')}`,
  ]
}

async function main() {
  const cluster = await privateCluster()
  const processes: Process[] = []
  const receiver = await startReceiver()
  const cleanUp = async () => {
    for (const child of processes) await child.stop()
    receiver.close()
    cluster.remove()
  }
  process.once('SIGINT', () => void cleanUp().then(() => process.exit(130)))
  try {
    const apiPort = await freePort()
    const api = `http://127.0.0.1:${apiPort}`
    const env = {
      DATABASE_URL: cluster.url,
      HOST: '127.0.0.1',
      PORT: String(apiPort),
      JOBS: 'external',
      DEMO_DATA: 'always',
      LOG_LEVEL: 'warn',
      RATE_LIMIT_PER_MINUTE: '1000000',
      WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
      WEBHOOK_RETRY_DELAY_SECONDS: '1',
      JOB_SUPERVISE_SECONDS: '5',
    }
    const service = startProcess('api', 'src/server.ts', { ...env, DATABASE_APPLICATION_NAME: 'trm-api-drill' })
    processes.push(service)
    await waitForReady(api, service)
    const worker = startProcess('worker', 'src/worker.ts', { ...env, DATABASE_APPLICATION_NAME: 'trm-worker-drill' })
    processes.push(worker)

    const auth = { authorization: `Bearer ${sender}`, 'content-type': 'application/json' }
    const endpoint = await fetch(`${api}/v1/webhook-endpoints`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ url: receiver.url, event_types: ['case.opened'] }),
    })
    if (endpoint.status !== 201) throw new Error(`registering the webhook answered ${endpoint.status}`)
    // The load starts once the worker delivers: a case opened now must reach the receiver.
    const first = await fetch(`${api}/v1/cases`, { method: 'POST', headers: auth, body: JSON.stringify(newCase) })
    const firstId = ((await first.json()) as { id: string }).id
    const warm = Date.now() + 120_000
    while (!receiver.cases.has(firstId) && Date.now() < warm) await sleep(250)
    if (!receiver.cases.has(firstId)) throw new Error(`the worker delivered nothing within 120 s:\n${worker.output()}`)

    let phase: Phase = 'before'
    let running = true
    const tallies: Record<Phase, Record<Outcome, number>> = {
      before: emptyTally(),
      down: emptyTally(),
      after: emptyTally(),
    }
    const opened: { id: string; phase: Phase }[] = []
    let unconfirmed = 0
    let finishBy = Number.POSITIVE_INFINITY

    // Each client opens cases and reads, as a partner system does; on a 503 it waits as Retry-After
    // says and sends the same change again with the same Idempotency-Key.
    const clients = Array.from({ length: clientCount }, async (_, client) => {
      let pending: { key: string; phase: Phase } | undefined
      // When the load stops, a client still finishes the change it started (for at most a minute).
      for (let n = client; running || (pending && Date.now() < finishBy); n += 1) {
        const kind = pending ? 0 : n % 4
        if (kind === 0) pending ??= { key: randomUUID(), phase }
        const started = phase
        const { outcome, response } =
          kind === 0
            ? await send(`${api}/v1/cases`, {
                method: 'POST',
                headers: { ...auth, 'idempotency-key': pending?.key ?? '' },
                body: JSON.stringify(newCase),
              })
            : await send(`${api}${['', '/v1/me', '/v1/cases?limit=5', '/v1/events?limit=5'][kind]}`, { headers: auth })
        tallies[started][outcome] += 1
        const body = (response ? await response.json().catch(() => undefined) : undefined) as
          | { id?: string }
          | undefined
        if (kind === 0 && outcome === '2xx' && pending) {
          opened.push({ id: String(body?.id), phase: pending.phase })
          pending = undefined
        }
        if (outcome === '503 + Retry-After') {
          await sleep(Number(response?.headers.get('retry-after')) * 1000)
        } else if (outcome !== '2xx') {
          await sleep(1000)
        }
      }
      if (pending) unconfirmed += 1
    })

    const health: Record<Phase, Record<string, number>> = { before: {}, down: {}, after: {} }
    const probing = (async () => {
      while (running) {
        const observed = phase
        for (const probe of ['live', 'ready']) {
          const status = await fetch(`${api}/health/${probe}`).then(
            (response) => String(response.status),
            () => 'no answer',
          )
          const label = `${probe} ${status}`
          health[observed][label] = (health[observed][label] ?? 0) + 1
        }
        await sleep(1000)
      }
    })()

    await sleep(seconds.before * 1000)
    cluster.stop()
    phase = 'down'
    await sleep(seconds.down * 1000)
    cluster.start()
    phase = 'after'
    await sleep(seconds.after * 1000)
    running = false
    finishBy = Date.now() + 60_000
    await Promise.all([...clients, probing])

    // Every case opened must reach the feed and the webhook receiver: the outbox, the relay and the
    // delivery jobs all lived through the outage.
    // Deliveries drain at the queue's pace, so the drill waits while they make progress (at most
    // 10 minutes) rather than for a fixed time.
    const loadEnded = Date.now()
    let lastProgress = loadEnded
    let deliveredSoFar = receiver.cases.size
    while (opened.some((c) => !receiver.cases.has(c.id)) && Date.now() - lastProgress < 30_000) {
      if (Date.now() - loadEnded > 600_000) break
      await sleep(500)
      if (receiver.cases.size > deliveredSoFar) {
        deliveredSoFar = receiver.cases.size
        lastProgress = Date.now()
      }
    }
    const drained = Math.round((lastProgress - loadEnded) / 1000)
    const relayed = await relayedCount(
      cluster.url,
      opened.map((c) => c.id),
    )
    const inFeed = new Set<string>()
    for (let after: string | undefined, more = true; more; ) {
      const page = (await (
        await fetch(`${api}/v1/events?limit=500${after ? `&after=${after}` : ''}`, { headers: auth })
      ).json()) as { items: { type: string; case_id: string }[]; next_cursor: string; has_more: boolean }
      for (const event of page.items) if (event.type === 'case.opened') inFeed.add(event.case_id)
      after = page.next_cursor
      more = page.has_more
    }
    const delivered = opened.filter((c) => receiver.cases.has(c.id)).length
    const fed = opened.filter((c) => inFeed.has(c.id)).length

    const exits = processes.map((p) => `${p.name} ${p.exits}`).join(', ')
    const errorShutdowns = processes.filter((p) => /(shutting down|stopping) after an error/.test(p.output())).length
    const lines = [
      `outage drill: ${cluster.version}, private cluster on 127.0.0.1:${cluster.port}; one API (JOBS=external) and one worker`,
      `${clientCount} clients; database up ${seconds.before} s, stopped ${seconds.down} s (pg_ctl stop -m fast), up again ${seconds.after} s`,
      '',
      `| phase | requests | ${outcomes.join(' | ')} |`,
      `| --- | ---: | ${outcomes.map(() => '---:').join(' | ')} |`,
      ...(['before', 'down', 'after'] as const).map((p) => {
        const tally = tallies[p]
        const total = outcomes.reduce((sum, outcome) => sum + tally[outcome], 0)
        return `| ${p} | ${total} | ${outcomes.map((outcome) => tally[outcome]).join(' | ')} |`
      }),
      '',
      `health probes: ${(['before', 'down', 'after'] as const)
        .map(
          (p) =>
            `${p}: ${Object.entries(health[p])
              .map(([label, count]) => `${label} ×${count}`)
              .join(', ')}`,
        )
        .join('; ')}`,
      `process exits: ${exits}; shutdowns after an error: ${errorShutdowns}`,
      `cases opened (201): ${opened.length} (before ${opened.filter((c) => c.phase === 'before').length}, ` +
        `during ${opened.filter((c) => c.phase === 'down').length}, after ${opened.filter((c) => c.phase === 'after').length}); ` +
        `changes still unconfirmed at the end: ${unconfirmed}`,
      `their case.opened events: in the feed ${fed}/${opened.length}, relayed to a webhook delivery ${relayed}/${opened.length}, ` +
        `delivered ${delivered}/${opened.length} (the last ${drained} s after the load stopped); ` +
        `lost: ${opened.length - Math.min(fed, relayed, delivered)}`,
    ]
    const missing = opened.filter((c) => !receiver.cases.has(c.id)).map((c) => c.id)
    if (missing.length > 0) lines.push('', ...(await deliveryStates(cluster.url, missing)))
    for (const child of processes.filter((p) => p.exits > 0)) {
      lines.push('', `${child.name} exited; its last output:`, child.output().split('\n').slice(-15).join('\n'))
    }
    process.stdout.write(`${lines.join('\n')}\n`)
  } finally {
    await cleanUp()
  }
}

await main()
