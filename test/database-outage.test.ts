import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createServer } from 'node:http'
import net, { type AddressInfo, type Socket } from 'node:net'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import pg from 'pg'
import t, { type Test } from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { openDatabase } from '../src/db/database.js'
import { migrate, readMigrations } from '../src/db/migrate.js'
import { seedDemoIfEmpty } from '../src/demo/seed.js'
import { contractViolations, testDatabaseUrl, testMasterKey } from './fixtures/app.js'
import { eventually } from './fixtures/eventually.js'
import { newCase, sender } from './fixtures/referral.js'

const skip = testDatabaseUrl
  ? false
  : 'needs PostgreSQL (set TEST_DATABASE_URL): the embedded database has no server sessions to end or lose'

function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'trm-outage-test' })
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end()
  }
}

/** Ends every session of the given application name, as an administrator or a failover would; answers how many. */
async function endSessions(applicationName: string): Promise<number> {
  return withClient(testDatabaseUrl as string, async (client) => {
    const result = await client.query<{ ended: number }>(
      'select count(*) filter (where pg_terminate_backend(pid))::int as ended from pg_stat_activity where application_name = $1',
      [applicationName],
    )
    return result.rows[0]?.ended ?? 0
  })
}

async function sessionsOf(applicationName: string): Promise<number> {
  return withClient(testDatabaseUrl as string, async (client) => {
    const result = await client.query<{ count: number }>(
      'select count(*)::int as count from pg_stat_activity where application_name = $1',
      [applicationName],
    )
    return result.rows[0]?.count ?? 0
  })
}

/**
 * The service in a schema of its own on the given PostgreSQL, with the demo data, its sessions
 * named `applicationName`. Connection errors it hears outside any query are collected.
 */
async function startService(t: Test, url: string, applicationName: string, webhooks = {}) {
  const schema = uniqueName('test_outage')
  const connectionErrors: Error[] = []
  const database = await openDatabase({
    databaseUrl: url,
    databaseSchema: schema,
    databaseApplicationName: applicationName,
    onConnectionError: (error) => connectionErrors.push(error),
  })
  t.teardown(() =>
    withClient(testDatabaseUrl as string, async (client) => {
      await client.query(`drop schema if exists "${schema}_pgboss" cascade`)
      await client.query(`drop schema if exists "${schema}" cascade`)
    }),
  )
  await migrate(database, await readMigrations())
  await seedDemoIfEmpty(database.db)
  // The traffic runs as fast as the machine allows, and the rate limit is not what is tested here.
  const defaults = loadConfig({ RATE_LIMIT_PER_MINUTE: '1000000' })
  const app = await buildApp({
    config: { ...defaults, logLevel: 'silent', webhooks: { ...defaults.webhooks, ...webhooks } },
    database,
    migrations: await readMigrations(),
  })
  t.teardown(() => app.close())
  await app.ready()
  const violations: string[] = []
  return {
    app,
    schema,
    connectionErrors,
    violations,
    async request(options: InjectOptions & { key?: string }): Promise<LightMyRequestResponse> {
      const { key, ...rest } = options
      const headers = { ...(rest.headers ?? {}), ...(key ? { authorization: `Bearer ${key}` } : {}) }
      const response = await app.inject({ ...rest, headers })
      for (const problem of contractViolations(String(rest.method ?? 'GET'), String(rest.url), response)) {
        violations.push(`${rest.method ?? 'GET'} ${rest.url} ${response.statusCode}: ${problem}`)
      }
      return response
    },
  }
}

type Service = Awaited<ReturnType<typeof startService>>

/** A read, a list, a change and the feed: what partner systems do all day. */
const traffic: ((service: Service) => Promise<LightMyRequestResponse>)[] = [
  (service) => service.request({ method: 'GET', url: '/v1/me', key: sender }),
  (service) => service.request({ method: 'GET', url: '/v1/cases?limit=5', key: sender }),
  (service) =>
    service.request({
      method: 'POST',
      url: '/v1/cases',
      key: sender,
      headers: { 'idempotency-key': randomUUID() },
      payload: newCase,
    }),
  (service) => service.request({ method: 'GET', url: '/v1/events?limit=5', key: sender }),
]

