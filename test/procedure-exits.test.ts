import t, { type Test } from 'tap'
import type { components } from '../openapi/dist/types.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { demoKeys, startTestApp } from './fixtures/app.js'
import { deadlineRunner } from './fixtures/deadline-runner.js'
import { feedUntil } from './fixtures/feed.js'
import { assessmentData, recordData } from './fixtures/referral.js'

// The ways a return fails, walked over HTTP for an adult and for a child: a no-show at departure, a
// person who disappears, suspected re-trafficking, a return found impossible or unsafe, and a child
// not returned, handed back to child protection. At every step: which organisation is responsible,
// which side must act, and what was raised — escalations to both sides, and the authorities told
// (who read an event in their feed and nothing of the case).

type Schemas = components['schemas']
type CaseSummary = Schemas['CaseSummary']
type Escalation = Schemas['Escalation']
type Event = Schemas['Event']
type Problem = Schemas['Problem'] & { unmet?: Schemas['Unmet'][] }

const ORG = demoOrganisationIds
const POLAND = ORG.iomPoland
const UKRAINE = ORG.iomUkraine

const PL_CW = demoKeys.demoiomplcw1 as string
const PL_SV = demoKeys.demoiomplsv1 as string
const UA_CW = demoKeys.demoiomuacw1 as string
const UA_SV = demoKeys.demoiomuasv1 as string
const CHILD_PROTECTION_UA = demoKeys.democpuacw01 as string
const CHILD_PROTECTION_PL = demoKeys.democpplcw01 as string
const REFERRAL_MECHANISM_UA = demoKeys.demonrmuacw1 as string
const REFERRAL_MECHANISM_PL = demoKeys.demonrmplcw1 as string

const DAY = 86_400_000
const GUARDIAN = { name: 'Halyna Melnyk', relationship: 'legal_guardian' } as const
const CHILD_NAME = 'Taras-Exit-Scenario'

const safetyPlan = {
  agreed_on: '2026-12-01',
  risk_level: 'high',
  indicators: ['contact_with_traffickers', 'recruitment_offer'],
  measures: ['safe_accommodation', 'change_of_contact_details', 'regular_check_in'],
}

let now = new Date()
const clock = { now: () => now }

const app = await startTestApp(t, { rateLimitPerMinute: 100_000 }, clock)
const { request } = app

// ─── Steps of a scenario ─────────────────────────────────────────────────────────────────────

async function getCase(caseId: string, key = PL_CW) {
  const response = await request({ method: 'GET', url: `/v1/cases/${caseId}`, key })
  return response
}

async function transition(caseId: string, key: string, action: string, extras: object = {}) {
  const current = await getCase(caseId, key)
  return request({
    method: 'POST',
    url: `/v1/cases/${caseId}/transitions`,
    key,
    headers: { 'if-match': String(current.headers.etag) },
    payload: { action, ...extras },
  })
}

async function take(t: Test, caseId: string, key: string, action: string, to: string, extras: object = {}) {
  const response = await transition(caseId, key, action, extras)
  t.equal(response.statusCode, 200, `${action} is taken`)
  const body = response.json() as CaseSummary
  t.equal(body.step, to, `${action} leads to ${to}`)
  return body
}

async function refused(t: Test, caseId: string, key: string, action: string, codes: string[], extras: object = {}) {
  const response = await transition(caseId, key, action, extras)
  t.equal(response.statusCode, 409, `${action} is refused`)
  const problem = response.json() as Problem
  t.equal(problem.type, 'urn:trm:problem:preconditions-unmet', `${action}: its preconditions are unmet`)
  t.same(
    (problem.unmet ?? []).map((u) => u.code),
    codes,
    `${action}: unmet ${codes.join(', ')}`,
  )
  return problem
}

async function inputMissing(t: Test, caseId: string, key: string, action: string) {
  const response = await transition(caseId, key, action)
  t.equal(response.statusCode, 422, `${action} without a reason is refused`)
  t.equal((response.json() as Problem).type, 'urn:trm:problem:input-required')
}

