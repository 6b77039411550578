import { readFileSync } from 'node:fs'
import t from 'tap'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { demoKeys, startTestApp, type TestApp } from './fixtures/app.js'
import {
  acknowledgement,
  answerPacket,
  assessmentData,
  consentForUkraine,
  newCase,
  recipient,
  record,
  sender,
  transition,
} from './fixtures/referral.js'

// The procedure governs the exchange, seen from outside: a packet moves only where the case's
// procedure opens it, guards read what records say, and a case has one status.

const UKRAINE = demoOrganisationIds.iomUkraine

const childCase = {
  profile: {
    age_band: '14_17',
    sex: 'female',
    nationality: 'UA',
    country_of_return: 'UA',
    vulnerabilities: ['victim_of_trafficking', 'unaccompanied_or_separated_child'],
  },
  sections: { identity: { given_name: 'Daryna', family_name: 'Melnyk' }, family: { notes: 'Mother in Lviv.' } },
}

function childConsent() {
  return {
    ...consentForUkraine(),
    guardian: { name: 'Court-appointed guardian', relationship: 'legal_guardian' },
    child_views: 'Wants to go home to her mother.',
    provisions: [
      {
        categories: ['identity', 'health', 'family'],
        recipients: [UKRAINE],
        purposes: ['return_assistance'],
      },
    ],
  }
}

async function open(app: TestApp, body: object, consent: object): Promise<string> {
  const opened = await app.request({ method: 'POST', url: '/v1/cases', key: sender, payload: body })
  const caseId = opened.json().id as string
  await app.request({ method: 'POST', url: `/v1/cases/${caseId}/consents`, key: sender, payload: consent })
  return caseId
}

function sendEnquiry(app: TestApp, caseId: string) {
  return app.request({
    method: 'POST',
    url: `/v1/cases/${caseId}/packets`,
    key: sender,
    payload: { recipient_organisation_id: UKRAINE, purpose: 'return_assistance' },
  })
}

const codes = (response: { json(): { unmet?: { code: string }[] } }) => (response.json().unmet ?? []).map((u) => u.code)

t.test(
  "a child's packet before a positive BID, a guardian and a return decision is refused, naming each",
  async (t) => {
    const app = await startTestApp(t)
    const caseId = await open(app, childCase, childConsent())

    const early = await sendEnquiry(app, caseId)
    t.equal(early.statusCode, 409, 'no packet leaves at identified')
    t.equal(early.json().type, 'urn:trm:problem:action-not-open')
    t.same(early.json().open_at, ['return_decided'], 'it names the step where sending is open')
    t.same(early.json().path, ['decide_return'], 'and the way there')
    t.same(
      codes(early),
      ['step', 'record.return_decision', 'assessment.best_interests_determination', 'record.guardian_appointment'],
      'and every safeguard still missing on that way',
    )
    const inbox = await app.request({ method: 'GET', url: '/v1/packets?direction=inbound', key: recipient })
    t.same(inbox.json().items, [], 'IOM Ukraine received nothing')

    await record(app, caseId, sender, 'return_decision')
    await record(app, caseId, sender, 'guardian_appointment')
    const negative = await record(app, caseId, sender, 'assessment', 'best_interests_determination', {
      outcome: 'return_not_in_best_interests',
    })
    t.equal(negative.statusCode, 201, 'a BID against return is recorded')
    const refused = await transition(app, caseId, sender, 'decide_return')
    t.equal(refused.statusCode, 409, 'and the return cannot be decided on it')
    const [unmet] = refused.json().unmet
    t.match(unmet, {
      code: 'assessment.best_interests_determination.outcome',
      record_id: negative.json().id,
      field: 'outcome',
      expected: 'return_in_best_interests',
      actual: 'return_not_in_best_interests',
    })

    await record(app, caseId, sender, 'assessment', 'best_interests_determination')
    t.equal((await transition(app, caseId, sender, 'decide_return')).statusCode, 200, 'a positive BID opens the way')
    const sent = await sendEnquiry(app, caseId)
    t.equal(sent.statusCode, 201, 'the enquiry leaves at return_decided')
    t.equal(sent.json().kind, 'enquiry')
    t.notOk('identity' in sent.json().content.sections, 'without the child’s identity')
    t.notOk('family' in sent.json().content.sections, 'nor family data before acceptance')
    const read = await app.request({ method: 'GET', url: `/v1/cases/${caseId}`, key: sender })
    t.equal(read.json().step, 'referral_sent', 'sending the enquiry took the case to referral_sent')
    t.notOk('state' in read.json(), 'the step is the only status')
  },
)

