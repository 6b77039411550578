import t from 'tap'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { demoKeys, startTestApp, type TestApp } from './fixtures/app.js'
import { deadlineRunner } from './fixtures/deadline-runner.js'
import { feedUntil } from './fixtures/feed.js'
import {
  acceptReferral,
  consentForUkraine,
  newCase,
  openReferral,
  recipient,
  record,
  sender,
  transition,
} from './fixtures/referral.js'

const HOUR = 60 * 60 * 1000

/** The events of `type` in the feed of `key`, once it holds one. */
async function eventsOf(request: TestApp['request'], key: string, type: string) {
  const ofType = (events: { type: string }[]) => events.filter((event) => event.type === type)
  return ofType(await feedUntil(request, key, (events) => ofType(events).length > 0)) as {
    type: string
    data: Record<string, unknown>
  }[]
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
    t.same(more, [], 'IOM Ukraine, which read the enquiry, has one notice')
    // The enquiry carried health data; identity data never reached IOM Ukraine, which had not accepted the person.
    t.match(notice, {
      status: 'pending',
      cause: 'withdrawn',
      categories: ['health'],
      case_id: caseId,
      consent_id: consentId,
    })
    const due = new Date(notice?.acknowledge_by ?? 0).getTime() - Date.parse(withdrawn.json().withdrawn_at)
    t.equal(due, 72 * HOUR, 'to be acknowledged within 72 hours')
    t.same(await notices(request, sender), [], 'the sender, which holds the data of record, gets none')
    t.same(await notices(request, demoKeys.demoiommacw1 as string), [], 'nor does an organisation with no part in it')

    const ukraineEvents = await eventsOf(request, recipient, 'consent.withdrawn')
    t.same(
      ukraineEvents.map((event) => event.data),
      [
        {
          case_reference: ukraineEvents[0]?.data.case_reference,
          consent_id: consentId,
          notice_id: notice?.id,
          categories: ['health'],
          acknowledge_by: notice?.acknowledge_by,
        },
      ],
      'IOM Ukraine learns of it through an event that names its notice and what to delete',
    )
    const polandEvents = await eventsOf(request, sender, 'consent.withdrawn')
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
      await eventsOf(request, sender, 'consent.withdrawal_acknowledged'),
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
    const runToCompletion = await deadlineRunner(t, app, { now: () => now })
    t.equal(await runToCompletion(), 0, 'the deadline job finds nothing to do')
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

  const runToCompletion = await deadlineRunner(t, app, clock)
  const raised = async (key: string) => {
    const response = await request({ method: 'GET', url: '/v1/escalations', key })
    return response
      .json()
      .items.filter((item: { kind: string }) => item.kind === 'withdrawal_acknowledgement') as Record<string, unknown>[]
  }
  now = new Date(Date.now() + 71 * HOUR)
  t.equal(await runToCompletion(), 0, 'within the 72 hours the job raises nothing')
  t.same(await raised(demoKeys.demoiomplsv1 as string), [], 'and no escalation shows')

  now = new Date(Date.now() + 73 * HOUR)
  t.equal(await runToCompletion(), 1, 'past them, it raises one escalation')
  const sending = await raised(demoKeys.demoiomplsv1 as string)
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
    await eventsOf(request, recipient, 'escalation.raised'),
    [{ data: { escalation_kind: 'withdrawal_acknowledgement', notice_id: notice?.id } }],
    'which also learns of it through its feed',
  )
  t.equal(await runToCompletion(), 0, 'running the job again raises nothing')
  t.equal(
    (await raised(demoKeys.demoiomplsv1 as string)).length,
    1,
    'one escalation per notice, however often the job runs',
  )
})

