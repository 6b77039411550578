import { readFileSync } from 'node:fs'
import type { LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import type { components } from '../openapi/dist/types.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { addDuration } from '../src/sops/deadline.js'
import type { SopDefinition } from '../src/sops/definition.js'
import { loadSops } from '../src/sops/registry.js'
import { demoKeys, startTestApp, type TestApp, testDatabaseUrl } from './fixtures/app.js'
import { assessmentData, recordData } from './fixtures/referral.js'

// Cases walked through their standard operating procedure over HTTP: an adult's return and an
// unaccompanied child's return from opening to closure, the exits (withdrawal, hold, cancellation),
// a raced transition, and the procedures as the API publishes them. Sending, acknowledging and
// accepting the referral are transitions of the procedure, taken by the packet operations.

type Schemas = components['schemas']
type Case = Schemas['Case']
type CaseSummary = Schemas['CaseSummary']
type CaseRecord = Schemas['CaseRecord']
type Consent = Schemas['Consent']
type NextActions = Schemas['NextActions']
type Packet = Schemas['Packet']
type Unmet = Schemas['Unmet']
type Problem = Schemas['Problem'] & { unmet?: Unmet[]; open_at?: string[]; path?: string[] }
type Timeline = Schemas['Timeline']

const POLAND = demoOrganisationIds.iomPoland
const UKRAINE = demoOrganisationIds.iomUkraine
const KYIV_SHELTER = demoOrganisationIds.kyivShelter

const PL_CW = demoKeys.demoiomplcw1 as string // IOM Poland, caseworker
const PL_SV = demoKeys.demoiomplsv1 as string // IOM Poland, supervisor
const UA_CW = demoKeys.demoiomuacw1 as string // IOM Ukraine, caseworker
const UA_SV = demoKeys.demoiomuasv1 as string // IOM Ukraine, supervisor

const principalOf: Record<string, string> = {
  [PL_CW]: '00000000-0000-4000-8001-000000000101',
  [PL_SV]: '00000000-0000-4000-8001-000000000102',
  [UA_CW]: '00000000-0000-4000-8001-000000000201',
  [UA_SV]: '00000000-0000-4000-8001-000000000202',
}
const organisationOf: Record<string, string> = {
  [PL_CW]: POLAND,
  [PL_SV]: POLAND,
  [UA_CW]: UKRAINE,
  [UA_SV]: UKRAINE,
}
const sideOfKey = (key: string) => (organisationOf[key] === POLAND ? 'sending' : 'receiving')
const nameOf: Record<string, string> = {
  [PL_CW]: 'IOM Poland caseworker',
  [PL_SV]: 'IOM Poland supervisor',
  [UA_CW]: 'IOM Ukraine caseworker',
  [UA_SV]: 'IOM Ukraine supervisor',
}

function definitionFile(name: string): SopDefinition {
  return JSON.parse(readFileSync(new URL(`../src/sops/definitions/${name}`, import.meta.url), 'utf8')) as SopDefinition
}
const adultReturn = definitionFile('adult-return.v2.json')
const childReturn = definitionFile('child-return.v2.json')
/** A child returning from Poland to Ukraine follows the national variant for that corridor. */
const childReturnPlUa = loadSops().find('child-return-pl-ua', 1) as SopDefinition

/** The operation that takes each action: a packet operation for an exchange, else POST /transitions. */
const operationOfAction: Record<string, string> = {
  send_referral: 'sendPacket',
  acknowledge_referral: 'acknowledgePacket',
  request_information: 'requestPacketInformation',
  answer_information: 'sendPacket',
  accept_referral: 'acceptPacket',
  decline_referral: 'declinePacket',
  send_update: 'sendPacket',
}
const operationOf = (action: string) => operationOfAction[action] ?? 'performTransition'
const openAtOf = (definition: SopDefinition, action: string) => [
  ...new Set(definition.transitions.filter((tr) => tr.action === action).flatMap((tr) => tr.from)),
]

/** Given names that must never reach anyone once consent is gone. */
const ADULT_NAME = 'Oksana-Procedure-Scenario'
const CHILD_NAME = 'Mykola-Procedure-Scenario'

const adultCase = {
  profile: {
    age_band: '25_34',
    sex: 'female',
    nationality: 'UA',
    languages: ['uk'],
    country_of_return: 'UA',
    vulnerabilities: ['victim_of_trafficking'],
  },
  sections: {
    identity: { given_name: ADULT_NAME, family_name: 'Hnatiuk', date_of_birth: '1996-05-14' },
    health: { conditions: ['post-traumatic stress'], notes: 'Needs a female doctor.' },
  },
}

const childCase = {
  profile: {
    age_band: '14_17',
    sex: 'male',
    nationality: 'UA',
    languages: ['uk'],
    country_of_return: 'UA',
    vulnerabilities: ['victim_of_trafficking', 'unaccompanied_or_separated_child'],
  },
  sections: {
    identity: { given_name: CHILD_NAME, family_name: 'Tkachenko', date_of_birth: '2010-09-01' },
    health: { conditions: ['malnutrition'] },
  },
}

const GUARDIAN = { name: 'Halyna Melnyk', relationship: 'legal_guardian' } as const

const acknowledgement = {
  focal_point: { name: 'Iryna Shevchenko', role: 'Counter-trafficking officer', email: 'focal@iom-ua.example' },
  alternate_contact: { name: 'Petro Bondarenko', role: 'Programme assistant', email: 'alternate@iom-ua.example' },
}

/** A date (YYYY-MM-DD) some days from now. */
function dateInDays(days: number): string {
  return new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10)
}

const codesOf = (unmet: readonly { code: string }[] | undefined) => (unmet ?? []).map((u) => u.code).sort()

