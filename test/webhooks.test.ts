import { type ChildProcess, spawn } from 'node:child_process'
import { sql } from 'kysely'
import { pino } from 'pino'
import { Webhook } from 'standardwebhooks'
import t, { type Test } from 'tap'
import { backgroundWork } from '../src/app.js'
import { startJobQueue } from '../src/jobs/queue.js'
import { isPublicAddress, publicLookup } from '../src/webhooks/targets.js'
import { demoKeys, startTestApp, type TestApp, testDatabaseUrl, testMasterKey } from './fixtures/app.js'
import { eventually } from './fixtures/eventually.js'
import { feedUntil } from './fixtures/feed.js'
import { newCase, openReferral, sender } from './fixtures/referral.js'
import { type Received, type Receiver, startReceiver, webhookTestConfig } from './fixtures/webhook-receiver.js'

// A receiver on loopback answers at once, unless a loaded machine starves the process that runs
// both it and the delivery: a generous timeout keeps that from turning into a retry. No test here
// waits for a timeout; the receiver that hangs is killed with its worker.
const webhookConfig = webhookTestConfig({
  timeoutSeconds: 30,
  disableAfterFailedDeliveries: 2,
  concurrency: 16,
  perEndpointInFlight: 4,
  breakerFailures: 3,
  breakerCooldownSeconds: 1,
})

async function register(app: TestApp, key: string, payload: object) {
  const response = await app.request({ method: 'POST', url: '/v1/webhook-endpoints', key, payload })
  return { response, endpoint: response.json() as { id: string; secret: string; version: number } }
}

async function deliveries(app: TestApp, endpointId: string) {
  const response = await app.request({
    method: 'GET',
    url: `/v1/webhook-endpoints/${endpointId}/deliveries`,
    key: sender,
  })
  return response.json().items as {
    id: string
    event_id: string
    event_type: string
    status: string
    attempts: { status_code: number | null }[]
  }[]
}

/**
 * Opens a case and waits until a fresh endpoint at `path`, registered for it, has received its
 * event: the relay and the deliveries have run past it, so an endpoint that should not have had it
 * would have had it by now.
 */
async function caseOpenedReached(app: TestApp, receiver: Receiver, path: string): Promise<void> {
  await register(app, sender, { url: `${receiver.url}${path}`, event_types: ['case.opened'] })
  const caseId = await openCase(app)
  await eventually(
    () => receiver.at(path),
    (received) => received.some((delivery) => JSON.parse(delivery.body).case_id === caseId),
  )
}

async function openCase(app: TestApp): Promise<string> {
  return (await app.request({ method: 'POST', url: '/v1/cases', key: sender, payload: newCase })).json().id as string
}

