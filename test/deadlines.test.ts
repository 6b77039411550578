import t from 'tap'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { demoKeys, startTestApp, type TestApp } from './fixtures/app.js'
import { deadlineRunner } from './fixtures/deadline-runner.js'
import { openReferral, sender } from './fixtures/referral.js'

const DAY = 24 * 60 * 60 * 1000

async function escalations(request: TestApp['request'], key: string) {
  const response = await request({ method: 'GET', url: '/v1/escalations', key })
  return response.json().items as { case_id: string; step: string; responsible_organisation_id: string }[]
}

t.test('a step past its deadline shows as overdue and, through the job queue, raises one escalation', async (t) => {
  // A winter day: days are 24 hours on the responsible side's calendar until the deadlines below.
  let now = new Date('2027-01-11T09:00:00Z')
  const clock = { now: () => now }
  const app = await startTestApp(t, {}, clock)
  const { request } = app
  const created = await request({
    method: 'POST',
    url: '/v1/cases',
    key: demoKeys.demoiomplcw1,
    payload: { profile: { country_of_return: 'UA', vulnerabilities: ['victim_of_trafficking'] } },
  })
  const caseId = created.json().id as string
  const due = new Date(created.json().step_due_at as string)
  t.equal(due.getTime() - now.getTime(), 30 * DAY, 'the first step is due in 30 days (P30D)')

  const overdueNow = await request({ method: 'GET', url: '/v1/cases?overdue=true', key: demoKeys.demoiomplcw1 })
  t.same(overdueNow.json().items, [], 'nothing is overdue yet')

  now = new Date(due.getTime() + DAY)
  const overdueLater = await request({ method: 'GET', url: '/v1/cases?overdue=true', key: demoKeys.demoiomplcw1 })
  t.same(
    overdueLater.json().items.map((item: { id: string; overdue: boolean }) => [item.id, item.overdue]),
    [[caseId, true]],
    'a day after the deadline the case is listed as overdue',
  )
  const within = await request({ method: 'GET', url: '/v1/cases?overdue=false', key: demoKeys.demoiomplcw1 })
  t.same(within.json().items, [], 'and not among those within their deadline')

  const supervisor = demoKeys.demoiomplsv1 as string
  t.same(await escalations(request, supervisor), [], 'no escalation before the job runs')
  const runToCompletion = await deadlineRunner(t, app, clock)
  t.equal(await runToCompletion(), 1, 'the deadline job raises one escalation')
  t.match(await escalations(request, supervisor), [
    { case_id: caseId, step: 'identified', responsible_organisation_id: demoOrganisationIds.iomPoland },
  ])

  t.equal(await runToCompletion(), 0, 'running it again raises nothing')
  t.equal((await escalations(request, supervisor)).length, 1, 'one escalation per step and deadline')
  const caseworker = await request({ method: 'GET', url: '/v1/escalations', key: demoKeys.demoiomplcw1 })
  t.equal(caseworker.statusCode, 403, 'escalations are for supervisors')
  t.same(
    await escalations(request, demoKeys.demoiomuasv1 as string),
    [],
    'not for an organisation with no part in the case',
  )
})

t.test('an enquiry read but not acknowledged in time escalates to the partner it went to', async (t) => {
  // A winter day: days are 24 hours on the responsible side's calendar until the deadlines below.
  let now = new Date('2027-01-11T09:00:00Z')
  const clock = { now: () => now }
  const app = await startTestApp(t, {}, clock)
  const { request } = app
  const { caseId } = await openReferral(t, app)
  const sent = await request({ method: 'GET', url: `/v1/cases/${caseId}`, key: sender })
  t.equal(sent.json().step, 'referral_sent', 'sending the enquiry moved the case to referral_sent')
  const due = new Date(sent.json().step_due_at as string)
  t.equal(due.getTime() - now.getTime(), 5 * DAY, 'which the receiving partner must acknowledge within 5 days (P5D)')

  const runToCompletion = await deadlineRunner(t, app, clock)
  now = new Date(due.getTime() - 60_000)
  t.equal(await runToCompletion(), 0, 'a minute before the deadline, nothing escalates')

  now = new Date(due.getTime() + DAY)
  t.equal(await runToCompletion(), 1, 'a day after it, one escalation')
  const ukraineSupervisor = demoKeys.demoiomuasv1 as string
  t.match(
    await escalations(request, ukraineSupervisor),
    [{ case_id: caseId, step: 'referral_sent', responsible_organisation_id: demoOrganisationIds.iomUkraine }],
    'naming IOM Ukraine, which had to act; its supervisor sees it',
  )
  t.match(
    await escalations(request, demoKeys.demoiomplsv1 as string),
    [{ case_id: caseId, step: 'referral_sent', responsible_organisation_id: demoOrganisationIds.iomUkraine }],
    'and so does the sending partner',
  )
})
