import t, { type Test } from 'tap'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { startTestApp, type TestApp } from './fixtures/app.js'
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
  const opened = await request({ method: 'POST', url: '/v1/cases', key: sender, payload: newCase })
  const caseId = opened.json().id as string
  await request({ method: 'POST', url: `/v1/cases/${caseId}/consents`, key: sender, payload: consentForUkraine() })
  await record(app, caseId, sender, 'return_decision')
  await request({ method: 'GET', url: '/v1/events?limit=1', key: recipient })

  const counts: Record<string, number> = {}
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
  t.comment(JSON.stringify(counts))
})
