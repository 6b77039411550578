import { setTimeout as sleep } from 'node:timers/promises'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { deadlineJob } from '../src/cases/deadlines.js'
import type { Clock } from '../src/clock.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { startJobQueue } from '../src/jobs/queue.js'
import { loadSops } from '../src/sops/registry.js'
import { demoKeys, startTestApp, type TestApp } from './fixtures/app.js'
import { openReferral, sender } from './fixtures/referral.js'

const DAY = 24 * 60 * 60 * 1000

/**
 * The deadline job on the job queue, and a way to ask for a run and wait until it has completed
 * (a run that read the clock at its current time or later): the job's answer is how many consents
 * it noticed and escalations it raised.
 */
async function deadlineRunner(t: Test, app: TestApp, clock: Clock) {
  const job = deadlineJob(app.database.db, loadSops(), clock)
  const completed: { at: number; result: unknown }[] = []
  const queue = await startJobQueue(
    app.database.jobBackend,
    {
      jobs: [
        {
          ...job,
          // Runs only when the test asks: no schedule, so no run of its own comes in between.
          cron: undefined,
          run: async (data, attempt) => {
            const at = clock.now().getTime()
            const result = await job.run(data, attempt)
            completed.push({ at, result })
            return result
          },
        },
      ],
    },
    pino({ level: 'silent' }),
  )
  t.teardown(() => queue.stop())
  return async function runToCompletion(): Promise<unknown> {
    const at = clock.now().getTime()
    const before = completed.length
    await queue.runNow(job.name)
    const until = Date.now() + 30_000
    for (;;) {
      const run = completed.slice(before).find((done) => done.at >= at)
      if (run) return run.result
      if (Date.now() > until) throw new Error(`${job.name} did not complete a run within 30 seconds`)
      await sleep(100)
    }
  }
}

async function escalations(request: TestApp['request'], key: string) {
  const response = await request({ method: 'GET', url: '/v1/escalations', key })
  return response.json().items as { case_id: string; step: string; responsible_organisation_id: string }[]
}

t.test('a step past its deadline shows as overdue and, through the job queue, raises one escalation', async (t) => {
  let now = new Date()
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
  let now = new Date()
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