t.test('webhooks: signed, filtered, retried, disabled, redelivered, rotated', async (t) => {
  const receiver = await startReceiver(t, {
    '/flaky': (_delivery, seen) => (seen < 2 ? 500 : 200),
    '/gone': () => 410,
    '/broken': () => 500,
  })
  const app = await startTestApp(t, webhookConfig)
  const queue = await startJobQueue(
    app.database.jobBackend,
    backgroundWork({ config: webhookConfig, database: app.database }),
    pino({ level: 'silent' }),
    { superviseSeconds: 1 },
  )
  t.teardown(() => queue.stop())

  const all = await register(app, sender, { url: `${receiver.url}/all`, description: 'every event' })
  t.equal(all.response.statusCode, 201, 'IOM Poland registers an endpoint')
  t.match(all.endpoint.secret, /^whsec_[A-Za-z0-9+/]{43}=$/, 'and gets its signing secret, once')
  t.equal(all.response.headers.location, `/v1/webhook-endpoints/${all.endpoint.id}`)
  const shown = await app.request({ method: 'GET', url: `/v1/webhook-endpoints/${all.endpoint.id}`, key: sender })
  t.notOk(shown.body.includes(all.endpoint.secret), 'reading the endpoint again never shows the secret')
  const packetsOnly = await register(app, sender, { url: `${receiver.url}/packets`, event_types: ['packet.sent'] })
  t.same(packetsOnly.response.json().event_types, ['packet.sent'], 'another subscribes to packet.sent only')
  const morocco = await register(app, demoKeys.demoiommacw1 as string, { url: `${receiver.url}/morocco` })
  t.equal(morocco.response.statusCode, 201, 'IOM Morocco, with no part in the case, registers one too')

  await t.test('every event goes to the endpoint, signed as Standard Webhooks says', async (t) => {
    const { caseId } = await openReferral(t, app)
    // openReferral records the return decision and takes it; sending the enquiry moves the case to referral_sent.
    const types = [
      'case.opened',
      'consent.recorded',
      'case.record_added',
      'case.transitioned',
      'packet.sent',
      'case.transitioned',
      'packet.received',
    ]
    const got = await eventually(
      () => receiver.at('/all'),
      (list) => list.length >= types.length,
    )
    const bodies = got.map((delivery) => JSON.parse(delivery.body))
    // Deliveries to one endpoint run side by side, so they may arrive in any order: the feed orders them.
    t.same(bodies.map((event) => event.type).sort(), [...types].sort(), 'the endpoint receives every event, each once')
    const feed = await feedUntil(app.request, sender, (events) => events.length >= types.length)
    const byId = new Map(bodies.map((event) => [event.id, event]))
    t.same(
      feed.map((event: { id: string }) => byId.get(event.id)),
      feed,
      'each body is the event as the feed gives it',
    )
    const verifier = new Webhook(all.endpoint.secret)
    for (const delivery of got) {
      t.same(verifier.verify(delivery.body, delivery.headers), JSON.parse(delivery.body), 'the signature verifies')
      t.equal(delivery.headers['webhook-id'], JSON.parse(delivery.body).id, 'webhook-id is the event id')
    }
    const first = got[0] as Received
    t.throws(
      // The case id with its last character changed, whatever that character was.
      () =>
        verifier.verify(
          first.body.replace(
            caseId,
            caseId.replace(/.$/, (c) => (c === '0' ? '1' : '0')),
          ),
          first.headers,
        ),
      /signature/i,
      'a tampered body fails verification',
    )
    const old = String(Math.floor(Date.now() / 1000) - 600)
    t.throws(
      () => verifier.verify(first.body, { ...first.headers, 'webhook-timestamp': old }),
      /too old/i,
      'an old timestamp fails verification',
    )
    t.throws(
      () => new Webhook(morocco.endpoint.secret).verify(first.body, first.headers),
      /signature/i,
      'another endpoint’s secret does not verify it',
    )
    await eventually(
      () => receiver.at('/packets'),
      (list) => list.length >= 1,
    )
    t.same(
      receiver.at('/packets').map((delivery) => JSON.parse(delivery.body).type),
      ['packet.sent'],
      'an endpoint subscribed to packet.sent gets only that',
    )
    t.same(receiver.at('/morocco'), [], 'nothing reaches an organisation that is no party')
    // The log is written just after the receiver answers.
    const log = await eventually(
      () => deliveries(app, all.endpoint.id),
      (items) => items.length === types.length && items.every((item) => item.status === 'succeeded'),
    )
    t.same(
      log.map((delivery) => [delivery.status, delivery.attempts.map((attempt) => attempt.status_code)]),
      types.map(() => ['succeeded', [200]]),
      'the delivery log shows one successful attempt each',
    )
  })

  await t.test('a receiver that fails twice gets the event at the third attempt', async (t) => {
    const flaky = await register(app, sender, { url: `${receiver.url}/flaky`, event_types: ['case.opened'] })
    const caseId = await openCase(app)
    const log = await eventually(
      () => deliveries(app, flaky.endpoint.id),
      (items) => items[0]?.status === 'succeeded',
    )
    t.same(
      log.map((delivery) => [delivery.status, delivery.attempts.map((attempt) => attempt.status_code)]),
      [['succeeded', [500, 500, 200]]],
      'two failures, then success',
    )
    const attempts = receiver.at('/flaky')
    t.equal(attempts.length, 3, 'three requests reached the receiver')
    t.equal(new Set(attempts.map((delivery) => delivery.headers['webhook-id'])).size, 1, 'all with the same webhook-id')
    t.equal(JSON.parse(attempts[2]?.body ?? '{}').case_id, caseId, 'carrying the event')
  })

  await t.test('410 Gone disables the endpoint at once', async (t) => {
    const gone = await register(app, sender, { url: `${receiver.url}/gone`, event_types: ['case.opened'] })
    await openCase(app)
    const endpoint = await eventually(
      async () =>
        (await app.request({ method: 'GET', url: `/v1/webhook-endpoints/${gone.endpoint.id}`, key: sender })).json(),
      (body) => body.enabled === false,
    )
    t.match(endpoint, { enabled: false, disabled_reason: 'gone' }, 'disabled, because the receiver is gone')
    t.same(
      (await deliveries(app, gone.endpoint.id)).map((delivery) => [delivery.status, delivery.attempts.length]),
      [['failed', 1]],
      'after one attempt, without retries',
    )
    await caseOpenedReached(app, receiver, '/after-gone')
    t.equal(receiver.at('/gone').length, 1, 'nothing more is sent to it')
    const redeliver = await app.request({
      method: 'POST',
      url: `/v1/webhook-endpoints/${gone.endpoint.id}/deliveries/${(await deliveries(app, gone.endpoint.id))[0]?.id}/redeliver`,
      key: sender,
    })
    t.equal(redeliver.statusCode, 409, 'a disabled endpoint takes no redelivery')
  })

  await t.test('deliveries that keep failing disable the endpoint', async (t) => {
    const broken = await register(app, sender, { url: `${receiver.url}/broken`, event_types: ['case.opened'] })
    await openCase(app)
    await openCase(app)
    // Wait for the deliveries' attempts, which keep coming until both deliveries have failed; the
    // statement that records the last failure also disables the endpoint.
    const finished = await eventually(
      () => deliveries(app, broken.endpoint.id),
      (items) => items.length === 2 && items.every((delivery) => delivery.status === 'failed'),
    )
    const endpoint = (
      await app.request({ method: 'GET', url: `/v1/webhook-endpoints/${broken.endpoint.id}`, key: sender })
    ).json()
    t.match(endpoint, { enabled: false, disabled_reason: 'persistent_failure' }, 'disabled after two failed deliveries')
    t.same(
      finished.map((delivery) => [delivery.status, delivery.attempts.length]),
      [
        ['failed', 3],
        ['failed', 3],
      ],
      'each tried three times (the first attempt and two retries)',
    )
    const enabled = await app.request({
      method: 'PATCH',
      url: `/v1/webhook-endpoints/${broken.endpoint.id}`,
      key: sender,
      headers: { 'if-match': `"${endpoint.version}"` },
      payload: { enabled: true },
    })
    t.match(enabled.json(), { enabled: true, disabled_reason: null }, 'the partner re-enables it once fixed')
  })

  await t.test('a delivery can be sent again on request', async (t) => {
    const [done] = await deliveries(app, all.endpoint.id)
    const before = receiver.at('/all').filter((delivery) => delivery.headers['webhook-id'] === done?.event_id).length
    const again = await app.request({
      method: 'POST',
      url: `/v1/webhook-endpoints/${all.endpoint.id}/deliveries/${done?.id}/redeliver`,
      key: sender,
      headers: { 'idempotency-key': 'redeliver-1' },
    })
    t.equal(again.statusCode, 202, 'redelivery accepted')
    t.equal(again.json().status, 'pending', 'and pending')
    const after = await eventually(
      () => receiver.at('/all').filter((delivery) => delivery.headers['webhook-id'] === done?.event_id),
      (list) => list.length > before,
    )
    t.equal(after.length, before + 1, 'the receiver gets the same event again')
    const log = await eventually(
      () => deliveries(app, all.endpoint.id),
      (items) => items.find((item) => item.id === done?.id)?.status === 'succeeded',
    )
    t.equal(log.find((item) => item.id === done?.id)?.attempts.length, 2, 'the log shows both attempts')
    const notOurs = await app.request({
      method: 'POST',
      url: `/v1/webhook-endpoints/${all.endpoint.id}/deliveries/${done?.id}/redeliver`,
      key: demoKeys.demoiommacw1,
    })
    t.equal(notOurs.statusCode, 404, 'another organisation cannot touch it')
  })

  await t.test('a rotated secret signs beside the old one during the overlap', async (t) => {
    const rotated = await app.request({
      method: 'POST',
      url: `/v1/webhook-endpoints/${all.endpoint.id}/rotate-secret`,
      key: sender,
      payload: { overlap_seconds: 3600 },
    })
    t.equal(rotated.statusCode, 200)
    const newSecret = rotated.json().secret as string
    t.not(newSecret, all.endpoint.secret, 'a new secret')
    t.equal(rotated.json().secrets.length, 2, 'both secrets sign for now')
    const count = receiver.at('/all').length
    await openCase(app)
    const got = await eventually(
      () => receiver.at('/all'),
      (list) => list.length > count,
    )
    const delivery = got[got.length - 1] as Received
    t.equal(delivery.headers['webhook-signature']?.split(' ').length, 2, 'two signatures in the header')
    t.ok(new Webhook(newSecret).verify(delivery.body, delivery.headers), 'the new secret verifies')
    t.ok(new Webhook(all.endpoint.secret).verify(delivery.body, delivery.headers), 'and so does the old one')

    const ended = await app.request({
      method: 'POST',
      url: `/v1/webhook-endpoints/${all.endpoint.id}/rotate-secret`,
      key: sender,
      payload: { overlap_seconds: 0 },
    })
    const newest = ended.json().secret as string
    t.equal(ended.json().secrets.length, 1, 'with no overlap, only the newest secret signs')
    const before = receiver.at('/all').length
    await openCase(app)
    const last = (
      await eventually(
        () => receiver.at('/all'),
        (list) => list.length > before,
      )
    ).at(-1) as Received
    t.ok(new Webhook(newest).verify(last.body, last.headers), 'the newest secret verifies')
    t.throws(() => new Webhook(newSecret).verify(last.body, last.headers), /signature/i, 'the retired one does not')
  })

  await t.test('a disabled endpoint gets nothing', async (t) => {
    const current = await app.request({ method: 'GET', url: `/v1/webhook-endpoints/${all.endpoint.id}`, key: sender })
    const disabled = await app.request({
      method: 'PATCH',
      url: `/v1/webhook-endpoints/${all.endpoint.id}`,
      key: sender,
      headers: { 'if-match': String(current.headers.etag) },
      payload: { enabled: false },
    })
    t.match(disabled.json(), { enabled: false, disabled_reason: 'by_request' })
    const stale = await app.request({
      method: 'PATCH',
      url: `/v1/webhook-endpoints/${all.endpoint.id}`,
      key: sender,
      headers: { 'if-match': String(current.headers.etag) },
      payload: { enabled: true },
    })
    t.equal(stale.statusCode, 412, 'a stale If-Match is refused')
    const count = receiver.at('/all').length
    await caseOpenedReached(app, receiver, '/after-disabling')
    t.equal(receiver.at('/all').length, count, 'no delivery')
  })
})