/** The HTTP steps of a procedure scenario, each checking its status against what the contract documents. */
function procedureClient(t: Test, app: TestApp) {
  const { request } = app

  async function openCase(payload: object, key = PL_CW): Promise<Case> {
    const response = await request({ method: 'POST', url: '/v1/cases', key, payload })
    t.equal(response.statusCode, 201, 'the case is opened')
    return response.json() as Case
  }

  async function getCase(caseId: string, key = PL_CW): Promise<{ body: Case; etag: string }> {
    const response = await request({ method: 'GET', url: `/v1/cases/${caseId}`, key })
    t.equal(response.statusCode, 200, `${nameOf[key]} reads the case`)
    return { body: response.json() as Case, etag: String(response.headers.etag) }
  }

  async function nextActions(caseId: string, key: string): Promise<NextActions> {
    const response = await request({ method: 'GET', url: `/v1/cases/${caseId}/next-actions`, key })
    t.equal(response.statusCode, 200, `${nameOf[key]} reads the next actions`)
    return response.json() as NextActions
  }

  /** POST /transitions with If-Match from the case's current ETag, read by the same caller. */
  async function transition(
    caseId: string,
    key: string,
    action: string,
    extras: { reason?: string; review_date?: string; note?: string } = {},
  ): Promise<LightMyRequestResponse> {
    const { etag } = await getCase(caseId, key)
    return request({
      method: 'POST',
      url: `/v1/cases/${caseId}/transitions`,
      key,
      headers: { 'if-match': etag },
      payload: { action, ...extras },
    })
  }

  /** The action is taken: 200, the case at its new step, with a new ETag. */
  async function take(
    caseId: string,
    key: string,
    action: string,
    to: string,
    extras: { reason?: string; review_date?: string; note?: string } = {},
  ): Promise<CaseSummary> {
    const response = await transition(caseId, key, action, extras)
    t.equal(response.statusCode, 200, `${nameOf[key]} takes ${action}`)
    const body = response.json() as CaseSummary
    t.equal(body.step, to, `${action} leads to ${to}`)
    t.equal(response.headers.etag, `"${body.version}"`, `${action} answers with the new ETag`)
    return body
  }

  /** A refusal: 409 with this problem type and exactly these unmet codes (in any order). */
  function expectRefusal(response: LightMyRequestResponse, what: string, type: string, codes: string[]): Problem {
    t.equal(response.statusCode, 409, `${what} is refused now`)
    const problem = response.json() as Problem
    t.equal(problem.type, `urn:trm:problem:${type}`, `${what}: ${type}`)
    t.same(codesOf(problem.unmet), [...codes].sort(), `${what}: unmet ${codes.join(', ')}`)
    for (const unmet of problem.unmet ?? []) t.ok(unmet.message, `${unmet.code} explains itself`)
    return problem
  }

  /** The action is refused with 409 and exactly these unmet codes. */
  async function refused(
    caseId: string,
    key: string,
    action: string,
    codes: string[],
    extras: { reason?: string; review_date?: string; note?: string } = {},
  ): Promise<Problem> {
    const response = await transition(caseId, key, action, extras)
    return expectRefusal(response, `${action} by the ${nameOf[key]}`, 'preconditions-unmet', codes)
  }

  /** An exchange asked for through POST /transitions: refused, naming the packet operation that takes it. */
  async function viaPacketOperation(caseId: string, key: string, action: string): Promise<void> {
    const response = await transition(caseId, key, action)
    const problem = expectRefusal(response, `${action} through /transitions`, 'packet-operation', ['operation'])
    t.match(problem.unmet?.[0]?.message, operationOf(action), `${action}: names ${operationOf(action)}`)
  }

  /** The action is not open at the case's step: 409 with where it opens and the way there. */
  function expectNotOpen(response: LightMyRequestResponse, what: string, openAt: string[], path: string[]): Problem {
    t.equal(response.statusCode, 409, `${what} is not open now`)
    const problem = response.json() as Problem
    t.equal(problem.type, 'urn:trm:problem:action-not-open', `${what}: action-not-open`)
    t.same(problem.open_at, openAt, `${what} opens at ${openAt.join(', ')}`)
    t.same(problem.path, path, `${what}: the way there is ${path.join(', ') || 'none'}`)
    t.equal(problem.unmet?.[0]?.code, 'step', `${what}: the step comes first among the reasons`)
    return problem
  }

  /** The action is refused with 422 for a missing input. */
  async function inputMissing(
    caseId: string,
    key: string,
    action: string,
    extras: { reason?: string; review_date?: string; note?: string } = {},
  ): Promise<void> {
    const response = await transition(caseId, key, action, extras)
    t.equal(response.statusCode, 422, `${action} without its inputs is refused`)
    t.equal((response.json() as Problem).type, 'urn:trm:problem:input-required', `${action}: input required`)
  }

  /** Records a record, with the data of the fixtures unless told otherwise. */
  async function record(
    caseId: string,
    key: string,
    kind: keyof typeof recordData | 'assessment',
    assessment?: keyof typeof assessmentData,
    data?: Record<string, unknown>,
  ): Promise<CaseRecord> {
    const payloadData = data ?? (assessment ? assessmentData[assessment] : recordData[kind as keyof typeof recordData])
    const response = await request({
      method: 'POST',
      url: `/v1/cases/${caseId}/records`,
      key,
      payload: { kind, ...(assessment ? { assessment } : {}), data: payloadData },
    })
    t.equal(response.statusCode, 201, `${nameOf[key]} records ${assessment ?? kind}`)
    const body = response.json() as CaseRecord
    t.equal(body.side, sideOfKey(key), `${assessment ?? kind} is recorded for the ${sideOfKey(key)} side`)
    t.equal(body.recorded_by_organisation_id, organisationOf[key])
    return body
  }

  /** Record data that does not match its kind's schema: 422, pointing into `data`. */
  async function recordRefused(
    caseId: string,
    kind: string,
    assessment: string | undefined,
    data: object,
    pointer: string,
  ): Promise<void> {
    const response = await request({
      method: 'POST',
      url: `/v1/cases/${caseId}/records`,
      key: PL_CW,
      payload: { kind, ...(assessment ? { assessment } : {}), data },
    })
    t.equal(response.statusCode, 422, `${assessment ?? kind} with ${JSON.stringify(data)} is refused`)
    const problem = response.json() as Problem & { errors?: { pointer: string }[] }
    t.ok(
      problem.errors?.some((error) => error.pointer === pointer),
      `${assessment ?? kind}: the error points at ${pointer}`,
    )
  }

  async function consent(
    caseId: string,
    provisions: { categories: string[]; recipients: string[]; purposes: string[] }[],
    guardian: typeof GUARDIAN | null = null,
  ): Promise<LightMyRequestResponse> {
    return request({
      method: 'POST',
      url: `/v1/cases/${caseId}/consents`,
      key: PL_CW,
      payload: {
        given_at: new Date(Date.now() - 3_600_000).toISOString(),
        method: 'written',
        language: 'uk',
        interpreter: { used: false },
        guardian,
        ...(guardian ? { child_views: 'Wants to live with his aunt in Lviv.' } : {}),
        provisions,
        expires_at: null,
      },
    })
  }

  /** POST /cases/{id}/packets by IOM Poland's caseworker. */
  function postPacket(caseId: string, recipient = UKRAINE): Promise<LightMyRequestResponse> {
    return request({
      method: 'POST',
      url: `/v1/cases/${caseId}/packets`,
      key: PL_CW,
      payload: { recipient_organisation_id: recipient, purpose: 'return_assistance' },
    })
  }

  /** Sends a packet, which takes the procedure's send transition: the case is then in `step`. */
  async function sendPacket(caseId: string, kind: string, step: string): Promise<Packet> {
    const response = await postPacket(caseId)
    t.equal(response.statusCode, 201, `the ${kind} is sent`)
    const packet = response.json() as Packet
    t.equal(packet.kind, kind, `it is a packet of kind ${kind}`)
    t.equal((await getCase(caseId)).body.step, step, `sending it took the case to ${step}`)
    return packet
  }

  /** An answer to a packet by IOM Ukraine's caseworker, with the packet's current ETag. */
  async function answer(packetId: string, action: string, payload: object): Promise<LightMyRequestResponse> {
    const read = await request({ method: 'GET', url: `/v1/packets/${packetId}`, key: UA_CW })
    t.equal(read.statusCode, 200, 'IOM Ukraine reads the packet')
    return request({
      method: 'POST',
      url: `/v1/packets/${packetId}/${action}`,
      key: UA_CW,
      headers: { 'if-match': String(read.headers.etag) },
      payload,
    })
  }

  /** IOM Ukraine acknowledges the enquiry: from then on it is a party to the case. */
  async function acknowledgePacket(packetId: string): Promise<void> {
    const response = await answer(packetId, 'acknowledge', acknowledgement)
    t.equal(response.statusCode, 200, 'IOM Ukraine acknowledges the enquiry')
    t.equal((response.json() as Packet).status, 'acknowledged')
  }

  /** IOM Ukraine accepts the enquiry; the full referral follows. Answers the full referral. */
  async function acceptPacket(caseId: string, packetId: string): Promise<Packet> {
    const response = await answer(packetId, 'accept', { note: 'We can receive the person.' })
    t.equal(response.statusCode, 200, 'IOM Ukraine accepts the enquiry')
    t.equal((response.json() as Packet).status, 'accepted')
    const inbox = await request({ method: 'GET', url: '/v1/packets?direction=inbound', key: UA_CW })
    const full = (inbox.json() as Schemas['PacketPage']).items.find(
      (packet) => packet.case_id === caseId && packet.kind === 'referral',
    )
    t.ok(full, 'the full referral followed the acceptance')
    t.equal(full?.sender_organisation_id, POLAND, 'from IOM Poland')
    return full as unknown as Packet
  }

  /**
   * The case is in `step` under `definition`, led by `lead`, as every party among `readers` sees it;
   * its step is due after the step's deadline from now (or never, on a final step).
   */
  async function expectStep(
    caseId: string,
    definition: SopDefinition,
    step: string,
    lead: string,
    readers: string[] = [PL_CW],
  ): Promise<void> {
    for (const key of readers) {
      const { body } = await getCase(caseId, key)
      t.same(body.sop, { id: definition.id, version: definition.version }, `${step}: the case follows ${definition.id}`)
      t.equal(body.step, step, `${nameOf[key]} sees the step ${step}`)
      t.equal(body.lead_organisation_id, lead, `${step}: ${lead === POLAND ? 'IOM Poland' : 'IOM Ukraine'} leads`)
      const deadline = definition.steps[step]?.deadline
      if (deadline) {
        t.ok(body.step_due_at, `${step} has a due date`)
        const due = Date.parse(body.step_due_at ?? '')
        // Both sides keep summer time from the same moment (the last Sunday of March, 01:00 UTC).
        const expected = addDuration(new Date(), deadline, 'Europe/Warsaw').getTime()
        t.ok(Math.abs(due - expected) < 5 * 60_000, `${step} is due ${deadline} after it was entered`)
        t.equal(body.overdue, false, `${step} is not overdue`)
      } else {
        t.equal(body.step_due_at, null, `the final step ${step} has no due date`)
        t.equal(body.overdue, false)
      }
    }
  }

  /**
   * next-actions lists `action` as allowed for `allowedKey`, with the operation that takes it, and
   * refused for each other caller with exactly its codes.
   */
  async function expectOffer(
    caseId: string,
    action: string,
    allowedKey: string,
    refusedFor: [key: string, codes: string[]][],
  ): Promise<void> {
    const mine = await nextActions(caseId, allowedKey)
    const option = mine.allowed.find((o) => o.action === action)
    t.ok(option, `${action} is allowed for the ${nameOf[allowedKey]}`)
    t.equal(option?.operation, operationOf(action), `${action} is taken by ${operationOf(action)}`)
    t.notOk(
      mine.refused.some((o) => o.action === action),
      `${action} is not also refused for the ${nameOf[allowedKey]}`,
    )
    for (const [key, codes] of refusedFor) {
      const theirs = await nextActions(caseId, key)
      t.notOk(
        theirs.allowed.some((o) => o.action === action),
        `${action} is not allowed for the ${nameOf[key]}`,
      )
      const refusal = theirs.refused.find((o) => o.action === action)
      t.ok(refusal, `${action} is refused for the ${nameOf[key]}`)
      t.same(codesOf(refusal?.unmet), [...codes].sort(), `${action} for the ${nameOf[key]}: ${codes.join(', ')}`)
    }
  }

  /** Not a party: IOM Ukraine learns nothing of the case, not even its procedure. */
  async function notAParty(caseId: string, key: string, when: string): Promise<void> {
    const read = await request({ method: 'GET', url: `/v1/cases/${caseId}`, key })
    t.equal(read.statusCode, 404, `${when}: the ${nameOf[key]} is not a party and cannot read the case`)
    const actions = await request({ method: 'GET', url: `/v1/cases/${caseId}/next-actions`, key })
    t.equal(actions.statusCode, 404, `${when}: nor its next actions`)
  }

  async function timeline(caseId: string, key = PL_CW): Promise<Timeline['items']> {
    const response = await request({ method: 'GET', url: `/v1/cases/${caseId}/timeline`, key })
    t.equal(response.statusCode, 200, 'the timeline is read')
    return (response.json() as Timeline).items
  }

  async function consents(caseId: string, key = PL_CW): Promise<Consent[]> {
    const response = await request({ method: 'GET', url: `/v1/cases/${caseId}/consents`, key })
    t.equal(response.statusCode, 200, 'the consents are listed')
    return (response.json() as Schemas['ConsentList']).items
  }

  /**
   * An adult case walked without ceremony to `target` (a step of the main path), with a consent for
   * identity and one for health to IOM Ukraine; returns the case, its enquiry and its full referral.
   */
  async function adultAt(
    target: string,
  ): Promise<{ caseId: string; packetId: string | null; referralId: string | null }> {
    const order = [
      'identified',
      'return_decided',
      'referral_sent',
      'acknowledged',
      'accepted',
      'ready_to_travel',
      'departed',
      'arrived',
      'reintegration',
    ]
    const until = order.indexOf(target)
    if (until < 0) throw new Error(`not a step of the main path: ${target}`)
    const caseId = (await openCase(adultCase)).id
    let packetId: string | null = null
    let referralId: string | null = null
    const reach = async (index: number, walk: () => Promise<void>) => {
      if (until >= index) await walk()
    }
    await reach(1, async () => {
      await record(caseId, PL_CW, 'return_decision')
      await take(caseId, PL_CW, 'decide_return', 'return_decided')
    })
    await reach(2, async () => {
      const purposes = ['return_assistance']
      t.equal((await consent(caseId, [{ categories: ['identity'], recipients: [UKRAINE], purposes }])).statusCode, 201)
      t.equal((await consent(caseId, [{ categories: ['health'], recipients: [UKRAINE], purposes }])).statusCode, 201)
      packetId = (await sendPacket(caseId, 'enquiry', 'referral_sent')).id
    })
    await reach(3, async () => {
      await acknowledgePacket(packetId as unknown as string)
    })
    await reach(4, async () => {
      await record(caseId, PL_CW, 'assessment', 'risk_and_needs')
      await record(caseId, UA_CW, 'assessment', 'risk_and_needs')
      referralId = (await acceptPacket(caseId, packetId as unknown as string)).id
    })
    await reach(5, async () => {
      await record(caseId, PL_CW, 'travel_documents')
      await record(caseId, PL_CW, 'assessment', 'fit_to_travel')
      await record(caseId, PL_CW, 'escort')
      await record(caseId, UA_CW, 'reception')
      await record(caseId, UA_CW, 'reintegration_plan_draft')
      await take(caseId, PL_CW, 'confirm_ready', 'ready_to_travel')
    })
    await reach(6, async () => {
      await take(caseId, PL_CW, 'confirm_departure', 'departed')
    })
    await reach(7, async () => {
      await take(caseId, UA_CW, 'confirm_arrival', 'arrived')
    })
    await reach(8, async () => {
      await record(caseId, UA_CW, 'reintegration_plan_final')
      await take(caseId, UA_CW, 'finalise_plan', 'reintegration')
    })
    return { caseId, packetId, referralId }
  }

  return {
    request,
    openCase,
    getCase,
    nextActions,
    transition,
    take,
    expectRefusal,
    refused,
    viaPacketOperation,
    expectNotOpen,
    inputMissing,
    record,
    recordRefused,
    consent,
    postPacket,
    sendPacket,
    answer,
    acknowledgePacket,
    acceptPacket,
    expectStep,
    expectOffer,
    notAParty,
    timeline,
    consents,
    adultAt,
  }
}