/** What is wrong with an answer given while the database comes and goes: anything but a 2xx or a 503 to retry. */
function unexpected(response: LightMyRequestResponse): string | undefined {
  if (response.statusCode >= 200 && response.statusCode < 300) return undefined
  if (
    response.statusCode === 503 &&
    response.headers['content-type'] === 'application/problem+json; charset=utf-8' &&
    Number(response.headers['retry-after']) > 0 &&
    response.json().type === 'urn:trm:problem:database-unavailable'
  ) {
    return undefined
  }
  return `${response.statusCode} ${response.body}`
}

t.test(
  'sessions ended under load: every answer is a 2xx or a 503 to retry, and the service goes on',
  { skip },
  async (t) => {
    const applicationName = uniqueName('trm_api')
    const service = await startService(t, testDatabaseUrl as string, applicationName)
    const answers: LightMyRequestResponse[] = []
    let stop = false
    const clients = Array.from({ length: 8 }, async (_, i) => {
      for (let n = i; !stop; n += 1)
        answers.push(await (traffic[n % traffic.length] as (typeof traffic)[number])(service))
    })
    let ended = 0
    for (let round = 0; round < 6; round += 1) {
      const before = answers.length
      await eventually(
        () => answers.length,
        (count) => count >= before + 20,
      )
      ended += await endSessions(applicationName)
    }
    stop = true
    await Promise.all(clients)

    t.ok(ended > 0, `the service's sessions were ended (${ended})`)
    t.ok(answers.length >= 120, `requests kept flowing (${answers.length})`)
    t.same(answers.map(unexpected).filter(Boolean), [], 'no 500, no other error')
    t.same(service.violations, [], 'every answer matches the contract')
    const lost = await eventually(
      () => service.connectionErrors.length,
      (count) => count > 0,
    )
    t.ok(lost > 0, 'connections that broke between queries were reported, not thrown')

    t.equal((await service.request({ method: 'GET', url: '/v1/me', key: sender })).statusCode, 200, 'then it serves')
    t.equal((await service.request({ method: 'GET', url: '/health/ready' })).statusCode, 200, 'and is ready')
  },
)

/** A TCP relay to PostgreSQL that can be taken down (every connection cut, none accepted) and brought back. */
async function startRelay(t: Test, target: URL) {
  const sockets = new Set<Socket>()
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname)
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('error', () => {})
      socket.on('close', () => {
        sockets.delete(socket)
        client.destroy()
        upstream.destroy()
      })
    }
    client.pipe(upstream).pipe(client)
  })
  let port = 0
  const up = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => {
        port = (server.address() as AddressInfo).port
        resolve()
      })
    })
  const down = async () => {
    await new Promise((resolve) => {
      server.close(resolve)
      for (const socket of sockets) socket.destroy()
    })
  }
  await up()
  t.teardown(() => (server.listening ? down() : undefined))
  const url = new URL(target)
  url.hostname = '127.0.0.1'
  url.port = String(port)
  return { url: url.toString(), up, down }
}

