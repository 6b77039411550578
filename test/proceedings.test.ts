import t from 'tap'
import type { components } from '../openapi/dist/types.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { demoKeys, startTestApp, type TestApp } from './fixtures/app.js'
import { deadlineRunner } from './fixtures/deadline-runner.js'
import { feedUntil } from './fixtures/feed.js'
import { openReferral, recipient, sender, takeToArrival } from './fixtures/referral.js'

type Proceeding = components['schemas']['Proceeding']
type ScheduledObligation = components['schemas']['ScheduledObligation']

const POLAND = demoOrganisationIds.iomPoland
const UKRAINE = demoOrganisationIds.iomUkraine

const criminalProceedings = {
  kind: 'criminal',
  country: 'PL',
  authority: 'Regional Court of Warsaw, 8th Criminal Division',
  reference: 'VIII K 123/26',
  stage: 'trial',
  person_roles: ['victim', 'witness', 'injured_party'],
  protection_measures: ['video_testimony', 'no_contact_with_defendant'],
  remote_participation: 'requested',
}

function proceedingsUrl(caseId: string, ...rest: string[]) {
  return [`/v1/cases/${caseId}/proceedings`, ...rest].join('/')
}

async function addHearing(
  app: TestApp,
  caseId: string,
  proceedingId: string,
  key: string,
  ifMatch: string,
  at: string,
) {
  return app.request({
    method: 'POST',
    url: proceedingsUrl(caseId, proceedingId, 'hearings'),
    key,
    headers: { 'if-match': ifMatch },
    payload: { scheduled_at: at, purpose: 'testimony', participation: 'remote' },
  })
}

async function scheduleOf(app: TestApp, caseId: string, key: string): Promise<ScheduledObligation[]> {
  return (await app.request({ method: 'GET', url: `/v1/cases/${caseId}`, key })).json().schedule
}