// ---------------------------------------------------------------------------------------------
// 1. An adult's return, end to end

t.test("an adult's return, from identification to closure", async (t) => {
  const app = await startTestApp(t, { rateLimitPerMinute: 100_000 })
  const p = procedureClient(t, app)
  const sop = adultReturn
  /** Each transition taken, in order: its action, by whom. */
  const taken: { action: string; from: string; to: string; key: string }[] = []
  const take = async (caseId: string, key: string, action: string, from: string, to: string, extras = {}) => {
    const body = await p.take(caseId, key, action, to, extras)
    taken.push({ action, from, to, key })
    return body
  }

  // Opening: IOM Poland identifies the person; the case opens on adult-return v2.
  const opened = await p.openCase(adultCase)
  const caseId = opened.id
  t.same(opened.sop, { id: 'adult-return', version: 2 }, 'an adult case opens on adult-return v2')
  t.equal(opened.step, 'identified', 'in its initial step')
  t.equal(opened.lead_organisation_id, POLAND)

  // identified → return_decided (sending side)
  await p.expectStep(caseId, sop, 'identified', POLAND)
  await p.notAParty(caseId, UA_CW, 'identified')
  await p.refused(caseId, PL_CW, 'decide_return', ['record.return_decision'])
  p.expectNotOpen(
    await p.postPacket(caseId),
    'a packet before the return is decided',
    ['return_decided'],
    ['decide_return'],
  )
  await p.recordRefused(caseId, 'return_decision', undefined, { voluntary: false, informed: true }, '#/data/voluntary')
  await p.record(caseId, PL_CW, 'return_decision')
  await p.expectOffer(caseId, 'decide_return', PL_CW, [])
  {
    const { etag } = await p.getCase(caseId)
    const missing = await app.request({
      method: 'POST',
      url: `/v1/cases/${caseId}/transitions`,
      key: PL_CW,
      payload: { action: 'decide_return' },
    })
    t.equal(missing.statusCode, 428, 'a transition without If-Match is refused')
    const stale = await app.request({
      method: 'POST',
      url: `/v1/cases/${caseId}/transitions`,
      key: PL_CW,
      headers: { 'if-match': `"${Number(etag.replaceAll('"', '')) + 7}"` },
      payload: { action: 'decide_return' },
    })
    t.equal(stale.statusCode, 412, 'a transition with a stale If-Match is refused')
    const unknown = await p.transition(caseId, PL_CW, 'fly_home')
    t.equal(unknown.statusCode, 422, 'an action the procedure does not know is a 422')
    t.equal((unknown.json() as Problem).type, 'urn:trm:problem:unknown-action')
    t.ok(
      (unknown.json() as { valid_actions: string[] }).valid_actions.includes('decide_return'),
      'naming the valid actions',
    )
  }
  await take(caseId, PL_CW, 'decide_return', 'identified', 'return_decided')

  // return_decided → referral_sent (sending side): the enquiry is the transition
  await p.expectStep(caseId, sop, 'return_decided', POLAND)
  await p.notAParty(caseId, UA_CW, 'return_decided')
  await p.viaPacketOperation(caseId, PL_CW, 'send_referral')
  {
    const options = await p.nextActions(caseId, PL_CW)
    const send = options.refused.find((o) => o.action === 'send_referral')
    t.equal(send?.operation, 'sendPacket', 'next-actions: the enquiry is sent through sendPacket')
    t.same(codesOf(send?.unmet), ['consent.identity'], 'and needs a consent first')
    t.same(
      options.later.find((o) => o.action === 'accept_referral')?.path,
      ['send_referral', 'acknowledge_referral'],
      'further on, acceptance is two actions away',
    )
  }
  p.expectRefusal(await p.postPacket(caseId), 'an enquiry without consent', 'preconditions-unmet', ['consent.identity'])
  const consented = await p.consent(caseId, [
    { categories: ['identity', 'health'], recipients: [UKRAINE], purposes: ['return_assistance'] },
  ])
  t.equal(consented.statusCode, 201, 'the consent to refer is recorded')
  await p.notAParty(caseId, UA_CW, 'consent recorded, nothing sent')
  const enquiry = await p.sendPacket(caseId, 'enquiry', 'referral_sent')
  taken.push({ action: 'send_referral', from: 'return_decided', to: 'referral_sent', key: PL_CW })
  t.same(enquiry.included_categories, ['health'], 'the enquiry carries the health data')
  t.match(
    enquiry.withheld,
    [{ category: 'identity', reason: 'not_needed_for_purpose' }],
    'but not the identity, before the person is accepted',
  )
  t.equal(enquiry.version, 1, 'the first packet of the case to IOM Ukraine')

  // referral_sent → acknowledged (receiving side): acknowledging the enquiry is the transition
  await p.expectStep(caseId, sop, 'referral_sent', POLAND)
  await p.notAParty(caseId, UA_CW, 'enquiry sent, not acknowledged')
  await p.viaPacketOperation(caseId, PL_CW, 'acknowledge_referral')
  const read = await p.request({ method: 'GET', url: `/v1/packets/${enquiry.id}`, key: UA_CW })
  t.notOk(read.body.includes(ADULT_NAME), 'IOM Ukraine reads the enquiry without the name')
  await p.notAParty(caseId, UA_CW, 'enquiry read, not acknowledged')
  await p.acknowledgePacket(enquiry.id)
  taken.push({ action: 'acknowledge_referral', from: 'referral_sent', to: 'acknowledged', key: UA_CW })

  // acknowledged → accepted (receiving side): the joint risk and needs assessment, then acceptance
  await p.expectStep(caseId, sop, 'acknowledged', POLAND, [PL_CW, UA_CW])
  await p.viaPacketOperation(caseId, UA_CW, 'accept_referral')
  p.expectRefusal(
    await p.answer(enquiry.id, 'accept', {}),
    'accepting before the risk is assessed',
    'preconditions-unmet',
    ['assessment.risk_and_needs'],
  )
  await p.recordRefused(caseId, 'assessment', 'risk_and_needs', { level: 'unknown', mitigations: [] }, '#/data/level')
  await p.record(caseId, PL_CW, 'assessment', 'risk_and_needs')
  p.expectRefusal(
    await p.answer(enquiry.id, 'accept', {}),
    'accepting on the sending side’s assessment alone',
    'preconditions-unmet',
    ['assessment.risk_and_needs.joint'],
  )
  await p.record(caseId, UA_CW, 'assessment', 'risk_and_needs')
  await p.expectOffer(caseId, 'accept_referral', UA_CW, [[PL_CW, ['actor.side']]])
  const referral = await p.acceptPacket(caseId, enquiry.id)
  taken.push({ action: 'accept_referral', from: 'acknowledged', to: 'accepted', key: UA_CW })
  {
    const full = await p.request({ method: 'GET', url: `/v1/packets/${referral.id}`, key: UA_CW })
    t.same((full.json() as Packet).included_categories, ['identity', 'health'], 'the full referral carries both')
    t.ok(full.body.includes(ADULT_NAME), 'IOM Ukraine reads the name once it accepted the person')
    t.equal((full.json() as Packet).version, 2, 'the second packet of the case to IOM Ukraine')
    t.equal((await p.getCase(caseId)).body.receiving_organisation_id, UKRAINE, 'IOM Ukraine is the receiving partner')
  }

  // accepted → ready_to_travel (sending side): everything for the journey; an update keeps the step
  await p.expectStep(caseId, sop, 'accepted', POLAND, [PL_CW, UA_CW])
  await p.refused(caseId, PL_CW, 'confirm_ready', [
    'record.travel_documents',
    'assessment.fit_to_travel',
    'record.escort',
    'record.reception',
    'record.reintegration_plan_draft',
  ])
  await p.record(caseId, PL_CW, 'travel_documents')
  const unfit = await p.record(caseId, PL_CW, 'assessment', 'fit_to_travel', { fit: false })
  await p.record(caseId, PL_CW, 'escort')
  {
    const refusal = await p.refused(caseId, PL_CW, 'confirm_ready', [
      'assessment.fit_to_travel.fit',
      'record.reception',
      'record.reintegration_plan_draft',
    ])
    t.match(
      refusal.unmet?.find((u) => u.code === 'assessment.fit_to_travel.fit'),
      { record_id: unfit.id, field: 'fit', expected: true, actual: false },
      'the refusal names the assessment that found the person unfit to travel',
    )
  }
  await p.record(caseId, PL_CW, 'assessment', 'fit_to_travel')
  await p.record(caseId, UA_CW, 'reception')
  await p.record(caseId, UA_CW, 'reintegration_plan_draft')
  await p.expectOffer(caseId, 'send_update', PL_CW, [[UA_CW, ['actor.side']]])
  const update = await p.sendPacket(caseId, 'update', 'accepted')
  taken.push({ action: 'send_update', from: 'accepted', to: 'accepted', key: PL_CW })
  t.equal(update.version, 3, 'the third packet to IOM Ukraine')
  await p.expectOffer(caseId, 'confirm_ready', PL_CW, [[UA_CW, ['actor.side']]])
  await take(caseId, PL_CW, 'confirm_ready', 'accepted', 'ready_to_travel')

  // ready_to_travel → departed (sending side)
  await p.expectStep(caseId, sop, 'ready_to_travel', POLAND, [PL_CW, UA_CW])
  await p.refused(caseId, UA_CW, 'confirm_departure', ['actor.side'])
  await p.expectOffer(caseId, 'confirm_departure', PL_CW, [[UA_CW, ['actor.side']]])
  await take(caseId, PL_CW, 'confirm_departure', 'ready_to_travel', 'departed', {
    note: 'Departed on flight PS 102 with escort.',
  })

  // departed → arrived (receiving side): the lead passes to IOM Ukraine
  await p.expectStep(caseId, sop, 'departed', POLAND, [PL_CW, UA_CW])
  await p.refused(caseId, PL_CW, 'confirm_arrival', ['actor.side'])
  await p.expectOffer(caseId, 'confirm_arrival', UA_CW, [[PL_CW, ['actor.side']]])
  const arrived = await take(caseId, UA_CW, 'confirm_arrival', 'departed', 'arrived')
  t.equal(arrived.lead_organisation_id, UKRAINE, 'confirming arrival hands the lead to IOM Ukraine')

  // arrived → reintegration (receiving side)
  await p.expectStep(caseId, sop, 'arrived', UKRAINE, [PL_CW, UA_CW])
  await p.expectOffer(caseId, 'withdraw', UA_CW, [[PL_CW, ['actor.side']]])
  await p.refused(caseId, UA_CW, 'finalise_plan', ['record.reintegration_plan_final'])
  await p.record(caseId, UA_CW, 'reintegration_plan_final')
  await p.expectOffer(caseId, 'finalise_plan', UA_CW, [[PL_CW, ['actor.side']]])
  await take(caseId, UA_CW, 'finalise_plan', 'arrived', 'reintegration')

  // reintegration → closed (the receiving supervisor, with a reason and a final report)
  await p.expectStep(caseId, sop, 'reintegration', UKRAINE, [PL_CW, UA_CW])
  await p.refused(
    caseId,
    UA_SV,
    'close',
    ['record.closure_report', 'record.closure_report.reason', 'record.sustainability_score'],
    { reason: 'Reintegration completed.' },
  )
  await p.record(caseId, UA_CW, 'closure_report')
  await p.record(caseId, UA_CW, 'sustainability_score')
  await p.refused(caseId, UA_CW, 'close', ['actor.role'], { reason: 'Reintegration completed.' })
  await p.expectOffer(caseId, 'close', UA_SV, [
    [UA_CW, ['actor.role']],
    [PL_SV, ['actor.side']],
    [PL_CW, ['actor.side', 'actor.role']],
  ])
  await p.inputMissing(caseId, UA_SV, 'close')
  const closed = await take(caseId, UA_SV, 'close', 'reintegration', 'closed', { reason: 'Reintegration completed.' })
  t.equal(closed.step_due_at, null, 'a closed case is due nowhere')

  await p.expectStep(caseId, sop, 'closed', UKRAINE, [PL_CW, UA_CW])
  const final = await p.nextActions(caseId, UA_SV)
  t.same([final.allowed, final.refused, final.later], [[], [], []], 'nothing is open from a closed case')
  t.equal(final.responsible_side, null, 'no one is responsible for a closed case')
  const after = await p.transition(caseId, UA_SV, 'withdraw', { reason: 'Too late.' })
  p.expectNotOpen(after, 'withdrawing a closed case', openAtOf(sop, 'withdraw'), [])

  // The timeline: the opening, then every transition in order, packet operations included, with who took it.
  const items = await p.timeline(caseId, UA_CW)
  t.same(
    items.map((item) => [item.action, item.from_step, item.to_step, item.principal_id, item.organisation_id]),
    [
      ['open', null, 'identified', principalOf[PL_CW], POLAND],
      ...taken.map((step) => [step.action, step.from, step.to, principalOf[step.key], organisationOf[step.key]]),
    ],
    'the timeline lists the opening and every transition in order, with who took it',
  )
  t.same(
    items.map((item) => [item.action, item.lead_organisation_id]),
    [
      ['open', POLAND],
      ['decide_return', POLAND],
      ['send_referral', POLAND],
      ['acknowledge_referral', POLAND],
      ['accept_referral', POLAND],
      ['send_update', POLAND],
      ['confirm_ready', POLAND],
      ['confirm_departure', POLAND],
      ['confirm_arrival', UKRAINE],
      ['finalise_plan', UKRAINE],
      ['close', UKRAINE],
    ],
    'IOM Poland leads until arrival is confirmed, IOM Ukraine after',
  )
  t.equal(items.find((item) => item.action === 'close')?.reason, 'Reintegration completed.', 'close keeps its reason')
  t.equal(items.find((item) => item.action === 'confirm_departure')?.note, 'Departed on flight PS 102 with escort.')
  const times = items.map((item) => Date.parse(item.at))
  t.same(
    times,
    [...times].sort((a, b) => a - b),
    'oldest first',
  )
  t.same(await p.timeline(caseId, PL_CW), items, 'both sides read the same timeline')
})