async function record(
  t: Test,
  caseId: string,
  key: string,
  kind: string,
  data: object,
  assessment?: keyof typeof assessmentData,
) {
  const response = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/records`,
    key,
    payload: { kind, ...(assessment ? { assessment } : {}), data },
  })
  t.equal(response.statusCode, 201, `${assessment ?? kind} is recorded`)
  return response.json() as Schemas['CaseRecord']
}

const recordOf = (t: Test, caseId: string, key: string, kind: keyof typeof recordData) =>
  record(t, caseId, key, kind, recordData[kind])
const assess = (t: Test, caseId: string, key: string, assessment: keyof typeof assessmentData, data?: object) =>
  record(t, caseId, key, 'assessment', data ?? assessmentData[assessment], assessment)

/**
 * The case is at `step`, the organisation `lead` is responsible for the person, and `side` must act:
 * as every reader among `readers` sees it.
 */
async function expectAt(
  t: Test,
  caseId: string,
  step: string,
  lead: string,
  side: 'sending' | 'receiving' | null,
  readers: string[] = [PL_CW],
) {
  for (const key of readers) {
    const read = await getCase(caseId, key)
    t.equal(read.statusCode, 200)
    const body = read.json() as CaseSummary
    t.equal(body.step, step, `the case is at ${step}`)
    t.equal(
      body.lead_organisation_id,
      lead,
      `${step}: ${lead === POLAND ? 'IOM Poland' : 'IOM Ukraine'} is responsible`,
    )
    const next = await request({ method: 'GET', url: `/v1/cases/${caseId}/next-actions`, key })
    t.equal(
      (next.json() as Schemas['NextActions']).responsible_side,
      side,
      `${step}: the ${side ?? 'no'} side must act`,
    )
  }
}

/** The escalations of a case that an organisation's supervisor lists. */
async function escalationsOf(caseId: string, key: string): Promise<Escalation[]> {
  const response = await request({ method: 'GET', url: '/v1/escalations?limit=200', key })
  t.equal(response.statusCode, 200)
  return (response.json() as Schemas['EscalationPage']).items.filter((e) => e.case_id === caseId)
}

/** The events of a case in an organisation's feed, once `ready` holds of them. */
async function feedOf(key: string, caseId: string, ready: (events: Event[]) => boolean = () => true) {
  const ofCase = (events: Event[]) => events.filter((event) => event.case_id === caseId)
  return ofCase(await feedUntil(request, key, (events) => ready(ofCase(events))))
}

const ofType = (events: Event[], type: string) => events.filter((event) => event.type === type)

/** An authority told of the case reads that in its feed, and nothing of the case itself. */
async function toldButNotAParty(t: Test, key: string, caseId: string, expected: Record<string, unknown>) {
  const about = (events: Event[]) =>
    ofType(events, 'case.authority_notified').filter((event) => event.data.notification === expected.notification)
  const told = about(await feedOf(key, caseId, (events) => about(events).length > 0))
  t.equal(told.length, 1, `the authority is told once: ${expected.notification}`)
  t.match(told[0]?.data, expected, 'what happened, and whom to contact')
  t.same(
    Object.keys(told[0]?.data ?? {}).sort(),
    [
      'action',
      'case_reference',
      'country',
      'lead_organisation_id',
      'notification',
      'notified_organisation_ids',
      'organisation_kind',
      'receiving_organisation_id',
      'sending_organisation_id',
      'step',
    ],
    'identifiers and states only',
  )
  const events = await feedOf(key, caseId)
  t.same(
    [...new Set(events.map((event) => event.type))],
    ['case.authority_notified'],
    'no other event of the case reaches the authority',
  )
  t.notOk(JSON.stringify(events).includes(CHILD_NAME), "no personal data: not even the child's name")
  const read = await getCase(caseId, key)
  t.equal(read.statusCode, 404, 'the authority is not a party: it cannot read the case')
  for (const what of ['records', 'timeline', 'consents', 'next-actions']) {
    const read = await request({ method: 'GET', url: `/v1/cases/${caseId}/${what}`, key })
    t.equal(read.statusCode, 404, `nor its ${what}`)
  }
}

/** The authority is not told (of this, where `notification` says what). */
async function notTold(t: Test, key: string, caseId: string, why: string, notification?: string) {
  // Once the sending partner's feed shows the case's latest transition, every event written with it
  // shows in every feed: absence then means the authority was not told.
  const version = (await getCase(caseId)).json().version as number
  await feedOf(PL_CW, caseId, (events) =>
    events.some((event) => event.type === 'case.transitioned' && event.data.version === version),
  )
  const events = await feedOf(key, caseId)
  t.same(notification ? events.filter((event) => event.data.notification === notification) : events, [], why)
}

// ─── Cases walked to a step ──────────────────────────────────────────────────────────────────

const MAIN_PATH = [
  'identified',
  'return_decided',
  'referral_sent',
  'acknowledged',
  'accepted',
  'ready_to_travel',
  'departed',
  'arrived',
] as const
type MainStep = (typeof MAIN_PATH)[number]

async function consent(t: Test, caseId: string, guardian: typeof GUARDIAN | null) {
  const response = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/consents`,
    key: PL_CW,
    payload: {
      given_at: new Date(now.getTime() - 3_600_000).toISOString(),
      method: 'written',
      language: 'uk',
      interpreter: { used: false },
      guardian,
      ...(guardian ? { child_views: 'Wants to go home to his aunt.' } : {}),
      provisions: [{ categories: ['identity', 'health'], recipients: [UKRAINE], purposes: ['return_assistance'] }],
      expires_at: null,
    },
  })
  t.equal(response.statusCode, 201, 'the consent is recorded')
}