t.test('webhook URLs must be https and public, unless development allows otherwise', async (t) => {
  const app = await startTestApp(t)
  for (const url of [
    'http://hooks.example.org/trm',
    'https://127.0.0.1/trm',
    'https://10.1.2.3/trm',
    'https://192.168.0.10/trm',
    'https://169.254.169.254/latest/meta-data',
    'https://[::1]/trm',
    'https://[::ffff:127.0.0.1]/trm',
    'https://localhost/trm',
    'https://intranet/trm',
    'https://user:password@hooks.example.org/trm',
  ]) {
    const refused = await register(app, sender, { url })
    t.equal(refused.response.statusCode, 422, `${url} is refused`)
  }
  const notUrl = await register(app, sender, { url: 'not a url' })
  t.equal(notUrl.response.statusCode, 400, 'a string that is no URL is a validation error')
  const unknownType = await register(app, sender, {
    url: 'https://hooks.example.org/trm',
    event_types: ['case.exploded'],
  })
  t.equal(unknownType.response.statusCode, 400, 'an unknown event type is a validation error')
  const fine = await register(app, sender, { url: 'https://hooks.example.org/trm' })
  t.equal(fine.response.statusCode, 201, 'a public https URL is registered')

  for (const address of [
    '127.0.0.1',
    '10.0.0.1',
    '172.16.5.4',
    '192.168.1.1',
    '169.254.1.1',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '::1',
    'fe80::1',
    'fc00::1',
    '::ffff:10.0.0.1',
  ]) {
    t.notOk(isPublicAddress(address), `${address} is not public`)
  }
  for (const address of ['8.8.8.8', '185.199.108.153', '2001:4860:4860::8888']) {
    t.ok(isPublicAddress(address), `${address} is public`)
  }
  const looked = await new Promise<Error | null>((resolve) => publicLookup('localhost', {}, (error) => resolve(error)))
  t.match(looked?.message, /not a public address/, 'a name that resolves to loopback is refused when connecting')
})

