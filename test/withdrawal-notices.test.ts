import { pino } from 'pino'
import t from 'tap'
import { deadlineJob } from '../src/cases/deadlines.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { startJobQueue } from '../src/jobs/queue.js'
import { loadSops } from '../src/sops/registry.js'
import { demoKeys, startTestApp, type TestApp } from './fixtures/app.js'
import { openReferral, recipient, sender } from './fixtures/referral.js'

const HOUR = 60 * 60 * 1000

async function events(request: TestApp['request'], key: string) {
  const response = await request({ method: 'GET', url: '/v1/events?limit=500', key })
  return response.json().items as { type: string; data: Record<string, unknown> }[]
}

async function notices(request: TestApp['request'], key: string, status?: string) {
  const response = await request({
    method: 'GET',
    url: `/v1/withdrawal-notices${status ? `?status=${status}` : ''}`,
    key,
  })
  return response.json().items as { id: string; status: string; categories: string[]; acknowledge_by: string }[]
}

t.test(
  'a withdrawal reaches every organisation that holds the data, which confirms it deleted its copies',
  async (t) => {
    let now = new Date()
    const app = await startTestApp(t, {}, { now: () => now })
    const { request } = app
    const { caseId, consentId } = await openReferral(t, app)
    t.same(await notices(request, recipient), [], 'no notice while the consent stands')

    const withdrawn = await request({
      method: 'POST',
      url: `/v1/cases/${caseId}/consents/${consentId}/withdraw`,
      key: sender,
      payload: { reason: 'The person no longer wants her data shared.' },
    })
    t.equal(withdrawn.statusCode, 200, 'IOM Poland records the withdrawal')

    const [notice, ...more] = await notices(request, recipient)
    t.same(more, [], 'IOM Ukraine, which read the packet, has one notice')
    t.match(notice, { status: 'pending', categories: ['identity', 'health'], case_id: caseId, consent_id: consentId })
    const due = new Date(notice?.acknowledge_by ?? 0).getTime() - Date.parse(withdrawn.json().withdrawn_at)
    t.equal(due, 72 * HOUR, 'to be acknowledged within 72 hours')
    t.same(await notices(request, sender), [], 'the sender, which holds the data of record, gets none')
    t.same(await notices(request, demoKeys.demoiommacw1 as string), [], 'nor does an organisation with no part in it')

    const ukraineEvents = (await events(request, recipient)).filter((event) => event.type === 'consent.withdrawn')
    t.same(
      ukraineEvents.map((event) => event.data),
      [
        {
          case_reference: ukraineEvents[0]?.data.case_reference,
          consent_id: consentId,
          notice_id: notice?.id,
          categories: ['identity', 'health'],
          acknowledge_by: notice?.acknowledge_by,
        },
      ],
      'IOM Ukraine learns of it through an event that names its notice and what to delete',
    )
    const polandEvents = (await events(request, sender)).filter((event) => event.type === 'consent.withdrawn')
    t.same(
      polandEvents.map((event) => Object.keys(event.data).sort()),
      [['case_reference', 'consent_id']],
      'IOM Poland gets the event too, with no notice of its own',
    )

    const foreign = await request({
      method: 'POST',
      url: `/v1/withdrawal-notices/${notice?.id}/acknowledge`,
      key: sender,
      payload: { action: 'deleted' },
    })
    t.equal(foreign.statusCode, 404, 'only the organisation the notice is addressed to sees it')
    const auditor = await request({
      method: 'POST',
      url: `/v1/withdrawal-notices/${notice?.id}/acknowledge`,
      key: demoKeys.demoauditor1,
      payload: { action: 'deleted' },
    })
    t.equal(auditor.statusCode, 403, 'an auditor only reads')
    const bad = await request({
      method: 'POST',
      url: `/v1/withdrawal-notices/${notice?.id}/acknowledge`,
      key: recipient,
      payload: { action: 'shredded' },
    })
    t.equal(bad.statusCode, 400, 'an unknown action is a validation error')

    const acknowledged = await request({
      method: 'POST',
      url: `/v1/withdrawal-notices/${notice?.id}/acknowledge`,
      key: recipient,
      payload: { action: 'deleted', note: 'Removed from our case management system.' },
    })
    t.equal(acknowledged.statusCode, 200, 'IOM Ukraine acknowledges')
    t.match(acknowledged.json(), {
      status: 'acknowledged',
      acknowledgement: { action: 'deleted', note: 'Removed from our case management system.' },
    })
    const again = await request({
      method: 'POST',
      url: `/v1/withdrawal-notices/${notice?.id}/acknowledge`,
      key: recipient,
      payload: { action: 'restricted' },
    })
    t.same(again.json(), acknowledged.json(), 'acknowledging again changes nothing')
    t.same(await notices(request, recipient, 'pending'), [], 'nothing is pending any more')
    t.match(
      (await events(request, sender)).filter((event) => event.type === 'consent.withdrawal_acknowledged'),
      [
        {
          data: {
            notice_id: notice?.id,
            organisation_id: demoOrganisationIds.iomUkraine,
            withdrawal_action: 'deleted',
          },
        },
      ],
      'IOM Poland learns that the copies were deleted',
    )

    now = new Date(Date.now() + 100 * HOUR)
    const queue = await startJobQueue(
      app.database.jobBackend,
      { jobs: [deadlineJob(app.database.db, loadSops(), { now: () => now })] },
      pino({ level: 'silent' }),
    )
    t.teardown(() => queue.stop())
    await queue.runNow('check-deadlines')
    await new Promise((resolve) => setTimeout(resolve, 3000))
    const escalations = await request({ method: 'GET', url: '/v1/escalations', key: demoKeys.demoiomplsv1 })
    t.same(
      escalations.json().items.filter((item: { kind: string }) => item.kind === 'withdrawal_acknowledgement'),
      [],
      'an acknowledged notice never escalates',
    )
  },
)

