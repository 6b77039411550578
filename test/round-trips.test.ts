import { sql } from 'kysely'
import t, { type Test } from 'tap'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { startTestApp, type TestApp } from './fixtures/app.js'
import { eventually } from './fixtures/eventually.js'
import { consentForUkraine, newCase, recipient, record, sender } from './fixtures/referral.js'

/**
 * The statements each hot operation sends to the database, counted by the database layer of the
 * process (transaction control included): the budget of the design, as DESIGN.md §5 counts it.
 * Keys have authenticated once before, as they have in a running service.
 */
async function statementsOf(t: Test, app: TestApp, work: () => Promise<{ statusCode: number }>, status: number) {
  const before = app.database.statements.count
  const response = await work()
  t.equal(response.statusCode, status)
  return app.database.statements.count - before
}

t.test('statements per request on the hot paths', async (t) => {
  const app = await startTestApp(t)
  const { request } = app
  // The sender's key held in memory, as in a running service: once the process hears changes of
  // credentials (its listening connection is up), a list costs its one statement and no lookup.
  const warm = await eventually(
    () => statementsOf(t, app, () => request({ method: 'GET', url: '/v1/cases?limit=1', key: sender }), 200),
    (statements) => statements === 1,
  )
  t.equal(warm, 1, "the sender's key is held")
  const counts: Record<string, number> = {}
  let opened: Record<string, unknown> = {}
  counts.createCase = await statementsOf(
    t,
    app,
    async () => {
      const response = await request({ method: 'POST', url: '/v1/cases', key: sender, payload: newCase })
      opened = response.json()
      return response
    },
    201,
  )
  const caseId = opened.id as string
  const read = await request({ method: 'GET', url: `/v1/cases/${caseId}`, key: sender })
  t.same(opened, read.json(), 'a new case is answered as a read of it shows it')
  await request({ method: 'POST', url: `/v1/cases/${caseId}/consents`, key: sender, payload: consentForUkraine() })
  await record(app, caseId, sender, 'return_decision')
  await request({ method: 'GET', url: '/v1/events?limit=1', key: recipient })

  counts.getCase = await statementsOf(
    t,
    app,
    () => request({ method: 'GET', url: `/v1/cases/${caseId}`, key: sender }),
    200,
  )
  const etag = String((await request({ method: 'GET', url: `/v1/cases/${caseId}`, key: sender })).headers.etag)
  counts.performTransition = await statementsOf(
    t,
    app,
    () =>
      request({
        method: 'POST',
        url: `/v1/cases/${caseId}/transitions`,
        key: sender,
        headers: { 'if-match': etag },
        payload: { action: 'decide_return' },
      }),
    200,
  )
  let packetId = ''
  counts.sendPacket = await statementsOf(
    t,
    app,
    async () => {
      const sent = await request({
        method: 'POST',
        url: `/v1/cases/${caseId}/packets`,
        key: sender,
        headers: { 'idempotency-key': 'round-trips-send-1' },
        payload: { recipient_organisation_id: demoOrganisationIds.iomUkraine, purpose: 'return_assistance' },
      })
      packetId = sent.json().id
      return sent
    },
    201,
  )
  counts.getPacketFirst = await statementsOf(
    t,
    app,
    () => request({ method: 'GET', url: `/v1/packets/${packetId}`, key: recipient }),
    200,
  )
  counts.getPacketAgain = await statementsOf(
    t,
    app,
    () => request({ method: 'GET', url: `/v1/packets/${packetId}`, key: recipient }),
    200,
  )
  counts.listEvents = await statementsOf(
    t,
    app,
    () => request({ method: 'GET', url: '/v1/events', key: recipient }),
    200,
  )
  counts.listCases = await statementsOf(
    t,
    app,
    () => request({ method: 'GET', url: '/v1/cases?limit=50', key: sender }),
    200,
  )
  counts.listPackets = await statementsOf(
    t,
    app,
    () => request({ method: 'GET', url: '/v1/packets?direction=inbound', key: recipient }),
    200,
  )
  t.comment(JSON.stringify(counts))
  t.same(
    counts,
    {
      // One statement writing the case with its party, timeline entry, event and audit record,
      // outside a transaction: the answer is rendered from what it was given and returned.
      createCase: 1,
      // The case with its parties, consents and obligations; the audit insert (shared under load).
      getCase: 2,
      // Begin, lock the case, the procedure's facts, one statement writing all the change, commit.
      performTransition: 5,
      // As a transition: the facts' statement also reads the recipient, the transfer agreements
      // (Ukraine is outside the EU/EEA) and the packets it follows; the packet's insert is part of
      // the one statement writing the change. The lock statement claims the Idempotency-Key too.
      sendPacket: 5,
      // The packet with its case's consents; one statement taking delivery, if it still waits,
      // with its event and audit record.
      getPacketFirst: 2,
      getPacketAgain: 2,
      listEvents: 1,
      listCases: 1,
      // The packets with their cases' consents beside them; their content is neither read nor opened.
      listPackets: 1,
    },
    'each operation stays within its budget of statements',
  )
})

// On both databases: the reads served in one turn of the event loop share an insert.
t.test('concurrent reads share commits of their audit records, each durable before its answer', async (t) => {
  const metricsToken = 'metrics-token-for-this-test'
  const app = await startTestApp(t, { metricsToken })
  const opened = await app.request({ method: 'POST', url: '/v1/cases', key: sender, payload: newCase })
  const caseId = opened.json().id as string
  const audited = async (requestId: string) =>
    Number(
      (
        await sql<{
          count: string
        }>`select count(*) as count from audit_records where request_id = ${requestId}`.execute(app.database.db)
      ).rows[0]?.count,
    )
  const counter = async (name: string) => {
    const scraped = await app.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${metricsToken}` } })
    return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(scraped.body)?.[1])
  }
  const insertsBefore = await counter('trm_audit_read_inserts_total')
  const reads = 40
  const seen = await Promise.all(
    Array.from({ length: reads }, async (_, index) => {
      const requestId = `concurrent-read-${index}`
      const response = await app.app.inject({
        url: `/v1/cases/${caseId}`,
        headers: { authorization: `Bearer ${sender}`, 'x-request-id': requestId },
      })
      return { status: response.statusCode, audited: await audited(requestId) }
    }),
  )
  t.same(
    seen.map((read) => read.status),
    Array(reads).fill(200),
  )
  t.same(
    seen.map((read) => read.audited),
    Array(reads).fill(1),
    'each read found its own audit record committed as its answer arrived',
  )
  const inserts = (await counter('trm_audit_read_inserts_total')) - insertsBefore
  t.ok(inserts < reads, `${reads} reads committed their records in ${inserts} inserts`)
  t.comment(`${reads} concurrent reads, ${inserts} audit inserts`)
})