async function answer(packetId: string, action: string, payload: object) {
  const read = await request({ method: 'GET', url: `/v1/packets/${packetId}`, key: UA_CW })
  return request({
    method: 'POST',
    url: `/v1/packets/${packetId}/${action}`,
    key: UA_CW,
    headers: { 'if-match': String(read.headers.etag) },
    payload,
  })
}

const acknowledgement = {
  focal_point: { name: 'Iryna Shevchenko', email: 'focal@iom-ua.example' },
  alternate_contact: { name: 'Petro Bondarenko', email: 'alternate@iom-ua.example' },
}

/**
 * A case opened by IOM Poland for a return to Ukraine, walked along the straight path to `target`:
 * for a child, with every safeguard (a determination in favour of return made after the family
 * assessment, a guardian, the guardian's consent, a hand-over protocol).
 */
async function caseAt(t: Test, target: MainStep, child: boolean): Promise<{ caseId: string; packetId: string }> {
  const until = MAIN_PATH.indexOf(target)
  const opened = await request({
    method: 'POST',
    url: '/v1/cases',
    key: PL_CW,
    payload: {
      profile: {
        age_band: child ? '14_17' : '25_34',
        sex: 'male',
        nationality: 'UA',
        country_of_return: 'UA',
        vulnerabilities: child
          ? ['victim_of_trafficking', 'unaccompanied_or_separated_child']
          : ['victim_of_trafficking'],
      },
      sections: { identity: { given_name: CHILD_NAME, family_name: 'Bondar' }, health: { conditions: ['asthma'] } },
    },
  })
  t.equal(opened.statusCode, 201, 'IOM Poland opens the case')
  const caseId = (opened.json() as CaseSummary).id
  t.equal(
    (opened.json() as CaseSummary).sop.id,
    child ? 'child-return-pl-ua' : 'adult-return',
    'on the procedure of its corridor',
  )
  let packetId = ''
  if (until >= 1) {
    await recordOf(t, caseId, PL_CW, 'return_decision')
    if (child) {
      await assess(t, caseId, PL_CW, 'best_interests_determination')
      await recordOf(t, caseId, PL_CW, 'guardian_appointment')
    }
    await take(t, caseId, PL_CW, 'decide_return', 'return_decided')
  }
  if (until >= 2) {
    await consent(t, caseId, child ? GUARDIAN : null)
    const sent = await request({
      method: 'POST',
      url: `/v1/cases/${caseId}/packets`,
      key: PL_CW,
      payload: { recipient_organisation_id: UKRAINE, purpose: 'return_assistance' },
    })
    t.equal(sent.statusCode, 201, 'the enquiry is sent')
    packetId = (sent.json() as Schemas['Packet']).id
  }
  if (until >= 3) {
    t.equal((await answer(packetId, 'acknowledge', acknowledgement)).statusCode, 200, 'IOM Ukraine acknowledges')
  }
  if (until >= 4) {
    await assess(t, caseId, PL_CW, 'risk_and_needs')
    await assess(t, caseId, UA_CW, 'risk_and_needs')
    if (child) {
      await assess(t, caseId, UA_CW, 'family')
      await assess(t, caseId, PL_CW, 'best_interests_determination')
    }
    t.equal((await answer(packetId, 'accept', {})).statusCode, 200, 'IOM Ukraine accepts')
  }
  if (until >= 5) {
    await recordOf(t, caseId, PL_CW, 'travel_documents')
    await assess(t, caseId, PL_CW, 'fit_to_travel')
    await recordOf(t, caseId, PL_CW, 'escort')
    await recordOf(t, caseId, UA_CW, 'reception')
    await recordOf(t, caseId, UA_CW, 'reintegration_plan_draft')
    await take(t, caseId, PL_CW, 'confirm_ready', 'ready_to_travel')
  }
  if (until >= 6) {
    if (child) await recordOf(t, caseId, PL_CW, 'handover_protocol')
    await take(t, caseId, PL_CW, 'confirm_departure', 'departed')
  }
  if (until >= 7) await take(t, caseId, UA_CW, 'confirm_arrival', 'arrived')
  return { caseId, packetId }
}