// ---------------------------------------------------------------------------------------------
// 2. An unaccompanied child's return

t.test("an unaccompanied child's return, with every child safeguard", async (t) => {
  const app = await startTestApp(t, { rateLimitPerMinute: 100_000 })
  const p = procedureClient(t, app)
  const sop = childReturnPlUa

  const opened = await p.openCase(childCase)
  const caseId = opened.id
  t.same(
    opened.sop,
    { id: 'child-return-pl-ua', version: 1 },
    'an unaccompanied child returning from Poland to Ukraine opens on the variant for that corridor',
  )
  t.equal(opened.step, 'identified')
  t.equal(opened.lead_organisation_id, POLAND)

  // identified: a determination that the return is in the child's best interests, and a guardian
  await p.expectStep(caseId, sop, 'identified', POLAND)
  await p.record(caseId, PL_CW, 'return_decision')
  await p.refused(caseId, PL_CW, 'decide_return', [
    'assessment.best_interests_determination',
    'record.guardian_appointment',
  ])
  const pending = await p.record(caseId, PL_CW, 'assessment', 'best_interests_determination', {
    outcome: 'pending',
    decided_by: 'BID panel',
  })
  {
    const refusal = await p.refused(caseId, PL_CW, 'decide_return', [
      'assessment.best_interests_determination.outcome',
      'record.guardian_appointment',
    ])
    t.match(
      refusal.unmet?.find((u) => u.code === 'assessment.best_interests_determination.outcome'),
      { record_id: pending.id, field: 'outcome', expected: 'return_in_best_interests', actual: 'pending' },
      'a pending determination does not decide the return: the refusal names it',
    )
  }
  const earlyDetermination = await p.record(caseId, PL_CW, 'assessment', 'best_interests_determination')
  await p.refused(caseId, PL_CW, 'decide_return', ['record.guardian_appointment'])
  await p.record(caseId, PL_CW, 'guardian_appointment')
  await p.expectOffer(caseId, 'decide_return', PL_CW, [])
  await p.take(caseId, PL_CW, 'decide_return', 'return_decided')

  // return_decided: the guardian's consent naming IOM Ukraine, then the enquiry
  await p.expectStep(caseId, sop, 'return_decided', POLAND)
  p.expectRefusal(await p.postPacket(caseId), 'an enquiry without consent', 'preconditions-unmet', [
    'consent.identity',
    'consent.guardian',
  ])
  const identityToUkraine = {
    categories: ['identity', 'health'],
    recipients: [UKRAINE],
    purposes: ['return_assistance'],
  }
  const withoutGuardian = await p.consent(caseId, [identityToUkraine], null)
  t.equal(withoutGuardian.statusCode, 422, "a child's consent without the guardian is refused")
  t.equal((withoutGuardian.json() as Problem).type, 'urn:trm:problem:guardian-required')
  // Every consent of a child carries the guardian (422 otherwise), so `consent.guardian` can only be
  // shown failing next to `consent.identity`: while no consent names IOM Ukraine.
  const toShelter = await p.consent(
    caseId,
    [{ categories: ['identity', 'health'], recipients: [KYIV_SHELTER], purposes: ['return_assistance'] }],
    GUARDIAN,
  )
  t.equal(toShelter.statusCode, 201, "the guardian's consent naming the Kyiv shelter is recorded")
  p.expectRefusal(
    await p.postPacket(caseId),
    'an enquiry to IOM Ukraine on a consent naming the shelter',
    'preconditions-unmet',
    ['consent.identity', 'consent.guardian'],
  )
  const toUkraine = await p.consent(caseId, [identityToUkraine], GUARDIAN)
  t.equal(toUkraine.statusCode, 201, "the guardian's consent naming IOM Ukraine is recorded")
  t.same((toUkraine.json() as Consent).guardian, GUARDIAN)
  const enquiry = await p.sendPacket(caseId, 'enquiry', 'referral_sent')
  t.same(enquiry.included_categories, ['health'], 'the enquiry carries the health data')
  t.notOk(JSON.stringify(enquiry.content).includes(CHILD_NAME), 'not the child’s name')
  t.notOk('family' in enquiry.content.sections, 'nor family data')

  // referral_sent → acknowledged
  await p.expectStep(caseId, sop, 'referral_sent', POLAND)
  await p.viaPacketOperation(caseId, PL_CW, 'acknowledge_referral')
  await p.acknowledgePacket(enquiry.id)

  // acknowledged → accepted: the joint assessment, the family able to receive him, and a
  // determination made after that family assessment
  await p.expectStep(caseId, sop, 'acknowledged', POLAND, [PL_CW, UA_CW])
  await p.record(caseId, PL_CW, 'assessment', 'risk_and_needs')
  await p.record(caseId, UA_CW, 'assessment', 'risk_and_needs')
  p.expectRefusal(await p.answer(enquiry.id, 'accept', {}), 'accepting the child', 'preconditions-unmet', [
    'assessment.family',
  ])
  const unable = await p.record(caseId, UA_CW, 'assessment', 'family', { outcome: 'family_unable_to_receive' })
  {
    const refusal = p.expectRefusal(
      await p.answer(enquiry.id, 'accept', {}),
      'accepting the child whose family cannot receive him',
      'preconditions-unmet',
      ['assessment.family.outcome', 'assessment.best_interests_determination.revalidate'],
    )
    // Family data is not consented to IOM Ukraine: it is told which outcome is needed, not the record.
    const family = refusal.unmet?.find((u) => u.code === 'assessment.family.outcome')
    t.match(family, { field: 'outcome', expected: 'family_able_to_receive' })
    t.notOk(family && 'record_id' in family, 'without a record IOM Ukraine may not read')
    t.notOk(JSON.stringify(refusal).includes(unable.id), 'the record id appears nowhere')
  }
  await p.record(caseId, UA_CW, 'assessment', 'family', { outcome: 'family_able_to_receive' })
  p.expectRefusal(
    await p.answer(enquiry.id, 'accept', {}),
    'accepting on a determination older than the family assessment',
    'preconditions-unmet',
    ['assessment.best_interests_determination.revalidate'],
  )
  {
    // IOM Poland, which holds the data, is told which record must be made again.
    const options = await p.nextActions(caseId, PL_CW)
    const accept = options.refused.find((o) => o.action === 'accept_referral')
    t.match(
      accept?.unmet.find((u) => u.code === 'assessment.best_interests_determination.revalidate'),
      { record_id: earlyDetermination.id },
      'next-actions names the determination to make again, for the sending partner',
    )
  }
  await p.record(caseId, PL_CW, 'assessment', 'best_interests_determination')
  await p.expectOffer(caseId, 'accept_referral', UA_CW, [[PL_CW, ['actor.side']]])
  const referral = await p.acceptPacket(caseId, enquiry.id)
  t.same(
    (await p.request({ method: 'GET', url: `/v1/packets/${referral.id}`, key: UA_CW })).json().included_categories,
    ['identity', 'health'],
    'the full referral carries what the guardian consented to',
  )

  // accepted → ready_to_travel
  await p.expectStep(caseId, sop, 'accepted', POLAND, [PL_CW, UA_CW])
  await p.record(caseId, PL_CW, 'travel_documents')
  await p.record(caseId, PL_CW, 'assessment', 'fit_to_travel')
  await p.record(caseId, PL_CW, 'escort')
  await p.record(caseId, UA_CW, 'reception')
  await p.record(caseId, UA_CW, 'reintegration_plan_draft')
  await p.take(caseId, PL_CW, 'confirm_ready', 'ready_to_travel')

  // ready_to_travel: no departure without a hand-over protocol, nor at a high risk without mitigation
  await p.expectStep(caseId, sop, 'ready_to_travel', POLAND, [PL_CW, UA_CW])
  await p.refused(caseId, PL_CW, 'confirm_departure', ['record.handover_protocol'])
  {
    const options = await p.nextActions(caseId, PL_CW)
    const departure = options.refused.find((option) => option.action === 'confirm_departure')
    t.same(codesOf(departure?.unmet), ['record.handover_protocol'], 'next-actions names the missing protocol')
  }
  await p.record(caseId, PL_CW, 'handover_protocol')
  const high = await p.record(caseId, PL_CW, 'assessment', 'risk_and_needs', { level: 'high', mitigations: [] })
  {
    const refusal = await p.refused(caseId, PL_CW, 'confirm_departure', ['assessment.risk_and_needs.level'])
    t.match(refusal.unmet?.[0], { record_id: high.id, field: 'level', actual: 'high' }, 'the high risk is named')
  }
  await p.record(caseId, PL_CW, 'assessment', 'risk_and_needs', {
    level: 'high',
    mitigations: ['Escorted by a social worker and the guardian to the door.'],
  })
  await p.expectOffer(caseId, 'confirm_departure', PL_CW, [[UA_CW, ['actor.side']]])
  await p.take(caseId, PL_CW, 'confirm_departure', 'departed')

  // departed → arrived: the lead passes to IOM Ukraine
  await p.expectStep(caseId, sop, 'departed', POLAND, [PL_CW, UA_CW])
  await p.refused(caseId, PL_CW, 'confirm_arrival', ['actor.side'])
  const arrived = await p.take(caseId, UA_CW, 'confirm_arrival', 'arrived')
  t.equal(arrived.lead_organisation_id, UKRAINE, 'IOM Ukraine leads from arrival')
  await p.expectStep(caseId, sop, 'arrived', UKRAINE, [PL_CW, UA_CW])

  // arrived → reintegration → closed
  await p.record(caseId, UA_CW, 'reintegration_plan_final')
  await p.take(caseId, UA_CW, 'finalise_plan', 'reintegration')
  await p.expectStep(caseId, sop, 'reintegration', UKRAINE, [PL_CW, UA_CW])
  await p.record(caseId, UA_CW, 'closure_report')
  await p.record(caseId, UA_CW, 'sustainability_score')
  await p.refused(caseId, UA_CW, 'close', ['actor.role'], { reason: 'Reunited with his aunt.' })
  await p.inputMissing(caseId, UA_SV, 'close')
  await p.take(caseId, UA_SV, 'close', 'closed', { reason: 'Reunited with his aunt.' })
  await p.expectStep(caseId, sop, 'closed', UKRAINE, [PL_CW, UA_CW])

  const items = await p.timeline(caseId)
  t.same(
    items.map((item) => [item.action, item.to_step, item.lead_organisation_id]),
    [
      ['open', 'identified', POLAND],
      ['decide_return', 'return_decided', POLAND],
      ['send_referral', 'referral_sent', POLAND],
      ['acknowledge_referral', 'acknowledged', POLAND],
      ['accept_referral', 'accepted', POLAND],
      ['confirm_ready', 'ready_to_travel', POLAND],
      ['confirm_departure', 'departed', POLAND],
      ['confirm_arrival', 'arrived', UKRAINE],
      ['finalise_plan', 'reintegration', UKRAINE],
      ['close', 'closed', UKRAINE],
    ],
    "the child's timeline",
  )
})