t.test('the accepting side needs the family assessment and a BID made after it', async (t) => {
  const app = await startTestApp(t)
  const caseId = await open(app, childCase, childConsent())
  await record(app, caseId, sender, 'return_decision')
  await record(app, caseId, sender, 'guardian_appointment')
  await record(app, caseId, sender, 'assessment', 'best_interests_determination')
  await transition(app, caseId, sender, 'decide_return')
  const packetId = (await sendEnquiry(app, caseId)).json().id as string
  t.equal((await answerPacket(app, packetId, recipient, 'acknowledge', acknowledgement)).statusCode, 200)
  await record(app, caseId, sender, 'assessment', 'risk_and_needs')
  await record(app, caseId, recipient, 'assessment', 'risk_and_needs')
  await record(app, caseId, recipient, 'assessment', 'family')

  const stale = await answerPacket(app, packetId, recipient, 'accept')
  t.equal(stale.statusCode, 409, 'the BID made before the family assessment does not validate the return')
  t.same(codes(stale), ['assessment.best_interests_determination.revalidate'])

  await record(app, caseId, sender, 'assessment', 'best_interests_determination')
  const accepted = await answerPacket(app, packetId, recipient, 'accept')
  t.equal(accepted.statusCode, 200, 'a BID after it does')
  t.equal(accepted.json().status, 'accepted')
  const full = (await app.request({ method: 'GET', url: '/v1/packets?direction=inbound', key: recipient }))
    .json()
    .items.find((p: { kind: string }) => p.kind === 'referral')
  const fullRead = await app.request({ method: 'GET', url: `/v1/packets/${full.id}`, key: recipient })
  t.same(fullRead.json().content.sections.identity, childCase.sections.identity, 'the full referral carries identity')
  const read = await app.request({ method: 'GET', url: `/v1/cases/${caseId}`, key: recipient })
  t.equal(read.json().step, 'accepted', 'one status on both sides')
  t.equal(read.json().receiving_organisation_id, UKRAINE)
})

t.test("an adult's packet before the return decision is refused", async (t) => {
  const app = await startTestApp(t)
  const caseId = await open(app, newCase, consentForUkraine())
  const early = await sendEnquiry(app, caseId)
  t.equal(early.statusCode, 409)
  t.same(codes(early), ['step', 'record.return_decision'])
  const actions = await app.request({ method: 'GET', url: `/v1/cases/${caseId}/next-actions`, key: sender })
  const later = actions.json().later.find((a: { action: string }) => a.action === 'send_referral')
  t.match(later, { operation: 'sendPacket', open_at: ['return_decided'], path: ['decide_return'] })
})

t.test('departure needs fitness to travel and no unmitigated high risk', async (t) => {
  const app = await startTestApp(t)
  const caseId = await open(app, newCase, consentForUkraine())
  await record(app, caseId, sender, 'return_decision')
  await transition(app, caseId, sender, 'decide_return')
  const packetId = (await sendEnquiry(app, caseId)).json().id as string
  await answerPacket(app, packetId, recipient, 'acknowledge', acknowledgement)
  await record(app, caseId, sender, 'assessment', 'risk_and_needs', { level: 'high', mitigations: [] })
  await record(app, caseId, recipient, 'assessment', 'risk_and_needs', { level: 'high', mitigations: [] })
  t.equal((await answerPacket(app, packetId, recipient, 'accept')).statusCode, 200)
  for (const kind of ['travel_documents', 'escort', 'reception', 'reintegration_plan_draft'] as const) {
    await record(app, caseId, sender, kind)
  }
  const unfit = await record(app, caseId, sender, 'assessment', 'fit_to_travel', { fit: false })
  const notReady = await transition(app, caseId, sender, 'confirm_ready')
  t.equal(notReady.statusCode, 409, '"not fit to travel" stops the journey')
  t.match(notReady.json().unmet, [
    { code: 'assessment.fit_to_travel.fit', record_id: unfit.json().id, field: 'fit', expected: true, actual: false },
  ])
  await record(app, caseId, sender, 'assessment', 'fit_to_travel', assessmentData.fit_to_travel)
  t.equal((await transition(app, caseId, sender, 'confirm_ready')).statusCode, 200)
  const risky = await transition(app, caseId, sender, 'confirm_departure')
  t.equal(risky.statusCode, 409, 'a high risk without mitigation stops the departure')
  t.match(risky.json().unmet, [{ code: 'assessment.risk_and_needs.level', field: 'level', actual: 'high' }])
  const seenByUkraine = await app.request({ method: 'GET', url: `/v1/cases/${caseId}/next-actions`, key: recipient })
  const departure = seenByUkraine.json().refused.find((a: { action: string }) => a.action === 'confirm_departure')
  const level = departure.unmet.find((u: { code: string }) => u.code === 'assessment.risk_and_needs.level')
  t.equal(level.category, 'psychosocial', 'IOM Ukraine learns which kind of record stops the departure')
  t.notOk('actual' in level || 'record_id' in level, 'but not what a record it may not read says')
  await record(app, caseId, sender, 'assessment', 'risk_and_needs', {
    level: 'high',
    mitigations: ['Escort to the shelter', 'Address kept confidential'],
  })
  t.equal((await transition(app, caseId, sender, 'confirm_departure')).statusCode, 200, 'mitigated, it departs')
})