// ─── The exits, for an adult and for a child ─────────────────────────────────────────────────

for (const child of [false, true]) {
  const who = child ? 'a child' : 'an adult'

  t.test(
    `${who}: a no-show at departure; the sending partner stays responsible and prepares a new departure`,
    async (t) => {
      const { caseId } = await caseAt(t, 'ready_to_travel', child)
      await refused(t, caseId, UA_CW, 'report_no_show', ['actor.side'], { reason: 'Not at the airport.' })
      await inputMissing(t, caseId, PL_CW, 'report_no_show')
      const noShow = await take(t, caseId, PL_CW, 'report_no_show', 'no_show', { reason: 'Not at the airport.' })
      t.equal(noShow.lead_organisation_id, POLAND)
      t.equal(Date.parse(noShow.step_due_at ?? '') - now.getTime(), 7 * DAY, 'the sending partner has 7 days (P7D)')
      await expectAt(t, caseId, 'no_show', POLAND, 'sending', [PL_CW, UA_CW])
      const told = await feedOf(UA_CW, caseId, (events) =>
        events.some((e) => e.type === 'case.transitioned' && e.data.to_step === 'no_show'),
      )
      t.ok(
        told.some((e) => e.type === 'case.transitioned' && e.data.action === 'report_no_show'),
        'IOM Ukraine, waiting at the airport, is told in its feed',
      )
      t.same(await escalationsOf(caseId, PL_SV), [], 'a no-show alerts no one at once: its deadline escalates')
      await refused(t, caseId, UA_CW, 'rebook_departure', ['actor.side'])
      await take(t, caseId, PL_CW, 'rebook_departure', 'accepted')
      await expectAt(t, caseId, 'accepted', POLAND, 'sending', [PL_CW, UA_CW])
      await take(t, caseId, PL_CW, 'confirm_ready', 'ready_to_travel')
      const timeline = await request({ method: 'GET', url: `/v1/cases/${caseId}/timeline`, key: PL_CW })
      t.same(
        (timeline.json() as Schemas['Timeline']).items
          .slice(-3)
          .map((i) => [i.action, i.to_step, i.lead_organisation_id]),
        [
          ['report_no_show', 'no_show', POLAND],
          ['rebook_departure', 'accepted', POLAND],
          ['confirm_ready', 'ready_to_travel', POLAND],
        ],
        'IOM Poland responsible after each step',
      )
    },
  )

  t.test(`${who}: missing before departure; both sides are alerted at once; found again`, async (t) => {
    const { caseId } = await caseAt(t, 'accepted', child)
    await refused(t, caseId, UA_CW, 'report_missing', ['actor.side'], { reason: 'Left the shelter.' })
    await inputMissing(t, caseId, PL_CW, 'report_missing')
    await take(t, caseId, PL_CW, 'report_missing', 'missing', { reason: 'Left the shelter at night.' })
    await expectAt(t, caseId, 'missing', POLAND, 'sending', [PL_CW, UA_CW])
    for (const [key, side] of [
      [PL_SV, 'IOM Poland'],
      [UA_SV, 'IOM Ukraine'],
    ] as const) {
      const alerts = await escalationsOf(caseId, key)
      t.match(
        alerts,
        [{ kind: 'exit_alert', step: 'missing', responsible_organisation_id: POLAND, due_at: now.toISOString() }],
        `${side}'s supervisors see the alert at once, naming IOM Poland, which leads`,
      )
    }
    for (const key of [PL_CW, UA_CW]) {
      const raised = ofType(
        await feedOf(key, caseId, (events) => ofType(events, 'escalation.raised').length > 0),
        'escalation.raised',
      )
      t.match(raised, [
        { data: { escalation_kind: 'exit_alert', step: 'missing', responsible_organisation_id: POLAND } },
      ])
    }
    if (child) {
      await toldButNotAParty(t, CHILD_PROTECTION_PL, caseId, {
        notification: 'person_missing',
        organisation_kind: 'child_protection_authority',
        country: 'PL',
        step: 'missing',
        lead_organisation_id: POLAND,
        sending_organisation_id: POLAND,
        receiving_organisation_id: UKRAINE,
      })
      await notTold(
        t,
        CHILD_PROTECTION_UA,
        caseId,
        "the child is in Poland: Ukraine's authority is told only that he is coming",
        'person_missing',
      )
    } else {
      await notTold(t, CHILD_PROTECTION_PL, caseId, 'no child protection authority for an adult')
    }
    await refused(t, caseId, UA_CW, 'person_found', ['actor.side'])
    await take(t, caseId, PL_CW, 'person_found', 'accepted')
    await expectAt(t, caseId, 'accepted', POLAND, 'sending', [PL_CW, UA_CW])
  })

  t.test(`${who}: missing while the receiving partner considers the referral; both sides see the alert`, async (t) => {
    const { caseId } = await caseAt(t, 'acknowledged', child)
    await take(t, caseId, PL_CW, 'report_missing', 'missing', { reason: 'Left the shelter.' })
    await expectAt(t, caseId, 'missing', POLAND, 'sending', [PL_CW, UA_CW])
    for (const key of [PL_SV, UA_SV]) {
      t.match(
        await escalationsOf(caseId, key),
        [{ kind: 'exit_alert', step: 'missing', responsible_organisation_id: POLAND }],
        'the alert is listed for the supervisors of both sides, before any acceptance',
      )
    }
    await take(t, caseId, PL_CW, 'person_found', 'acknowledged')
    await expectAt(t, caseId, 'acknowledged', POLAND, 'receiving', [PL_CW, UA_CW])
  })

  t.test(`${who}: not arriving, reported by the receiving partner; closed when not found`, async (t) => {
    const { caseId } = await caseAt(t, 'departed', child)
    await refused(t, caseId, PL_CW, 'report_missing', ['actor.side'], { reason: 'Did not arrive.' })
    await take(t, caseId, UA_CW, 'report_missing', 'missing', { reason: 'Not on the flight.' })
    await expectAt(t, caseId, 'missing', POLAND, 'sending', [PL_CW, UA_CW])
    t.match(
      await escalationsOf(caseId, UA_SV),
      [{ kind: 'exit_alert', step: 'missing', responsible_organisation_id: POLAND }],
      'IOM Poland still leads: arrival was never confirmed',
    )
    if (child) {
      await toldButNotAParty(t, CHILD_PROTECTION_UA, caseId, {
        notification: 'person_missing',
        country: 'UA',
        lead_organisation_id: POLAND,
      })
    }
    await refused(t, caseId, PL_SV, 'close', ['record.closure_report', 'record.closure_report.reason'], {
      reason: 'Lost contact.',
    })
    await refused(t, caseId, UA_SV, 'close', ['actor.side', 'record.closure_report', 'record.closure_report.reason'], {
      reason: 'Lost contact.',
    })
    await recordOf(t, caseId, PL_CW, 'closure_report')
    await refused(t, caseId, PL_CW, 'close', ['actor.role'], { reason: 'Lost contact.' })
    const closed = await take(t, caseId, PL_SV, 'close', 'closed', { reason: 'Lost contact after 30 days.' })
    t.equal(closed.lead_organisation_id, POLAND)
    await expectAt(t, caseId, 'closed', POLAND, null, [PL_CW, UA_CW])
  })

  t.test(`${who}: missing after arrival; the receiving partner stays responsible`, async (t) => {
    const { caseId } = await caseAt(t, 'arrived', child)
    await refused(t, caseId, PL_CW, 'report_missing', ['actor.side'], { reason: 'No answer.' })
    await take(t, caseId, UA_CW, 'report_missing', 'missing', { reason: 'Left the shelter.' })
    await expectAt(t, caseId, 'missing', UKRAINE, 'receiving', [PL_CW, UA_CW])
    t.match(
      await escalationsOf(caseId, PL_SV),
      [{ kind: 'exit_alert', step: 'missing', responsible_organisation_id: UKRAINE }],
      "IOM Poland's supervisors see the alert, naming IOM Ukraine, which leads",
    )
    if (child) {
      await toldButNotAParty(t, CHILD_PROTECTION_UA, caseId, { notification: 'person_missing', country: 'UA' })
    }
    await take(t, caseId, UA_CW, 'person_found', 'arrived')
    await expectAt(t, caseId, 'arrived', UKRAINE, 'receiving', [PL_CW, UA_CW])
  })

  t.test(
    `${who}: re-trafficking suspected after arrival needs a safety plan; the referral mechanism where the person is, is alerted`,
    async (t) => {
      const { caseId } = await caseAt(t, 'arrived', child)
      const refusal = await refused(t, caseId, UA_CW, 'report_retrafficking', ['record.safety_plan'], {
        reason: 'The recruiter called again.',
      })
      t.match(refusal.unmet?.[0]?.message, /safety plan is not recorded/, 'the refusal names the safety plan')
      const bad = await request({
        method: 'POST',
        url: `/v1/cases/${caseId}/records`,
        key: UA_CW,
        payload: { kind: 'safety_plan', data: { agreed_on: '2026-12-01', risk_level: 'high', measures: [] } },
      })
      t.equal(bad.statusCode, 422, 'a safety plan without a measure is refused')
      t.ok(
        (bad.json() as Problem & { errors: { pointer: string }[] }).errors.some((e) => e.pointer === '#/data/measures'),
        'pointing at the measures',
      )
      await record(t, caseId, UA_CW, 'safety_plan', safetyPlan)
      await take(t, caseId, UA_CW, 'report_retrafficking', 'retrafficking_suspected', {
        reason: 'The recruiter called again.',
      })
      await expectAt(t, caseId, 'retrafficking_suspected', UKRAINE, 'receiving', [PL_CW, UA_CW])
      await toldButNotAParty(t, REFERRAL_MECHANISM_UA, caseId, {
        notification: 'retrafficking_suspected',
        organisation_kind: 'national_referral_mechanism',
        country: 'UA',
        lead_organisation_id: UKRAINE,
        receiving_organisation_id: UKRAINE,
      })
      await notTold(t, REFERRAL_MECHANISM_PL, caseId, 'the person is in Ukraine: the Polish mechanism is not alerted')
      if (child) {
        await toldButNotAParty(t, CHILD_PROTECTION_UA, caseId, {
          notification: 'retrafficking_suspected',
          organisation_kind: 'child_protection_authority',
          country: 'UA',
        })
      }
      const parties = await feedOf(
        PL_CW,
        caseId,
        (events) => ofType(events, 'case.authority_notified').filter((e) => e.data.step !== 'accepted').length > 0,
      )
      t.match(
        ofType(parties, 'case.authority_notified')
          .filter((e) => e.data.notification === 'retrafficking_suspected')
          .map((e) => e.data.organisation_kind),
        child ? ['national_referral_mechanism', 'child_protection_authority'] : ['national_referral_mechanism'],
        'the sending partner sees whom the case told',
      )
      await recordOf(t, caseId, UA_CW, 'closure_report')
      await take(t, caseId, UA_SV, 'close', 'closed', { reason: 'Re-trafficking suspected and referred.' })
      await expectAt(t, caseId, 'closed', UKRAINE, null, [PL_CW, UA_CW])
    },
  )

  t.test(`${who}: re-trafficking suspected before departure alerts the referral mechanism in Poland`, async (t) => {
    const { caseId } = await caseAt(t, 'return_decided', child)
    await refused(t, caseId, PL_CW, 'report_retrafficking', ['record.safety_plan'], { reason: 'Threats.' })
    await record(t, caseId, PL_CW, 'safety_plan', safetyPlan)
    await take(t, caseId, PL_CW, 'report_retrafficking', 'retrafficking_suspected', { reason: 'Threats.' })
    await expectAt(t, caseId, 'retrafficking_suspected', POLAND, 'sending')
    await toldButNotAParty(t, REFERRAL_MECHANISM_PL, caseId, {
      notification: 'retrafficking_suspected',
      country: 'PL',
      lead_organisation_id: POLAND,
      receiving_organisation_id: null,
    })
    await notTold(t, REFERRAL_MECHANISM_UA, caseId, 'the Ukrainian mechanism is not alerted')
  })

  t.test(
    `${who}: the return is found unsafe; the sending partner seeks another durable solution and closes`,
    async (t) => {
      const { caseId } = await caseAt(t, 'acknowledged', child)
      await refused(t, caseId, PL_CW, 'report_return_not_possible', ['actor.role'], { reason: 'Unsafe.' })
      await refused(t, caseId, UA_SV, 'report_return_not_possible', ['actor.side'], { reason: 'Unsafe.' })
      await inputMissing(t, caseId, PL_SV, 'report_return_not_possible')
      const solution = await take(t, caseId, PL_SV, 'report_return_not_possible', 'alternative_durable_solution', {
        reason: 'The traffickers live in his home village.',
      })
      t.equal(Date.parse(solution.step_due_at ?? '') - now.getTime(), 90 * DAY, 'within 90 days (P90D)')
      await expectAt(t, caseId, 'alternative_durable_solution', POLAND, 'sending', [PL_CW, UA_CW])
      const seen = await getCase(caseId, UA_CW)
      t.same(seen.json().sections, {}, 'the receiving partner reads nothing of the case any more: the return is off')
      t.ok((await getCase(caseId, PL_CW)).json().sections.identity, 'the sending partner still holds it')
      t.same(await escalationsOf(caseId, PL_SV), [], 'no alert: its deadline escalates if nothing is found')
      await refused(
        t,
        caseId,
        UA_SV,
        'close',
        ['actor.side', 'record.closure_report', 'record.closure_report.reason'],
        { reason: 'Settled.' },
      )
      await recordOf(t, caseId, PL_CW, 'closure_report')
      await take(t, caseId, PL_SV, 'close', 'closed', { reason: 'Granted residence; living with relatives.' })
      await expectAt(t, caseId, 'closed', POLAND, null)
    },
  )
}