/** Starts `npm run worker` processes on the test's schema, killed when the test ends. */
function workerStarter(t: Test, schema: string | undefined) {
  const workers: ChildProcess[] = []
  t.teardown(() => {
    for (const worker of workers) worker.kill('SIGKILL')
  })
  return () => {
    const worker = spawn(process.execPath, ['--import', 'tsx', 'src/worker.ts'], {
      env: {
        ...process.env,
        DATABASE_URL: testDatabaseUrl,
        DATABASE_SCHEMA: schema,
        DATA_ENCRYPTION_KEYS: testMasterKey,
        LOG_LEVEL: 'silent',
        JOB_SUPERVISE_SECONDS: '1',
        WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
        WEBHOOK_TIMEOUT_SECONDS: '2',
        WEBHOOK_RETRY_DELAY_SECONDS: '1',
      },
      stdio: 'ignore',
    })
    workers.push(worker)
    return worker
  }
}

async function schemaOf(app: TestApp): Promise<string | undefined> {
  return (await sql<{ schema: string }>`select current_schema() as schema`.execute(app.database.db)).rows[0]?.schema
}

const skipWorker = testDatabaseUrl
  ? false
  : 'needs PostgreSQL (set TEST_DATABASE_URL): separate worker processes cannot share the embedded database'