t.test('a withdrawal left unacknowledged past its deadline escalates to both sides', async (t) => {
  let now = new Date()
  const clock = { now: () => now }
  const app = await startTestApp(t, {}, clock)
  const { request } = app
  const { caseId, consentId } = await openReferral(t, app)
  await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/consents/${consentId}/withdraw`,
    key: sender,
    payload: { reason: 'Withdrawn by the person.' },
  })
  const [notice] = await notices(request, recipient)

  const queue = await startJobQueue(
    app.database.jobBackend,
    { jobs: [deadlineJob(app.database.db, loadSops(), clock)] },
    pino({ level: 'silent' }),
  )
  t.teardown(() => queue.stop())
  const raised = async (key: string) => {
    const response = await request({ method: 'GET', url: '/v1/escalations', key })
    return response
      .json()
      .items.filter((item: { kind: string }) => item.kind === 'withdrawal_acknowledgement') as Record<string, unknown>[]
  }
  now = new Date(Date.now() + 71 * HOUR)
  await queue.runNow('check-deadlines')
  await new Promise((resolve) => setTimeout(resolve, 2500))
  t.same(await raised(demoKeys.demoiomplsv1 as string), [], 'nothing within the 72 hours')

  now = new Date(Date.now() + 73 * HOUR)
  await queue.runNow('check-deadlines')
  let sending: Record<string, unknown>[] = []
  for (let i = 0; i < 80 && sending.length === 0; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 250))
    sending = await raised(demoKeys.demoiomplsv1 as string)
  }
  t.match(
    sending,
    [
      {
        case_id: caseId,
        withdrawal_notice_id: notice?.id,
        responsible_organisation_id: demoOrganisationIds.iomUkraine,
      },
    ],
    'past the deadline, the sending side’s supervisor sees the escalation, naming who had to act',
  )
  t.match(
    await raised(demoKeys.demoiomuasv1 as string),
    [{ withdrawal_notice_id: notice?.id }],
    'and so does the supervisor of the organisation that holds the data',
  )
  t.match(
    (await events(request, recipient)).filter((event) => event.type === 'escalation.raised'),
    [{ data: { escalation_kind: 'withdrawal_acknowledgement', notice_id: notice?.id } }],
    'which also learns of it through its feed',
  )
  await queue.runNow('check-deadlines')
  await new Promise((resolve) => setTimeout(resolve, 2500))
  t.equal(
    (await raised(demoKeys.demoiomplsv1 as string)).length,
    1,
    'one escalation per notice, however often the job runs',
  )
})
