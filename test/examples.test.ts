import { type AddressInfo, createServer } from 'node:net'
import { pino } from 'pino'
import t from 'tap'
import { runReferral } from '../examples/referral.js'
import { type Event, startWebhookReceiver } from '../examples/webhook-receiver.js'
import { backgroundWork } from '../src/app.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { startJobQueue } from '../src/jobs/queue.js'
import { startTestApp } from './fixtures/app.js'
import { eventually } from './fixtures/eventually.js'
import { recipient, sender } from './fixtures/referral.js'
import { webhookTestConfig } from './fixtures/webhook-receiver.js'

const config = webhookTestConfig({
  disableAfterFailedDeliveries: 5,
  concurrency: 8,
  perEndpointInFlight: 4,
  breakerFailures: 5,
  breakerCooldownSeconds: 1,
})

t.test('the examples run a whole referral over HTTP, and the receiver verifies every webhook', async (t) => {
  const app = await startTestApp(t, config)
  await app.app.listen({ port: 0, host: '127.0.0.1' })
  const baseUrl = `http://127.0.0.1:${(app.app.server.address() as AddressInfo).port}`
  const queue = await startJobQueue(
    app.database.jobBackend,
    backgroundWork({ config, database: app.database }),
    pino({ level: 'silent' }),
    { superviseSeconds: 1 },
  )
  t.teardown(() => queue.stop())

  // The receiver's URL is registered first; the secret it verifies with comes with the registration.
  const port = await freePort()
  const registered = await app.request({
    method: 'POST',
    url: '/v1/webhook-endpoints',
    key: recipient,
    payload: {
      url: `http://127.0.0.1:${port}/`,
      event_types: ['packet.sent', 'consent.withdrawn', 'case.transitioned'],
    },
  })
  t.equal(registered.statusCode, 201, 'IOM Ukraine registers its receiver')
  const events: Event[] = []
  const live = await startWebhookReceiver({
    secret: registered.json().secret,
    port,
    onEvent: (event) => events.push(event),
    log: () => {},
  })
  t.teardown(() => live.close())

  const lines: string[] = []
  const result = await runReferral({
    baseUrl,
    senderKey: sender,
    recipientKey: recipient,
    recipientOrganisationId: demoOrganisationIds.iomUkraine,
    log: (line) => lines.push(line),
  })
  t.equal(result.step, 'arrived', 'the referral reaches arrival')
  t.match(lines.join('\n'), /consent withdrawn at/, 'and the consent is withdrawn')

  const received = await eventually(
    () => events,
    (all) => all.some((event) => event.type === 'consent.withdrawn'),
  )
  const ofCase = received.filter((event) => event.case_id === result.caseId)
  t.ok(
    ofCase.some((event) => event.type === 'packet.sent'),
    'the receiver verified the packet.sent of the enquiry',
  )
  t.ok(
    ofCase.some((event) => event.type === 'consent.withdrawn'),
    'and the withdrawal',
  )

  const forged = await fetch(live.url, {
    method: 'POST',
    headers: {
      'webhook-id': 'msg_forged',
      'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
      'webhook-signature': 'v1,AAAA',
    },
    body: JSON.stringify({ type: 'consent.withdrawn' }),
  })
  t.equal(forged.status, 400, 'a delivery with a forged signature is refused')
})

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}