// ---------------------------------------------------------------------------------------------
// 3. Exits: withdrawal, hold, cancellation

t.test('exits from the procedure', async (t) => {
  // One service for all exits (a fresh embedded database costs seconds); each exit opens its own case.
  const app = await startTestApp(t, { rateLimitPerMinute: 100_000 })
  t.test('the person withdraws at the start: every consent goes with it', async (t) => {
    const p = procedureClient(t, app)
    const { caseId } = await p.adultAt('identified')
    const purposes = ['return_assistance']
    t.equal((await p.consent(caseId, [{ categories: ['identity'], recipients: [UKRAINE], purposes }])).statusCode, 201)
    t.equal((await p.consent(caseId, [{ categories: ['health'], recipients: [UKRAINE], purposes }])).statusCode, 201)
    await p.expectOffer(caseId, 'withdraw', PL_CW, [])
    await p.inputMissing(caseId, PL_CW, 'withdraw')
    await p.take(caseId, PL_CW, 'withdraw', 'withdrawn', { reason: 'She decided to stay in Poland.' })
    await p.expectStep(caseId, adultReturn, 'withdrawn', POLAND)
    const all = await p.consents(caseId)
    t.equal(all.length, 2)
    t.same(
      all.map((c) => c.status),
      ['withdrawn', 'withdrawn'],
      'every consent of the case is withdrawn',
    )
    for (const c of all) {
      t.ok(c.withdrawn_at, 'withdrawn_at is set')
      t.equal(c.withdrawal_reason, 'She decided to stay in Poland.', 'with the reason of the withdrawal')
    }
    const last = (await p.timeline(caseId)).at(-1)
    t.match(last, { action: 'withdraw', from_step: 'identified', to_step: 'withdrawn', reason: /stay in Poland/ })
  })

  t.test('the person withdraws after acceptance: IOM Ukraine can no longer read the packet', async (t) => {
    const p = procedureClient(t, app)
    const { caseId, referralId: packetId } = await p.adultAt('accepted')
    const before = await p.request({ method: 'GET', url: `/v1/packets/${packetId}`, key: UA_CW })
    t.ok(before.body.includes(ADULT_NAME), 'before the withdrawal IOM Ukraine reads the identity')
    await p.refused(caseId, UA_CW, 'withdraw', ['actor.side'], { reason: 'Told IOM Ukraine.' })
    await p.expectOffer(caseId, 'withdraw', PL_CW, [[UA_CW, ['actor.side']]])
    await p.take(caseId, PL_CW, 'withdraw', 'withdrawn', { reason: 'She no longer wants to return.' })
    await p.expectStep(caseId, adultReturn, 'withdrawn', POLAND, [PL_CW, UA_CW])
    const all = await p.consents(caseId)
    t.ok(all.length >= 2)
    t.ok(
      all.every((c) => c.status === 'withdrawn'),
      'GET consents shows every consent withdrawn',
    )
    const read = await p.request({ method: 'GET', url: `/v1/packets/${packetId}`, key: UA_CW })
    t.equal(read.statusCode, 200)
    const packet = read.json() as Packet
    t.same([...packet.withdrawn_categories].sort(), ['health', 'identity'], 'the reader is told what to delete')
    t.same(packet.content.sections, {}, 'the packet reader gets no section any more')
    t.ok(packet.content_notice, 'and a notice why')
    t.notOk(read.body.includes(ADULT_NAME), 'the given name appears nowhere in the packet')
    t.notOk(read.body.includes('post-traumatic stress'), 'nor the health data')
    const theCase = await p.getCase(caseId, UA_CW)
    t.same(theCase.body.sections, {}, 'nor in the case')
    const options = await p.nextActions(caseId, PL_CW)
    t.same([options.allowed, options.refused], [[], []], 'nothing is open from withdrawn')
  })

  t.test('after arrival the person withdraws through IOM Ukraine, which leads', async (t) => {
    const p = procedureClient(t, app)
    const { caseId } = await p.adultAt('arrived')
    await p.refused(caseId, PL_CW, 'withdraw', ['actor.side'], { reason: 'Told IOM Poland.' })
    await p.take(caseId, UA_CW, 'withdraw', 'withdrawn', { reason: 'He refuses further assistance.' })
    await p.expectStep(caseId, adultReturn, 'withdrawn', UKRAINE, [PL_CW, UA_CW])
    t.ok(
      (await p.consents(caseId)).every((c) => c.status === 'withdrawn'),
      'every consent is withdrawn',
    )
  })

  t.test('put on hold until a review date, then resumed where it was', async (t) => {
    const p = procedureClient(t, app)
    const { caseId } = await p.adultAt('return_decided')
    const reviewDate = dateInDays(20)
    await p.inputMissing(caseId, PL_CW, 'put_on_hold', { reason: 'Criminal proceedings pending.' })
    await p.inputMissing(caseId, PL_CW, 'put_on_hold', { review_date: reviewDate })
    const held = await p.take(caseId, PL_CW, 'put_on_hold', 'on_hold', {
      reason: 'Criminal proceedings pending.',
      review_date: reviewDate,
    })
    t.equal(held.step_due_at, `${reviewDate}T00:00:00.000Z`, 'step_due_at is the review date')
    const { body } = await p.getCase(caseId)
    t.equal(body.step, 'on_hold')
    t.equal(body.step_due_at, `${reviewDate}T00:00:00.000Z`, 'GET shows the review date as due')
    t.equal(body.lead_organisation_id, POLAND)
    const options = await p.nextActions(caseId, PL_CW)
    t.equal(options.responsible_side, 'sending', 'on hold, the lead (the sending side) is responsible')
    t.same(
      options.allowed.map((o) => o.action),
      ['withdraw', 'resume'],
      'from hold: withdraw or resume',
    )
    t.equal(options.allowed.find((o) => o.action === 'resume')?.to, 'return_decided', 'resume leads back')
    // The contract: TimelineEntry.review_date is a `date` (YYYY-MM-DD), as the hold was asked for.
    t.match((await p.timeline(caseId)).at(-1), {
      action: 'put_on_hold',
      from_step: 'return_decided',
      to_step: 'on_hold',
      reason: 'Criminal proceedings pending.',
      review_date: reviewDate,
    })
    const resumed = await p.take(caseId, PL_CW, 'resume', 'return_decided')
    t.equal(resumed.lead_organisation_id, POLAND)
    await p.expectStep(caseId, adultReturn, 'return_decided', POLAND)
    t.match((await p.timeline(caseId)).at(-1), { action: 'resume', from_step: 'on_hold', to_step: 'return_decided' })
  })

  t.test('held after acceptance: only the lead may hold or resume', async (t) => {
    const p = procedureClient(t, app)
    const { caseId } = await p.adultAt('accepted')
    const reviewDate = dateInDays(10)
    await p.refused(caseId, UA_CW, 'put_on_hold', ['actor.side'], { reason: 'Illness.', review_date: reviewDate })
    await p.take(caseId, PL_CW, 'put_on_hold', 'on_hold', { reason: 'Illness.', review_date: reviewDate })
    await p.refused(caseId, UA_CW, 'resume', ['actor.side'])
    await p.take(caseId, PL_CW, 'resume', 'accepted')
    await p.expectStep(caseId, adultReturn, 'accepted', POLAND, [PL_CW, UA_CW])
  })

  t.test('cancelled by the sending supervisor before departure', async (t) => {
    const p = procedureClient(t, app)
    const { caseId } = await p.adultAt('ready_to_travel')
    await p.refused(caseId, PL_CW, 'cancel', ['actor.role'], { reason: 'No flights.' })
    await p.refused(caseId, UA_SV, 'cancel', ['actor.side'], { reason: 'No flights.' })
    await p.expectOffer(caseId, 'cancel', PL_SV, [
      [PL_CW, ['actor.role']],
      [UA_SV, ['actor.side']],
    ])
    await p.inputMissing(caseId, PL_SV, 'cancel')
    await p.take(caseId, PL_SV, 'cancel', 'cancelled', { reason: 'The travel document was revoked.' })
    await p.expectStep(caseId, adultReturn, 'cancelled', POLAND, [PL_CW, UA_CW])
    t.match((await p.timeline(caseId)).at(-1), {
      action: 'cancel',
      from_step: 'ready_to_travel',
      to_step: 'cancelled',
      organisation_id: POLAND,
      principal_id: principalOf[PL_SV],
      reason: 'The travel document was revoked.',
    })
  })

  t.test('no cancellation once the person has departed', async (t) => {
    const p = procedureClient(t, app)
    const { caseId } = await p.adultAt('departed')
    const options = await p.nextActions(caseId, PL_SV)
    t.notOk(
      [...options.allowed, ...options.refused].some((o) => o.action === 'cancel'),
      'cancel is not offered from departed',
    )
    const response = await p.transition(caseId, PL_SV, 'cancel', { reason: 'Too late.' })
    p.expectNotOpen(response, 'cancel after departure', openAtOf(adultReturn, 'cancel'), [])
  })

  t.test('IOM Ukraine declines; IOM Poland refers the person again', async (t) => {
    const p = procedureClient(t, app)
    const { caseId, packetId } = await p.adultAt('acknowledged')
    await p.viaPacketOperation(caseId, UA_CW, 'decline_referral')
    const declined = await p.answer(packetId as string, 'decline', {
      reason_code: 'no_capacity',
      reason_text: 'Full until February.',
    })
    t.equal(declined.statusCode, 200, 'IOM Ukraine declines the enquiry')
    t.equal((declined.json() as Packet).status, 'declined')
    await p.expectStep(caseId, adultReturn, 'declined', POLAND)
    await p.notAParty(caseId, UA_CW, 'declined')
    p.expectNotOpen(
      await p.postPacket(caseId),
      'a new enquiry before referring elsewhere',
      ['return_decided'],
      ['refer_elsewhere'],
    )
    await p.expectOffer(caseId, 'refer_elsewhere', PL_CW, [])
    await p.take(caseId, PL_CW, 'refer_elsewhere', 'return_decided')
    const again = await p.sendPacket(caseId, 'enquiry', 'referral_sent')
    t.equal(again.version, 2, 'the second packet of the case to IOM Ukraine')
    await p.expectStep(caseId, adultReturn, 'referral_sent', POLAND)
    t.match(
      (await p.timeline(caseId)).slice(-3).map((item) => [item.action, item.to_step, item.organisation_id]),
      [
        ['decline_referral', 'declined', UKRAINE],
        ['refer_elsewhere', 'return_decided', POLAND],
        ['send_referral', 'referral_sent', POLAND],
      ],
    )
  })
})

