import { pino } from 'pino'
import t from 'tap'
import { deadlineJob } from '../src/cases/deadlines.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { startJobQueue } from '../src/jobs/queue.js'
import { loadSops } from '../src/sops/registry.js'
import { demoKeys, startTestApp, type TestApp } from './fixtures/app.js'

const DAY = 24 * 60 * 60 * 1000

/** Asks until the answer satisfies `done`, for at most 20 seconds (the queue polls every second). */
async function eventually<T>(ask: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const until = Date.now() + 20_000
  for (;;) {
    const value = await ask()
    if (done(value) || Date.now() > until) return value
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

async function escalations(request: TestApp['request'], key: string) {
  const response = await request({ method: 'GET', url: '/v1/escalations', key })
  return response.json().items as { case_id: string; step: string; responsible_organisation_id: string }[]
}

t.test('a step past its deadline shows as overdue and, through the job queue, raises one escalation', async (t) => {
  let now = new Date()
  const clock = { now: () => now }
  const { request, database } = await startTestApp(t, {}, clock)
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
  const queue = await startJobQueue(
    database.jobBackend,
    { jobs: [deadlineJob(database.db, loadSops(), clock)] },
    pino({ level: 'silent' }),
  )
  t.teardown(() => queue.stop())
  await queue.runNow('check-deadlines')
  const raised = await eventually(
    () => escalations(request, supervisor),
    (items) => items.length > 0,
  )
  t.match(raised, [{ case_id: caseId, step: 'identified', responsible_organisation_id: demoOrganisationIds.iomPoland }])

  await queue.runNow('check-deadlines')
  await new Promise((resolve) => setTimeout(resolve, 2500))
  t.equal((await escalations(request, supervisor)).length, 1, 'running the job again raises nothing twice')
  const caseworker = await request({ method: 'GET', url: '/v1/escalations', key: demoKeys.demoiomplcw1 })
  t.equal(caseworker.statusCode, 403, 'escalations are for supervisors')
  t.same(
    await escalations(request, demoKeys.demoiomuasv1 as string),
    [],
    'not for an organisation with no part in the case',
  )
})