// ─── Only a child ────────────────────────────────────────────────────────────────────────────

t.test("a child's acceptance tells the child protection authority of the receiving country", async (t) => {
  const { caseId } = await caseAt(t, 'accepted', true)
  await expectAt(t, caseId, 'accepted', POLAND, 'sending', [PL_CW, UA_CW])
  await toldButNotAParty(t, CHILD_PROTECTION_UA, caseId, {
    action: 'accept_referral',
    notification: 'child_arriving',
    organisation_kind: 'child_protection_authority',
    country: 'UA',
    step: 'accepted',
    notified_organisation_ids: [ORG.childProtectionUkraine],
    lead_organisation_id: POLAND,
    sending_organisation_id: POLAND,
    receiving_organisation_id: UKRAINE,
  })
  await notTold(t, CHILD_PROTECTION_PL, caseId, "Poland's authority is not told of a child leaving")
  const adult = await caseAt(t, 'accepted', false)
  await notTold(t, CHILD_PROTECTION_UA, adult.caseId, 'an adult is no concern of the child protection authority')

  // Told, the authority can be brought in: as an invited party it reads what consent covers, and no more.
  const invited = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/parties`,
    key: PL_CW,
    payload: { organisation_id: ORG.childProtectionUkraine },
  })
  t.equal(invited.statusCode, 201, 'IOM Poland invites the authority')
  const read = await getCase(caseId, CHILD_PROTECTION_UA)
  t.equal(read.statusCode, 200, 'which now reads the case')
  t.same(read.json().sections, {}, 'but no section: no consent names it')
  const consented = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/consents`,
    key: PL_CW,
    payload: {
      given_at: new Date(now.getTime() - 3_600_000).toISOString(),
      method: 'written',
      language: 'uk',
      interpreter: { used: false },
      guardian: GUARDIAN,
      child_views: 'Agrees that the children’s service knows who he is.',
      provisions: [
        { categories: ['identity'], recipients: [ORG.childProtectionUkraine], purposes: ['return_assistance'] },
      ],
      expires_at: null,
    },
  })
  t.equal(consented.statusCode, 201, 'the guardian consents to share his identity with the authority')
  const after = (await getCase(caseId, CHILD_PROTECTION_UA)).json()
  t.same(Object.keys(after.sections), ['identity'], 'the authority reads what the consent covers, and no more')
})