t.test('a consent that expires gives notices like a withdrawal, and its categories leave the packets', async (t) => {
  let now = new Date()
  const clock = { now: () => now }
  const app = await startTestApp(t, {}, clock)
  const { request } = app
  const opened = await request({ method: 'POST', url: '/v1/cases', key: sender, payload: newCase })
  const caseId = opened.json().id as string
  const expiresAt = new Date(now.getTime() + 2 * HOUR)
  const consent = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/consents`,
    key: sender,
    payload: { ...consentForUkraine(), expires_at: expiresAt.toISOString() },
  })
  t.equal(consent.statusCode, 201, 'IOM Poland records a consent that expires in two hours')
  const consentId = consent.json().id as string
  t.equal((await record(app, caseId, sender, 'return_decision')).statusCode, 201)
  t.equal((await transition(app, caseId, sender, 'decide_return')).statusCode, 200)
  const enquiry = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/packets`,
    key: sender,
    payload: { recipient_organisation_id: demoOrganisationIds.iomUkraine, purpose: 'return_assistance' },
  })
  t.equal(enquiry.statusCode, 201, 'the enquiry goes to IOM Ukraine')
  const packetId = enquiry.json().id as string
  t.equal((await request({ method: 'GET', url: `/v1/packets/${packetId}`, key: recipient })).statusCode, 200)
  const referralId = await acceptReferral(t, app, { caseId, consentId, packetId })
  const before = await request({ method: 'GET', url: `/v1/packets/${referralId}`, key: recipient })
  t.same(before.json().included_categories, ['identity', 'health'], 'the full referral carries identity and health')
  t.ok(before.body.includes('Kovalenko'), 'IOM Ukraine reads the name while the consent lasts')

  const runToCompletion = await deadlineRunner(t, app, clock)
  t.equal(await runToCompletion(), 0, 'before the consent expires the job has nothing to do')
  t.same(await notices(request, recipient), [], 'and IOM Ukraine has no notice')

  now = new Date(expiresAt.getTime() + HOUR)
  t.equal(await runToCompletion(), 1, 'an hour after the expiry the job notices the one expired consent')
  const [notice, ...more] = await notices(request, recipient)
  t.same(more, [], 'IOM Ukraine, which received data under it, has one notice')
  t.match(notice, {
    case_id: caseId,
    consent_id: consentId,
    cause: 'expired',
    status: 'pending',
    categories: ['identity', 'health'],
    withdrawn_at: now.toISOString(),
    acknowledge_by: new Date(now.getTime() + 72 * HOUR).toISOString(),
  })
  t.same(await notices(request, sender), [], 'the sender holds the data of record and gets no notice')

  const ukraineEvents = await eventsOf(request, recipient, 'consent.expired')
  t.same(
    ukraineEvents.map((event) => event.data),
    [
      {
        case_reference: opened.json().reference,
        consent_id: consentId,
        notice_id: notice?.id,
        categories: ['identity', 'health'],
        acknowledge_by: notice?.acknowledge_by,
      },
    ],
    'IOM Ukraine learns of it through a consent.expired event that names its notice and what to delete',
  )
  t.same(
    (await eventsOf(request, sender, 'consent.expired')).map((event) => event.data),
    [{ case_reference: opened.json().reference, consent_id: consentId }],
    'IOM Poland gets the event too, with no notice of its own',
  )
  t.same(
    (await feedUntil(request, recipient, () => true)).filter((event) => event.type === 'consent.withdrawn'),
    [],
    'nobody withdrew anything',
  )

  const after = await request({ method: 'GET', url: `/v1/packets/${referralId}`, key: recipient })
  t.equal(after.statusCode, 200)
  const referral = after.json()
  t.same(referral.included_categories, [], 'the full referral no longer carries identity or health for IOM Ukraine')
  t.same(
    referral.withheld.filter((w: { reason: string }) => w.reason === 'expired'),
    [
      { category: 'identity', reason: 'expired' },
      { category: 'health', reason: 'expired' },
    ],
    'both are withheld because the consent expired',
  )
  t.same(referral.withdrawn_categories, ['identity', 'health'], 'and listed as categories to delete')
  t.same(referral.content.sections, {}, 'no section is left in the content')
  t.notOk(after.body.includes('Kovalenko'), 'the name is gone')
  t.type(referral.content_notice, 'string', 'a notice in the packet says why')

  const readEnquiry = await request({ method: 'GET', url: `/v1/packets/${packetId}`, key: recipient })
  t.same(
    readEnquiry.json().withheld.filter((w: { reason: string }) => w.reason === 'expired'),
    [{ category: 'health', reason: 'expired' }],
    'the enquiry loses the health data it carried, for the same reason',
  )
  const asSent = await request({ method: 'GET', url: `/v1/packets/${referralId}`, key: sender })
  t.same(asSent.json().included_categories, ['identity', 'health'], 'IOM Poland sees the packet as it was sent')
  t.ok(asSent.body.includes('Kovalenko'))

  t.equal(await runToCompletion(), 0, 'running the job again notices nothing twice')
  t.equal((await notices(request, recipient)).length, 1, 'still one notice')
})