t.test('refusals teach: unknown actions, packet transitions and bad record data', async (t) => {
  const app = await startTestApp(t)
  const caseId = await open(app, newCase, consentForUkraine())
  const unknown = await transition(app, caseId, sender, 'fly_home')
  t.equal(unknown.statusCode, 422, 'a mistyped action is a validation error')
  t.ok(unknown.json().valid_actions.includes('decide_return'), 'naming the valid actions')
  await record(app, caseId, sender, 'return_decision')
  await transition(app, caseId, sender, 'decide_return')
  const viaTransition = await transition(app, caseId, sender, 'send_referral')
  t.equal(viaTransition.statusCode, 409, 'an exchange is not taken through /transitions')
  t.equal(viaTransition.json().type, 'urn:trm:problem:packet-operation')
  const bad = await record(app, caseId, sender, 'assessment', 'fit_to_travel', { fit: 'yes', colour: 'blue' })
  t.equal(bad.statusCode, 422)
  t.same(
    bad
      .json()
      .errors.map((e: { pointer: string }) => e.pointer)
      .sort(),
    ['#/data', '#/data/fit'],
    'each bad field has a pointer',
  )
})

t.test('reading is not acting: a DPO read leaves the packet as it was', async (t) => {
  const app = await startTestApp(t)
  const caseId = await open(app, newCase, consentForUkraine())
  await record(app, caseId, sender, 'return_decision')
  await transition(app, caseId, sender, 'decide_return')
  const packetId = (await sendEnquiry(app, caseId)).json().id as string
  const dpo = await app.request({ method: 'GET', url: `/v1/packets/${packetId}`, key: demoKeys.demoiomuadpo as string })
  t.equal(dpo.statusCode, 200)
  t.equal(dpo.json().status, 'sent', 'the DPO’s read is not a receipt')
  const caseworker = await app.request({ method: 'GET', url: `/v1/packets/${packetId}`, key: recipient })
  t.equal(caseworker.json().status, 'received', 'the caseworker’s is')
  t.not(caseworker.headers.etag, dpo.headers.etag)
})

t.test('the contract shows each current procedure as a diagram with its packet operations', async (t) => {
  const app = await startTestApp(t)
  const contract = readFileSync(new URL('../openapi/openapi.yaml', import.meta.url), 'utf8')
  for (const id of ['adult-return', 'child-return']) {
    const sop = await app.request({ method: 'GET', url: `/v1/sops/${id}`, key: sender })
    const diagram: string = sop.json().diagram
    t.match(diagram, /return_decided --> referral_sent : send_referral · sendPacket/)
    t.match(diagram, /referral_sent --> acknowledged : acknowledge_referral · acknowledgePacket/)
    t.match(diagram, /accepted --> accepted : send_update · sendPacket/, 'an update keeps the step')
    const indented = diagram
      .trimEnd()
      .split('\n')
      .map((line) => `      ${line}`)
      .join('\n')
    t.ok(contract.includes(indented), `openapi.yaml holds the current diagram of ${id}`)
  }
})