t.test(
  'while the database is unreachable every request is a 503 to retry; then the same app recovers',
  { skip },
  async (t) => {
    const relay = await startRelay(t, new URL(testDatabaseUrl as string))
    const service = await startService(t, relay.url, uniqueName('trm_api'))
    t.equal((await service.request({ method: 'GET', url: '/v1/me', key: sender })).statusCode, 200, 'up: 200')

    // A caller the service authenticated lately is held in memory only while it hears revocations:
    // once its listening connection is found gone it forgets them, and from then on even `/v1/me`
    // needs the database. Until it finds out (a moment, longer on a loaded machine), `/v1/me` may
    // still answer from memory, which is right: no key can be revoked while the database is down.
    const forgotten = once(service.app.credentials, 'forgotten')
    await relay.down()
    await forgotten
    for (const send of traffic) {
      const response = await send(service)
      t.equal(unexpected(response), undefined, `down: ${response.statusCode} for ${response.raw.req.url}`)
      t.equal(response.statusCode, 503, 'down: 503')
    }
    const ready = await service.request({ method: 'GET', url: '/health/ready' })
    t.equal(ready.statusCode, 503, 'down: not ready')
    t.ok(Number(ready.headers['retry-after']) > 0, 'down: readiness says when to ask again')
    t.equal((await service.request({ method: 'GET', url: '/health/live' })).statusCode, 200, 'down: still alive')

    await relay.up()
    t.equal((await service.request({ method: 'GET', url: '/health/ready' })).statusCode, 200, 'back: ready')
    for (const send of traffic) {
      const response = await send(service)
      t.ok(
        response.statusCode >= 200 && response.statusCode < 300,
        `back: ${response.statusCode} for ${response.raw.req.url}`,
      )
    }
    t.same(service.violations, [], 'every answer matches the contract')
  },
)

/** A partner's webhook receiver on loopback: records the case id of every delivery. */
async function startReceiver(t: Test) {
  const cases: string[] = []
  const server = createServer((request, response) => {
    let body = ''
    request.on('data', (chunk) => {
      body += chunk
    })
    request.on('end', () => {
      cases.push(JSON.parse(body).case_id)
      response.writeHead(204).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, cases }
}

t.test('a worker whose sessions are ended stays up and goes on relaying and delivering events', { skip }, async (t) => {
  const receiver = await startReceiver(t)
  const service = await startService(t, testDatabaseUrl as string, uniqueName('trm_api'), {
    allowPrivateTargets: true,
  })
  const endpoint = await service.request({
    method: 'POST',
    url: '/v1/webhook-endpoints',
    key: sender,
    payload: { url: receiver.url, event_types: ['case.opened'] },
  })
  t.equal(endpoint.statusCode, 201, 'IOM Poland registers a webhook for opened cases')

  const workerName = uniqueName('trm_worker')
  let output = ''
  const worker: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/worker.ts'], {
    env: {
      ...process.env,
      DATABASE_URL: testDatabaseUrl,
      DATABASE_SCHEMA: service.schema,
      DATA_ENCRYPTION_KEYS: testMasterKey,
      DATABASE_APPLICATION_NAME: workerName,
      LOG_LEVEL: 'warn',
      JOB_SUPERVISE_SECONDS: '1',
      WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
      WEBHOOK_RETRY_DELAY_SECONDS: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  for (const stream of [worker.stdout, worker.stderr]) stream?.on('data', (chunk) => (output += chunk))
  t.teardown(() => {
    worker.kill('SIGKILL')
  })

  async function openCase(): Promise<string> {
    const opened = await service.request({ method: 'POST', url: '/v1/cases', key: sender, payload: newCase })
    return opened.json().id as string
  }
  const before = await openCase()
  await eventually(
    () => receiver.cases,
    (cases) => cases.includes(before),
  )
  t.ok(receiver.cases.includes(before), 'before: the worker delivers the event of a case opened')

  let ended = 0
  for (let round = 0; round < 3; round += 1) {
    await eventually(
      () => sessionsOf(workerName),
      (count) => count > 0,
    )
    ended += await endSessions(workerName)
  }
  t.ok(ended > 0, `the worker's sessions were ended (${ended})`)

  const after = await openCase()
  await eventually(
    () => receiver.cases,
    (cases) => cases.includes(after),
  )
  t.ok(receiver.cases.includes(after), 'after: the worker delivers the event of the next case')
  t.equal(worker.exitCode, null, 'the worker is still running')
  t.equal(worker.signalCode, null, 'and was not killed')
  t.notMatch(output, /stopping after an error/, 'it never began to stop')
  t.match(output, /database connection lost/, 'it noticed the lost connections and carried on')
})