// ---------------------------------------------------------------------------------------------
// 4. A raced transition (PostgreSQL only)

const skipRace = testDatabaseUrl
  ? false
  : 'needs PostgreSQL (set TEST_DATABASE_URL): PGlite runs one transaction at a time, so two requests never race'

t.test(
  'two clients take the same transition with the same If-Match: one wins, one gets 412',
  { skip: skipRace },
  async (t) => {
    const app = await startTestApp(t, { rateLimitPerMinute: 100_000 })
    const p = procedureClient(t, app)
    for (let round = 0; round < 3; round++) {
      const { caseId } = await p.adultAt('identified')
      await p.record(caseId, PL_CW, 'return_decision')
      const { etag } = await p.getCase(caseId)
      const race = (key: string) =>
        app.request({
          method: 'POST',
          url: `/v1/cases/${caseId}/transitions`,
          key,
          headers: { 'if-match': etag },
          payload: { action: 'decide_return' },
        })
      const responses = await Promise.all([race(PL_CW), race(PL_SV)])
      t.same(responses.map((r) => r.statusCode).sort(), [200, 412], `round ${round + 1}: exactly one 200 and one 412`)
      const lost = responses.find((r) => r.statusCode === 412)
      t.equal(lost?.json().type, 'urn:trm:problem:stale-version', 'the loser is told its version is stale')
      const items = await p.timeline(caseId)
      t.equal(items.filter((item) => item.action === 'decide_return').length, 1, 'the transition is taken once')
      t.equal((await p.getCase(caseId)).body.step, 'return_decided')
    }
  },
)

