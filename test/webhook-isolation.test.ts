import { pino } from 'pino'
import t, { type Test } from 'tap'
import { backgroundWork } from '../src/app.js'
import { startJobQueue } from '../src/jobs/queue.js'
import { startTestApp, type TestApp } from './fixtures/app.js'
import { eventually } from './fixtures/eventually.js'
import { newCase, sender } from './fixtures/referral.js'
import { startReceiver, webhookTestConfig } from './fixtures/webhook-receiver.js'

// Two deliveries at once per endpoint; three failed attempts in a row pause an endpoint for a
// minute, far longer than the healthy endpoint needs for all its events even on a loaded machine.
const config = webhookTestConfig({
  disableAfterFailedDeliveries: 1000,
  concurrency: 8,
  perEndpointInFlight: 2,
  breakerFailures: 3,
  breakerCooldownSeconds: 60,
})

interface Delivery {
  id: string
  event_id: string
  status: string
  attempts: { status_code: number | null; error: string | null }[]
}

async function deliveries(app: TestApp, endpointId: string): Promise<Delivery[]> {
  const response = await app.request({
    method: 'GET',
    url: `/v1/webhook-endpoints/${endpointId}/deliveries?limit=100`,
    key: sender,
  })
  return response.json().items
}

async function register(app: TestApp, url: string): Promise<string> {
  const response = await app.request({
    method: 'POST',
    url: '/v1/webhook-endpoints',
    key: sender,
    payload: { url, event_types: ['case.opened'] },
  })
  return response.json().id
}

async function openCases(app: TestApp, count: number) {
  for (let i = 0; i < count; i += 1) {
    const opened = await app.request({ method: 'POST', url: '/v1/cases', key: sender, payload: newCase })
    if (opened.statusCode !== 201) throw new Error(`opening a case answered ${opened.statusCode}`)
  }
}

async function startWorkers(t: Test, app: TestApp, settings = config) {
  const queue = await startJobQueue(
    app.database.jobBackend,
    backgroundWork({ config: settings, database: app.database }),
    pino({ level: 'silent' }),
    { superviseSeconds: 1 },
  )
  t.teardown(() => queue.stop())
}

t.test('an endpoint that hangs delays only itself', async (t) => {
  const EVENTS = 20
  const receiver = await startReceiver(t, { '/hangs': () => 'hang' })
  const app = await startTestApp(t, config)
  const hanging = await register(app, `${receiver.url}/hangs`)
  const healthy = await register(app, `${receiver.url}/healthy`)
  await startWorkers(t, app)
  await openCases(app, EVENTS)

  const got = await eventually(
    () => new Set(receiver.at('/healthy').map((delivery) => delivery.headers['webhook-id'])),
    (ids) => ids.size >= EVENTS,
  )
  t.equal(got.size, EVENTS, `the healthy endpoint receives all ${EVENTS} events`)
  const healthyLog = await eventually(
    () => deliveries(app, healthy),
    (items) => items.length === EVENTS && items.every((item) => item.status === 'succeeded'),
  )
  t.equal(healthyLog.filter((item) => item.status === 'succeeded').length, EVENTS, 'and its log shows each succeeded')

  const hangingLog = await eventually(
    () => deliveries(app, hanging),
    (items) => items.some((item) => item.attempts.some((attempt) => /paused until/.test(attempt.error ?? ''))),
  )
  const attempts = hangingLog.flatMap((item) => item.attempts)
  t.ok(
    attempts.some((attempt) =>
      /3 failed attempts in a row: deliveries to this endpoint paused until/.test(attempt.error ?? ''),
    ),
    'the hanging endpoint’s log says its breaker opened after three failed attempts',
  )
  t.ok(
    attempts.length <= 3 + 2,
    `it was tried at most 5 times (failures to open + those in flight), not for each event: ${attempts.length}`,
  )
  t.ok(receiver.at('/hangs').length <= 5, 'and the receiver saw no more than that')
  t.equal(hangingLog.length, EVENTS, 'every event still has its delivery to the hanging endpoint')
  t.ok(
    hangingLog.every((item) => item.status === 'pending' || item.status === 'retrying'),
    'none failed: the paused deliveries wait, their retries untouched',
  )
  const endpoint = (await app.request({ method: 'GET', url: `/v1/webhook-endpoints/${hanging}`, key: sender })).json()
  t.equal(endpoint.enabled, true, 'a paused endpoint stays enabled')
})

t.test('a paused endpoint that recovers gets every event, without using up retries', async (t) => {
  const EVENTS = 8
  let down = true
  const receiver = await startReceiver(t, { '/recovers': () => (down ? 'hang' : 204) })
  const app = await startTestApp(t, config)
  const recovering = await register(app, `${receiver.url}/recovers`)
  await startWorkers(t, app, { ...config, webhooks: { ...config.webhooks, breakerCooldownSeconds: 1 } })
  await openCases(app, EVENTS)

  await eventually(
    () => deliveries(app, recovering),
    (items) => items.some((item) => item.attempts.some((attempt) => /paused until/.test(attempt.error ?? ''))),
  )
  down = false
  const log = await eventually(
    () => deliveries(app, recovering),
    (items) => items.length === EVENTS && items.every((item) => item.status === 'succeeded'),
  )
  t.equal(
    log.filter((item) => item.status === 'succeeded').length,
    EVENTS,
    `all ${EVENTS} deliveries succeed once the endpoint answers again`,
  )
  t.ok(
    log.every((item) => item.attempts.length <= 3),
    'none took more than its first attempt and two retries: waiting while paused is no attempt',
  )
  const ids = new Set(
    receiver
      .at('/recovers')
      .filter((delivery) => delivery.headers['webhook-id'])
      .map((delivery) => delivery.headers['webhook-id']),
  )
  t.equal(ids.size, EVENTS, 'the receiver got each event')
})
