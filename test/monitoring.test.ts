import t from 'tap'
import type { components } from '../openapi/dist/types.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { demoKeys, startTestApp, type TestApp } from './fixtures/app.js'
import { deadlineRunner } from './fixtures/deadline-runner.js'
import { feedUntil } from './fixtures/feed.js'
import { recipient, record, sender, takeToArrival, transition } from './fixtures/referral.js'

type ScheduledObligation = components['schemas']['ScheduledObligation']
type Escalation = components['schemas']['Escalation']

const UKRAINE = demoOrganisationIds.iomUkraine
const ukraineSupervisor = demoKeys.demoiomuasv1 as string
const polandSupervisor = demoKeys.demoiomplsv1 as string

async function scheduleOf(app: TestApp, caseId: string, key: string): Promise<ScheduledObligation[]> {
  const response = await app.request({ method: 'GET', url: `/v1/cases/${caseId}`, key })
  return response.json().schedule as ScheduledObligation[]
}

async function escalationsOf(app: TestApp, caseId: string, key: string): Promise<Escalation[]> {
  const response = await app.request({ method: 'GET', url: '/v1/escalations', key })
  return (response.json().items as Escalation[]).filter((item) => item.case_id === caseId)
}

/** The calendar day of a moment: the due dates of the schedule, as a caseworker counts them. */
const day = (at: string | null) => at?.slice(0, 10)

t.test('arrival schedules a re-assessment and monitoring visits at 1, 3, 6 and 12 months', async (t) => {
  let now = new Date('2027-01-15T09:00:00Z')
  const clock = { now: () => now }
  const app = await startTestApp(t, {}, clock)
  const { caseId } = await takeToArrival(t, app)

  const schedule = await scheduleOf(app, caseId, recipient)
  t.same(
    schedule.map((item) => [item.kind, day(item.due_at), item.responsible_organisation_id, item.status]),
    [
      ['reassessment', '2027-02-14', UKRAINE, 'due'],
      ['monitoring_visit', '2027-02-15', UKRAINE, 'due'],
      ['monitoring_visit', '2027-04-15', UKRAINE, 'due'],
      ['monitoring_visit', '2027-07-15', UKRAINE, 'due'],
      ['monitoring_visit', '2028-01-15', UKRAINE, 'due'],
    ],
    'arrival on 15 January: a re-assessment within 30 days, visits on 15 February, April, July and January, owed by IOM Ukraine',
  )
  t.same(
    (await scheduleOf(app, caseId, sender)).map((item) => item.id),
    schedule.map((item) => item.id),
    'IOM Poland follows the same schedule',
  )
  const [reassessment, firstVisit, secondVisit] = schedule as [
    ScheduledObligation,
    ScheduledObligation,
    ScheduledObligation,
  ]

  now = new Date('2027-01-20T09:00:00Z')
  const reassessed = await record(app, caseId, recipient, 'reassessment')
  t.equal(reassessed.statusCode, 201, 'IOM Ukraine re-assesses risk and needs five days after arrival')
  t.match(
    (await scheduleOf(app, caseId, recipient))[0],
    { id: reassessment.id, status: 'fulfilled', record_id: reassessed.json().id, fulfilled_at: now.toISOString() },
    'which fulfils the re-assessment',
  )
  t.equal((await record(app, caseId, recipient, 'reintegration_plan_final')).statusCode, 201, 'the final plan')
  t.equal((await transition(app, caseId, recipient, 'finalise_plan')).statusCode, 200, 'and reintegration begins')

  const runToCompletion = await deadlineRunner(t, app, clock)
  now = new Date('2027-02-14T12:00:00Z')
  t.equal(await runToCompletion(), 0, 'the day before the first visit is due, nothing escalates')

  now = new Date('2027-02-16T12:00:00Z')
  t.match(
    (await scheduleOf(app, caseId, recipient))[1],
    { id: firstVisit.id, status: 'overdue' },
    'a day after it was due, the first visit shows as overdue',
  )
  t.equal(await runToCompletion(), 1, 'and the deadline job raises one escalation')
  const raised = await escalationsOf(app, caseId, ukraineSupervisor)
  t.match(
    raised,
    [{ kind: 'monitoring_visit', obligation_id: firstVisit.id, responsible_organisation_id: UKRAINE }],
    'naming the visit and IOM Ukraine, which owed it; its supervisor sees it',
  )
  t.equal(day(raised[0]?.due_at ?? null), '2027-02-15', 'due on 15 February')
  t.match(
    await escalationsOf(app, caseId, polandSupervisor),
    [{ kind: 'monitoring_visit', obligation_id: firstVisit.id }],
    'and so does the sending partner',
  )
  const escalationsRaised = (events: { type: string }[]) => events.filter((event) => event.type === 'escalation.raised')
  t.match(
    escalationsRaised(
      await feedUntil(app.request, ukraineSupervisor, (events) => escalationsRaised(events).length > 0),
    ),
    [{ case_id: caseId, data: { escalation_kind: 'monitoring_visit', obligation_id: firstVisit.id } }],
    'announced by escalation.raised',
  )
  t.equal(await runToCompletion(), 0, 'running the job again raises nothing more')

  now = new Date('2027-02-17T10:00:00Z')
  const visit = await record(app, caseId, recipient, 'monitoring_visit')
  t.equal(visit.statusCode, 201, 'IOM Ukraine visits the person, late')
  const afterVisit = await scheduleOf(app, caseId, recipient)
  t.match(
    afterVisit.slice(1, 3),
    [
      { id: firstVisit.id, status: 'fulfilled', record_id: visit.json().id },
      { id: secondVisit.id, status: 'due', record_id: null },
    ],
    'the visit fulfils the overdue one; the three-month visit is due next',
  )

  now = new Date('2027-04-14T10:00:00Z')
  t.equal((await record(app, caseId, recipient, 'monitoring_visit')).statusCode, 201, 'the second visit, on time')
  now = new Date('2027-04-16T12:00:00Z')
  t.equal(await runToCompletion(), 0, 'so nothing escalates when the three-month visit falls due')
  t.same(
    (await scheduleOf(app, caseId, recipient)).map((item) => item.status),
    ['fulfilled', 'fulfilled', 'fulfilled', 'due', 'due'],
    'two visits and the re-assessment done, two visits to come',
  )

  const visitKind = await app.request({ method: 'GET', url: '/v1/record-kinds', key: recipient })
  const schema = visitKind.json().items.find((kind: { kind: string }) => kind.kind === 'monitoring_visit').schema as {
    required: string[]
    properties: { risk_indicators: { items: { enum: string[] } } }
  }
  t.same(
    schema.required,
    ['visited_on', 'mode', 'risk_indicators', 'needs'],
    'a visit says when, how, what risk, what needs',
  )
  t.ok(
    schema.properties.risk_indicators.items.enum.includes('contact_with_traffickers'),
    're-trafficking risk indicators are coded',
  )
  const bad = await record(app, caseId, recipient, 'monitoring_visit', undefined, {
    visited_on: '2027-04-20',
    mode: 'carrier_pigeon',
    risk_indicators: ['bad_luck'],
    needs: { health: 'fine' },
  })
  t.equal(bad.statusCode, 422, 'a visit outside the vocabularies is refused')
  t.same(
    bad
      .json()
      .errors.map((error: { pointer: string }) => error.pointer)
      .sort(),
    ['#/data/mode', '#/data/needs/health', '#/data/risk_indicators/0'],
    'naming each bad field',
  )
})