t.test(
  'a child not returned is handed back to child protection; the sending partner stays responsible until confirmed',
  async (t) => {
    const { caseId, packetId } = await caseAt(t, 'acknowledged', true)
    const declined = await answer(packetId, 'decline', {
      reason_code: 'family_unable_to_receive',
      reason_text: 'The aunt cannot take him in.',
    })
    t.equal(declined.statusCode, 200, 'IOM Ukraine declines')
    await expectAt(t, caseId, 'handback_to_child_protection', POLAND, 'sending')
    const due = Date.parse((await getCase(caseId)).json().step_due_at)
    t.equal(due - now.getTime(), 3 * DAY, 'the handover is due within 3 days (P3D)')
    await toldButNotAParty(t, CHILD_PROTECTION_PL, caseId, {
      action: 'decline_referral',
      notification: 'child_not_returned',
      organisation_kind: 'child_protection_authority',
      country: 'PL',
      step: 'handback_to_child_protection',
      lead_organisation_id: POLAND,
    })
    await notTold(t, CHILD_PROTECTION_UA, caseId, 'the child stays in Poland')

    const refusal = await refused(t, caseId, PL_CW, 'confirm_handback', ['record.child_protection_handover'])
    t.match(refusal.unmet?.[0]?.message, /handover of a child to the child protection authority is not recorded/)
    const unconfirmed = await request({
      method: 'POST',
      url: `/v1/cases/${caseId}/records`,
      key: PL_CW,
      payload: { kind: 'child_protection_handover', data: { authority_organisation_id: ORG.childProtectionPoland } },
    })
    t.equal(unconfirmed.statusCode, 422, 'a handover says when, and who confirmed it')
    await record(t, caseId, PL_CW, 'child_protection_handover', {
      authority_organisation_id: ORG.childProtectionPoland,
      handed_over_on: '2026-12-03',
      confirmed_by: 'authority',
      officer: 'Duty officer',
    })
    await expectAt(t, caseId, 'handback_to_child_protection', POLAND, 'sending')
    await take(t, caseId, PL_CW, 'confirm_handback', 'not_returned')
    await expectAt(t, caseId, 'not_returned', POLAND, null)
    const timeline = await request({ method: 'GET', url: `/v1/cases/${caseId}/timeline`, key: PL_CW })
    t.same(
      (timeline.json() as Schemas['Timeline']).items
        .slice(-2)
        .map((i) => [i.action, i.to_step, i.lead_organisation_id]),
      [
        ['decline_referral', 'handback_to_child_protection', POLAND],
        ['confirm_handback', 'not_returned', POLAND],
      ],
    )
  },
)