t.test('after return, a hearing is the receiving side’s deadline, and proceedings follow consent', async (t) => {
  let now = new Date('2027-01-15T09:00:00Z')
  const clock = { now: () => now }
  const app = await startTestApp(t, {}, clock)
  const { request } = app
  const { caseId } = await takeToArrival(t, app)

  const create = () =>
    request({
      method: 'POST',
      url: proceedingsUrl(caseId),
      key: sender,
      headers: { 'idempotency-key': 'proceedings-1' },
      payload: criminalProceedings,
    })
  const created = await create()
  t.equal(created.statusCode, 201, 'IOM Poland opens the thread of the criminal proceedings in Poland')
  const proceeding = created.json() as Proceeding
  t.match(proceeding, { ...criminalProceedings, hearings: [], version: 1, created_by_organisation_id: POLAND })
  t.equal(created.headers.etag, '"1"', 'with its version as ETag')
  t.equal(created.headers.location, proceedingsUrl(caseId, proceeding.id))
  const replayed = await create()
  t.equal(replayed.json().id, proceeding.id, 'a retry with the same Idempotency-Key opens nothing new')
  t.equal(replayed.headers['idempotent-replayed'], 'true')

  // The person has not consented to share proceedings data with IOM Ukraine.
  const listed = await request({ method: 'GET', url: proceedingsUrl(caseId), key: recipient })
  t.same(listed.json().items, [], 'IOM Ukraine, leading the case since arrival, sees no proceedings without consent')
  const read = await request({ method: 'GET', url: proceedingsUrl(caseId, proceeding.id), key: recipient })
  t.equal(read.statusCode, 404, 'nor the proceeding itself')
  const change = await request({
    method: 'PATCH',
    url: proceedingsUrl(caseId, proceeding.id),
    key: recipient,
    headers: { 'if-match': '"1"' },
    payload: { stage: 'appeal' },
  })
  t.equal(change.statusCode, 404, 'and may not change what it may not read')

  const missingIfMatch = await request({
    method: 'POST',
    url: proceedingsUrl(caseId, proceeding.id, 'hearings'),
    key: sender,
    payload: { scheduled_at: '2027-03-15T09:00:00Z', purpose: 'testimony', participation: 'remote' },
  })
  t.equal(missingIfMatch.statusCode, 428, 'adding a hearing needs If-Match')
  t.equal((await addHearing(app, caseId, proceeding.id, sender, '"7"', '2027-03-15T09:00:00Z')).statusCode, 412)
  const scheduled = await addHearing(app, caseId, proceeding.id, sender, '"1"', '2027-03-15T09:00:00Z')
  t.equal(scheduled.statusCode, 201, 'IOM Poland adds the hearing at which she testifies by video link')
  const [hearing] = (scheduled.json() as Proceeding).hearings
  t.match(
    hearing,
    { scheduled_at: '2027-03-15T09:00:00.000Z', outcome: null, responsible_organisation_id: UKRAINE },
    'a deadline for IOM Ukraine, which is responsible for the person now',
  )
  t.equal(scheduled.headers.etag, '"2"', 'the proceeding moves to version 2')

  const ukraineSchedule = await scheduleOf(app, caseId, recipient)
  const hearingItem = ukraineSchedule.find((item) => item.kind === 'hearing')
  t.match(
    hearingItem,
    { due_at: '2027-03-15T09:00:00.000Z', responsible_organisation_id: UKRAINE, status: 'due' },
    'IOM Ukraine’s case shows the hearing as due',
  )
  t.same(
    [hearingItem?.proceeding_id, hearingItem?.hearing_id],
    [null, null],
    'without naming the proceeding it may not read',
  )
  t.match(
    (await scheduleOf(app, caseId, sender)).find((item) => item.kind === 'hearing'),
    { proceeding_id: proceeding.id, hearing_id: hearing?.id },
    'IOM Poland sees which hearing it is',
  )
  const hearingsScheduled = (events: { type: string }[]) =>
    events.filter((event) => event.type === 'proceeding.hearing_scheduled')
  t.match(
    hearingsScheduled(await feedUntil(request, recipient, (events) => hearingsScheduled(events).length > 0)),
    [{ case_id: caseId, data: { hearing_id: hearing?.id, responsible_organisation_id: UKRAINE } }],
    'and IOM Ukraine hears of it through its event feed',
  )

  const runToCompletion = await deadlineRunner(t, app, clock)
  now = new Date('2027-03-16T09:00:00Z')
  // Two months after arrival nothing else was done either: the plan (arrived, P30D), the
  // re-assessment (P30D) and the first monitoring visit (P1M) are late as well.
  t.equal(await runToCompletion(), 4, 'a hearing that passes with nothing recorded escalates, beside the rest')
  const escalations = await request({ method: 'GET', url: '/v1/escalations', key: demoKeys.demoiomuasv1 })
  t.same(
    escalations
      .json()
      .items.map((item: { kind: string }) => item.kind)
      .sort(),
    ['hearing', 'monitoring_visit', 'reassessment', 'step_deadline'],
    'one escalation for each',
  )
  t.match(
    escalations.json().items.filter((item: { kind: string }) => item.kind === 'hearing'),
    [{ kind: 'hearing', case_id: caseId, obligation_id: hearingItem?.id, responsible_organisation_id: UKRAINE }],
    'to IOM Ukraine’s supervisor',
  )

  // The person consents to share proceedings data with IOM Ukraine for her reintegration.
  const consent = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/consents`,
    key: recipient,
    payload: {
      given_at: '2027-03-16T08:00:00Z',
      method: 'written',
      language: 'uk',
      interpreter: { used: false },
      provisions: [{ categories: ['proceedings'], recipients: [UKRAINE], purposes: ['reintegration'] }],
    },
  })
  t.equal(consent.statusCode, 201, 'IOM Ukraine records her consent to share proceedings data with it')
  const nowListed = await request({ method: 'GET', url: proceedingsUrl(caseId), key: recipient })
  t.match(
    nowListed.json().items,
    [{ id: proceeding.id, stage: 'trial', hearings: [{ id: hearing?.id }] }],
    'now IOM Ukraine follows the proceedings',
  )

  const outcome = await request({
    method: 'POST',
    url: proceedingsUrl(caseId, proceeding.id, 'hearings', String(hearing?.id), 'outcome'),
    key: recipient,
    headers: { 'if-match': '"2"' },
    payload: { outcome: 'adjourned', notes: 'The video link failed; the court adjourned.' },
  })
  t.equal(outcome.statusCode, 200, 'and records what happened at the hearing')
  t.match(outcome.json().hearings, [{ outcome: 'adjourned', outcome_recorded_at: now.toISOString() }])
  t.match(
    (await scheduleOf(app, caseId, recipient)).find((item) => item.kind === 'hearing'),
    { status: 'fulfilled', proceeding_id: proceeding.id, hearing_id: hearing?.id },
    'which fulfils the hearing’s deadline',
  )
  const again = await request({
    method: 'POST',
    url: proceedingsUrl(caseId, proceeding.id, 'hearings', String(hearing?.id), 'outcome'),
    key: recipient,
    headers: { 'if-match': '"3"' },
    payload: { outcome: 'held' },
  })
  t.equal(again.statusCode, 409, 'an outcome is recorded once')

  const updated = await request({
    method: 'PATCH',
    url: proceedingsUrl(caseId, proceeding.id),
    key: recipient,
    headers: { 'if-match': '"3"' },
    payload: { stage: 'appeal', remote_participation: 'granted' },
  })
  t.equal(updated.statusCode, 200, 'IOM Ukraine updates the stage and the remote participation')
  t.match(updated.json(), { stage: 'appeal', remote_participation: 'granted', version: 4 })

  const shelter = await request({ method: 'GET', url: proceedingsUrl(caseId), key: demoKeys.demoiommacw1 })
  t.equal(shelter.statusCode, 404, 'an organisation with no part in the case learns nothing')
})

t.test('before return, a hearing is the sending side’s deadline', async (t) => {
  const app = await startTestApp(t)
  const { caseId } = await openReferral(t, app)
  const created = await app.request({
    method: 'POST',
    url: proceedingsUrl(caseId),
    key: sender,
    payload: {
      kind: 'compensation',
      country: 'PL',
      authority: 'District Court of Warsaw',
      stage: 'investigation',
      person_roles: ['compensation_claimant'],
    },
  })
  t.equal(created.statusCode, 201)
  t.match(created.json(), { protection_measures: [], remote_participation: 'not_needed', reference: null })
  const at = new Date(Date.now() + 10 * 86_400_000).toISOString()
  const scheduled = await addHearing(app, caseId, created.json().id, sender, '"1"', at)
  t.match(
    scheduled.json().hearings,
    [{ responsible_organisation_id: POLAND }],
    'IOM Poland leads: the deadline is its own',
  )

  const invalid = await app.request({
    method: 'POST',
    url: proceedingsUrl(caseId),
    key: sender,
    payload: { ...criminalProceedings, kind: 'administrative', person_roles: [] },
  })
  t.equal(invalid.statusCode, 400, 'a proceeding outside the vocabularies is refused')
})