t.test(
  'a worker killed in the middle of a delivery loses no event: another worker delivers it',
  { skip: skipWorker },
  async (t) => {
    const receiver = await startReceiver(t, { '/slow': (_delivery, seen) => (seen === 0 ? 'hang' : 200) })
    const app = await startTestApp(t, webhookConfig)
    const startWorker = workerStarter(t, await schemaOf(app))
    const slow = await register(app, sender, { url: `${receiver.url}/slow`, event_types: ['case.opened'] })
    const first = startWorker()
    await openCase(app)
    await eventually(
      () => receiver.at('/slow'),
      (list) => list.length >= 1,
    )
    t.equal(receiver.at('/slow').length, 1, 'the first worker is in the middle of the delivery')
    first.kill('SIGKILL')
    await new Promise((resolve) => first.once('exit', resolve))
    t.pass('and is killed')
    startWorker()
    const log = await eventually(
      () => deliveries(app, slow.endpoint.id),
      (items) => items[0]?.status === 'succeeded',
    )
    t.equal(log[0]?.status, 'succeeded', 'another worker delivers the event')
    const got = receiver.at('/slow')
    t.ok(got.length >= 2, 'the receiver was asked again')
    t.equal(new Set(got.map((delivery) => delivery.headers['webhook-id'])).size, 1, 'with the same event')
  },
)

t.test('two workers at once deliver every event, each once', { skip: skipWorker }, async (t) => {
  const receiver = await startReceiver(t, {})
  const app = await startTestApp(t, webhookConfig)
  const startWorker = workerStarter(t, await schemaOf(app))
  const endpoint = await register(app, sender, { url: `${receiver.url}/many`, event_types: ['case.opened'] })
  startWorker()
  startWorker()
  const CASES = 12
  for (let i = 0; i < CASES; i += 1) await openCase(app)
  const log = await eventually(
    () => deliveries(app, endpoint.endpoint.id),
    (items) => items.length === CASES && items.every((item) => item.status === 'succeeded'),
  )
  t.equal(log.filter((item) => item.status === 'succeeded').length, CASES, `all ${CASES} deliveries succeeded`)
  const ids = receiver.at('/many').map((delivery) => delivery.headers['webhook-id'])
  t.equal(ids.length, CASES, 'the receiver was called once per event')
  t.equal(new Set(ids).size, CASES, 'never twice for the same one')
})