t.test('travel documents name the consulate that issued them', async (t) => {
  const { caseId } = await caseAt(t, 'accepted', false)
  const documents = await record(t, caseId, PL_CW, 'travel_documents', {
    ...recordData.travel_documents,
    consulate_organisation_id: ORG.embassyUkraine,
  })
  t.equal(documents.data.consulate_organisation_id, ORG.embassyUkraine)
  const embassies = await request({ method: 'GET', url: '/v1/organisations?kind=embassy', key: PL_CW })
  t.same(
    (embassies.json() as Schemas['OrganisationPage']).items.map((o) => [o.id, o.country]),
    [[ORG.embassyUkraine, 'UA']],
    'the directory lists the consulate, under the country it represents',
  )
  const wrong = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/records`,
    key: PL_CW,
    payload: { kind: 'travel_documents', data: { ...recordData.travel_documents, consulate_organisation_id: 'Kyiv' } },
  })
  t.equal(wrong.statusCode, 422, 'the consulate is named by its id in the directory')
})

t.test('an authority the directory does not hold: both sides are told by an escalation', async (t) => {
  const admin = demoKeys.demohubadmin as string
  const created = await request({
    method: 'POST',
    url: '/v1/organisations',
    key: admin,
    payload: { name: 'Anti-trafficking NGO, Vienna', country: 'AT', kind: 'ngo', can_send: true, can_receive: false },
  })
  t.equal(created.statusCode, 201)
  const organisationId = created.json().id as string
  const principal = await request({
    method: 'POST',
    url: `/v1/organisations/${organisationId}/principals`,
    key: admin,
    payload: { name: 'Supervisor, NGO Vienna', kind: 'staff', roles: ['caseworker', 'supervisor'] },
  })
  t.equal(principal.statusCode, 201)
  const issued = await request({
    method: 'POST',
    url: `/v1/principals/${principal.json().id}/api-keys`,
    key: admin,
    payload: { label: 'exits test' },
  })
  t.equal(issued.statusCode, 201)
  const vienna = issued.json().key as string
  const opened = await request({
    method: 'POST',
    url: '/v1/cases',
    key: vienna,
    payload: { profile: { age_band: '25_34', country_of_return: 'MA', vulnerabilities: ['victim_of_trafficking'] } },
  })
  t.equal(opened.statusCode, 201)
  const caseId = opened.json().id as string
  await record(t, caseId, vienna, 'safety_plan', safetyPlan)
  await take(t, caseId, vienna, 'report_retrafficking', 'retrafficking_suspected', { reason: 'Threats.' })
  t.match(
    await escalationsOf(caseId, vienna),
    [
      {
        kind: 'notification_undelivered',
        step: 'retrafficking_suspected',
        responsible_organisation_id: organisationId,
      },
    ],
    'no referral mechanism in Austria in the directory: the sending partner must tell it itself',
  )
  const raised = ofType(
    await feedOf(vienna, caseId, (events) => ofType(events, 'escalation.raised').length > 0),
    'escalation.raised',
  )
  t.match(raised, [
    {
      data: {
        escalation_kind: 'notification_undelivered',
        notification: 'retrafficking_suspected',
        organisation_kind: 'national_referral_mechanism',
        country: 'AT',
      },
    },
  ])
})

t.test('an exit step that nobody moves on escalates at its deadline, to the side that must act', async (t) => {
  const { caseId } = await caseAt(t, 'ready_to_travel', false)
  await take(t, caseId, PL_CW, 'report_no_show', 'no_show', { reason: 'Not at the airport.' })
  const due = Date.parse((await getCase(caseId)).json().step_due_at)
  const runToCompletion = await deadlineRunner(t, app, clock)
  now = new Date(due + DAY)
  t.ok(((await runToCompletion()) as number) >= 1, 'the deadline job raises the escalation')
  t.match(
    (await escalationsOf(caseId, UA_SV)).filter((e) => e.step === 'no_show'),
    [{ kind: 'step_deadline', step: 'no_show', responsible_organisation_id: POLAND }],
    'naming IOM Poland, which had to act; the receiving side sees it too',
  )
})