// ---------------------------------------------------------------------------------------------
// 5. The procedures as published

t.test('the procedures are published, with their diagrams', async (t) => {
  const app = await startTestApp(t)
  const list = await app.request({ method: 'GET', url: '/v1/sops', key: PL_CW })
  t.equal(list.statusCode, 200)
  const items = (list.json() as Schemas['SopList']).items
  for (const [id, appliesTo] of [
    ['adult-return', 'adult'],
    ['child-return', 'child'],
  ]) {
    t.ok(
      items.some((item) => item.id === id && item.version === 2 && item.applies_to === appliesTo),
      `${id} v2 is listed, for a ${appliesTo}`,
    )
  }

  for (const file of [childReturn, adultReturn]) {
    const response = await app.request({ method: 'GET', url: `/v1/sops/${file.id}`, key: UA_CW })
    t.equal(response.statusCode, 200, `${file.id} is published`)
    const sop = response.json() as Schemas['Sop']
    t.same([sop.id, sop.version, sop.applies_to, sop.initial_step], [file.id, 2, file.applies_to, file.initial_step])
    t.same(sop.steps, file.steps, `${file.id}: the steps are those of the definition file`)
    t.same(sop.transitions, file.transitions, `${file.id}: the transitions are those of the definition file`)
    t.ok(sop.diagram.includes('stateDiagram-v2'), `${file.id}: the diagram is a Mermaid state diagram`)
    for (const transition of file.transitions) {
      for (const from of transition.from) {
        if (transition.to === '$previous') {
          t.ok(
            sop.diagram.includes(`${from}`) && sop.diagram.includes(transition.action),
            `${file.id}: ${transition.action} from ${from} (to the step before) is in the diagram`,
          )
          continue
        }
        // An exchange is labelled with the packet operation that takes it; `$current` loops on the step.
        const to = transition.to === '$current' ? from : transition.to
        const label = transition.exchange
          ? `${transition.action} · ${operationOf(transition.action)}`
          : transition.action
        t.ok(sop.diagram.includes(`${from} --> ${to} : ${label}`), `${file.id}: ${from} --> ${to} : ${label}`)
      }
    }
  }
  const versioned = await app.request({ method: 'GET', url: '/v1/sops/child-return?version=2', key: PL_CW })
  t.equal(versioned.statusCode, 200, 'a version can be asked for')
  const retired = await app.request({ method: 'GET', url: '/v1/sops/child-return?version=1', key: PL_CW })
  t.equal(retired.statusCode, 404, 'version 1 is no longer published')
  const unknown = await app.request({ method: 'GET', url: '/v1/sops/child-return?version=99', key: PL_CW })
  t.equal(unknown.statusCode, 404, 'an unknown version is not found')
})