t.test('closing needs a coded reason and a sustainability score; then nothing more is owed', async (t) => {
  let now = new Date('2027-01-15T09:00:00Z')
  const clock = { now: () => now }
  const app = await startTestApp(t, {}, clock)
  const { caseId } = await takeToArrival(t, app)
  t.equal((await record(app, caseId, recipient, 'reintegration_plan_final')).statusCode, 201, 'the final plan')
  t.equal((await transition(app, caseId, recipient, 'finalise_plan')).statusCode, 200, 'reintegration begins')

  const close = () => transition(app, caseId, ukraineSupervisor, 'close', { reason: 'Support period ended.' })
  const unmetOf = async () => {
    const response = await close()
    t.equal(response.statusCode, 409, 'closing is refused')
    return (response.json().unmet as { code: string }[]).map((item) => item.code)
  }
  t.same(
    await unmetOf(),
    ['record.closure_report', 'record.closure_report.reason', 'record.sustainability_score'],
    'without a final report, its coded reason and a sustainability score',
  )

  t.equal(
    (await record(app, caseId, recipient, 'closure_report', undefined, { summary: 'Support ended.' })).statusCode,
    201,
    'a final report without a reason',
  )
  t.same(
    await unmetOf(),
    ['record.closure_report.reason', 'record.sustainability_score'],
    'still lacks the coded reason',
  )

  const other = await record(app, caseId, recipient, 'closure_report', undefined, {
    summary: 'Support ended.',
    reason: 'other',
  })
  t.equal(other.statusCode, 422, '`other` without saying what is refused')
  t.ok(
    other.json().errors.some((error: { pointer: string }) => error.pointer === '#/data/reason_text'),
    'pointing at reason_text',
  )
  const unknown = await record(app, caseId, recipient, 'closure_report', undefined, {
    summary: 'Support ended.',
    reason: 'fine',
  })
  t.equal(unknown.statusCode, 422, 'a reason outside the list is refused')

  const explained = await record(app, caseId, recipient, 'closure_report', undefined, {
    summary: 'Support ended.',
    reason: 'other',
    reason_text: 'Moved in with her sister abroad, with her consent to end support.',
  })
  t.equal(explained.statusCode, 201, '`other` with what it was')
  t.same(await unmetOf(), ['record.sustainability_score'], 'the score is still missing')

  const outOfRange = await record(app, caseId, recipient, 'sustainability_score', undefined, {
    economic: 1.2,
    social: 0.5,
    psychosocial: -0.1,
  })
  t.equal(outOfRange.statusCode, 422, 'each dimension is scored from 0 to 1')
  t.same(
    outOfRange
      .json()
      .errors.map((error: { pointer: string }) => error.pointer)
      .sort(),
    ['#/data/economic', '#/data/psychosocial'],
    'naming each dimension out of range',
  )
  t.equal((await record(app, caseId, recipient, 'sustainability_score')).statusCode, 201, 'a score in range')
  t.equal((await close()).statusCode, 200, 'now the case closes')

  const runToCompletion = await deadlineRunner(t, app, clock)
  now = new Date('2027-08-01T09:00:00Z')
  t.equal(await runToCompletion(), 0, 'visits that fell due after closing escalate nothing: a closed case owes none')
  t.same(await escalationsOf(app, caseId, ukraineSupervisor), [], 'no escalation')
  t.same(
    (await scheduleOf(app, caseId, recipient)).map((item) => [item.kind, item.status]),
    [
      ['reassessment', 'cancelled'],
      ['monitoring_visit', 'cancelled'],
      ['monitoring_visit', 'cancelled'],
      ['monitoring_visit', 'cancelled'],
      ['monitoring_visit', 'cancelled'],
    ],
    'the schedule says that nothing more is owed',
  )
})
