import type { LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import type { components } from '../openapi/dist/types.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { demoKeys, startTestApp, type TestApp } from './fixtures/app.js'
import { acceptReferral, type Referral, record, transition } from './fixtures/referral.js'

type Schemas = components['schemas']
type Case = Schemas['Case']
type CaseSummary = Schemas['CaseSummary']
type CasePage = Schemas['CasePage']
type Consent = Schemas['Consent']
type Packet = Schemas['Packet']
type PacketPage = Schemas['PacketPage']
type Problem = Schemas['Problem']
type Request = TestApp['request']

const IOM_POLAND = demoOrganisationIds.iomPoland
const BORDER_GUARD_POLAND = demoOrganisationIds.borderGuardPoland
const IOM_UKRAINE = demoOrganisationIds.iomUkraine
const KYIV_SHELTER = demoOrganisationIds.kyivShelter
const UNKNOWN_ORGANISATION = '7c1e2d3f-4a5b-4c6d-8e9f-a0b1c2d3e4f5'

const plCaseworker = demoKeys.demoiomplcw1 as string
const plSupervisor = demoKeys.demoiomplsv1 as string
const plDpo = demoKeys.demoiompldpo as string
const uaCaseworker = demoKeys.demoiomuacw1 as string
const ngoCaseworker = demoKeys.demongoplcw1 as string
const auditor = demoKeys.demoauditor1 as string

const adultProfile = {
  age_band: '25_34',
  sex: 'female',
  nationality: 'UA',
  country_of_return: 'UA',
  vulnerabilities: ['victim_of_trafficking'],
}

const sections = {
  identity: { given_name: 'Olena', family_name: 'Kovalenko', date_of_birth: '1994-03-02' },
  health: { conditions: ['post-traumatic stress'] },
  psychosocial: { assessment_summary: 'Engaged with counselling.' },
}

const acknowledgement = {
  focal_point: { name: 'Iryna Shevchenko', email: 'focal@iom-ua.example' },
  alternate_contact: { name: 'Petro Bondarenko' },
}

function hoursAgo(hours: number): string {
  return new Date(Date.now() - hours * 3_600_000).toISOString()
}

function consentBody(categories: string[], recipients: string[] = [IOM_UKRAINE], extra: Record<string, unknown> = {}) {
  return {
    given_at: hoursAgo(1),
    method: 'written',
    language: 'uk',
    interpreter: { used: false },
    provisions: [{ categories, recipients, purposes: ['return_assistance'] }],
    ...extra,
  }
}

/** Asserts a problem document of this status (and type, when given) and returns it. */
function problem(t: Test, response: LightMyRequestResponse, status: number, type?: string): Problem {
  t.equal(response.statusCode, status, `answers ${status}`)
  t.match(String(response.headers['content-type']), /^application\/problem\+json/, 'as a problem document')
  const body = response.json() as Problem
  if (type) t.equal(body.type, `urn:trm:problem:${type}`, `of type ${type}`)
  return body
}

async function openCase(
  request: Request,
  body: Record<string, unknown> = { profile: adultProfile, sections },
  key = plCaseworker,
): Promise<Case> {
  const response = await request({ method: 'POST', url: '/v1/cases', key, payload: body })
  if (response.statusCode !== 201) throw new Error(`createCase answered ${response.statusCode}: ${response.body}`)
  return response.json() as Case
}

async function recordConsent(request: Request, caseId: string, body: Record<string, unknown>): Promise<Consent> {
  const response = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/consents`,
    key: plCaseworker,
    payload: body,
  })
  if (response.statusCode !== 201) throw new Error(`recordConsent answered ${response.statusCode}: ${response.body}`)
  return response.json() as Consent
}

async function sendPacket(request: Request, caseId: string, recipient = IOM_UKRAINE): Promise<Packet> {
  const response = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/packets`,
    key: plCaseworker,
    payload: { recipient_organisation_id: recipient, purpose: 'return_assistance' },
  })
  if (response.statusCode !== 201) throw new Error(`sendPacket answered ${response.statusCode}: ${response.body}`)
  return response.json() as Packet
}

/** Records the person's return decision and takes it: the step from which an enquiry goes. */
async function decideReturn(app: TestApp, caseId: string): Promise<void> {
  const recorded = await record(app, caseId, plCaseworker, 'return_decision')
  if (recorded.statusCode !== 201) throw new Error(`createCaseRecord answered ${recorded.statusCode}: ${recorded.body}`)
  const decided = await transition(app, caseId, plCaseworker, 'decide_return')
  if (decided.statusCode !== 200) throw new Error(`decide_return answered ${decided.statusCode}: ${decided.body}`)
}

/** A case with identity and health consented to IOM Ukraine, the return decided, and the enquiry sent there. */
async function referredCase(app: TestApp): Promise<{ theCase: Case; packet: Packet; referral: Referral }> {
  const theCase = await openCase(app.request)
  const consent = await recordConsent(app.request, theCase.id, consentBody(['identity', 'health']))
  await decideReturn(app, theCase.id)
  const packet = await sendPacket(app.request, theCase.id)
  return { theCase, packet, referral: { caseId: theCase.id, consentId: consent.id, packetId: packet.id } }
}

/** Both sides record the joint risk and needs assessment, which an acceptance needs. */
async function assessRisk(app: TestApp, caseId: string): Promise<void> {
  for (const key of [plCaseworker, uaCaseworker]) {
    const response = await record(app, caseId, key, 'assessment', 'risk_and_needs')
    if (response.statusCode !== 201)
      throw new Error(`createCaseRecord answered ${response.statusCode}: ${response.body}`)
  }
}

async function getPacket(request: Request, packetId: string, key: string) {
  const response = await request({ method: 'GET', url: `/v1/packets/${packetId}`, key })
  if (response.statusCode !== 200) throw new Error(`getPacket answered ${response.statusCode}: ${response.body}`)
  return { packet: response.json() as Packet, etag: String(response.headers.etag) }
}

async function getCase(request: Request, caseId: string, key = plCaseworker) {
  const response = await request({ method: 'GET', url: `/v1/cases/${caseId}`, key })
  if (response.statusCode !== 200) throw new Error(`getCase answered ${response.statusCode}: ${response.body}`)
  return { theCase: response.json() as Case, etag: String(response.headers.etag) }
}

function answer(request: Request, packetId: string, action: string, ifMatch: string | undefined, payload: unknown) {
  return request({
    method: 'POST',
    url: `/v1/packets/${packetId}/${action}`,
    key: uaCaseworker,
    headers: ifMatch === undefined ? {} : { 'if-match': ifMatch },
    payload: payload as Record<string, unknown>,
  })
}

/** IOM Ukraine reads the packet and acknowledges it, as it must before any answer; returns the ETag after. */
async function acknowledge(request: Request, packetId: string): Promise<string> {
  const { etag } = await getPacket(request, packetId, uaCaseworker)
  const response = await answer(request, packetId, 'acknowledge', etag, acknowledgement)
  if (response.statusCode !== 200)
    throw new Error(`acknowledgePacket answered ${response.statusCode}: ${response.body}`)
  return String(response.headers.etag)
}

/** Every case the caller can list, walking the pages. */
async function allCases(request: Request, key: string, query = ''): Promise<CaseSummary[]> {
  const items: CaseSummary[] = []
  let cursor: string | null = null
  do {
    const url: string = `/v1/cases?limit=200${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`
    const response = await request({ method: 'GET', url, key })
    if (response.statusCode !== 200) throw new Error(`listCases answered ${response.statusCode}: ${response.body}`)
    const page = response.json() as CasePage
    items.push(...page.items)
    cursor = page.next_cursor
  } while (cursor !== null)
  return items
}

async function packetIds(request: Request, key: string, query: string): Promise<string[]> {
  const response = await request({ method: 'GET', url: `/v1/packets?limit=200&${query}`, key })
  if (response.statusCode !== 200) throw new Error(`listPackets answered ${response.statusCode}: ${response.body}`)
  return (response.json() as PacketPage).items.map((item) => item.id)
}

/** The packets IOM Poland sent for one case, newest first. */
async function outboundOf(request: Request, caseId: string): Promise<string[]> {
  const response = await request({ method: 'GET', url: '/v1/packets?limit=200&direction=outbound', key: plCaseworker })
  return (response.json() as PacketPage).items.filter((item) => item.case_id === caseId).map((item) => item.id)
}

const sorted = (ids: string[]) => [...ids].sort()

t.test('consents', async (t) => {
  const app = await startTestApp(t)
  const { request } = app

  t.test('a child case needs a guardian to consent too', async (t) => {
    const year = new Date().getUTCFullYear()
    const profiles: [string, Record<string, unknown>][] = [
      [
        'flagged unaccompanied_or_separated_child',
        { country_of_return: 'UA', vulnerabilities: ['victim_of_trafficking', 'unaccompanied_or_separated_child'] },
      ],
      ['in age band 14_17', { age_band: '14_17', country_of_return: 'UA', vulnerabilities: ['victim_of_trafficking'] }],
      ['born 12 years ago', { year_of_birth: year - 12, country_of_return: 'UA', vulnerabilities: [] }],
    ]
    for (const [label, profile] of profiles) {
      const child = await openCase(request, { profile, sections })
      const without = await request({
        method: 'POST',
        url: `/v1/cases/${child.id}/consents`,
        key: plCaseworker,
        payload: consentBody(['identity']),
      })
      problem(t, without, 422, 'guardian-required')
      const nullGuardian = await request({
        method: 'POST',
        url: `/v1/cases/${child.id}/consents`,
        key: plCaseworker,
        payload: consentBody(['identity'], [IOM_UKRAINE], { guardian: null }),
      })
      problem(t, nullGuardian, 422, 'guardian-required')
      const guardian = { name: 'Halyna Kovalenko', relationship: 'parent' }
      const withGuardian = await request({
        method: 'POST',
        url: `/v1/cases/${child.id}/consents`,
        key: plCaseworker,
        payload: consentBody(['identity'], [IOM_UKRAINE], { guardian, child_views: 'Wants to go home to her aunt.' }),
      })
      t.equal(withGuardian.statusCode, 201, `a child ${label}: consent with a guardian is recorded`)
      t.match(withGuardian.json(), { guardian, child_views: 'Wants to go home to her aunt.', status: 'active' })
      const list = await request({ method: 'GET', url: `/v1/cases/${child.id}/consents`, key: plCaseworker })
      t.equal((list.json() as Schemas['ConsentList']).items.length, 1, 'the refused consents were not stored')
    }

    const adult = await openCase(request)
    const adultConsent = await request({
      method: 'POST',
      url: `/v1/cases/${adult.id}/consents`,
      key: plCaseworker,
      payload: consentBody(['identity']),
    })
    t.equal(adultConsent.statusCode, 201, 'an adult consents without a guardian')
  })

  t.test('an expired consent covers nothing and shows as expired', async (t) => {
    const theCase = await openCase(request)
    await recordConsent(request, theCase.id, consentBody(['identity', 'psychosocial']))
    const expired = await recordConsent(
      request,
      theCase.id,
      consentBody(['health'], [IOM_UKRAINE], { given_at: hoursAgo(3), expires_at: hoursAgo(2) }),
    )
    t.equal(expired.status, 'expired', 'recorded as expired')
    const read = await request({
      method: 'GET',
      url: `/v1/cases/${theCase.id}/consents/${expired.id}`,
      key: plCaseworker,
    })
    t.equal(read.statusCode, 200)
    t.equal((read.json() as Consent).status, 'expired', 'reads as expired')

    await decideReturn(app, theCase.id)
    const packet = await sendPacket(request, theCase.id)
    t.equal(packet.kind, 'enquiry')
    t.same(packet.included_categories, ['psychosocial'], 'only a category of the active consent goes in')
    t.same(
      packet.withheld,
      [
        { category: 'identity', reason: 'not_needed_for_purpose' },
        { category: 'health', reason: 'expired' },
        { category: 'legal', reason: 'not_needed_for_purpose' },
      ],
      'health, covered only by the expired consent, is withheld as expired; identity and the return decision stay out of an enquiry',
    )
    t.same(Object.keys(packet.content.sections), ['psychosocial'])

    const backwards = await request({
      method: 'POST',
      url: `/v1/cases/${theCase.id}/consents`,
      key: plCaseworker,
      payload: consentBody(['health'], [IOM_UKRAINE], { given_at: hoursAgo(2), expires_at: hoursAgo(3) }),
    })
    problem(t, backwards, 422, 'invalid-consent')
  })

  t.test('a consent naming an unknown recipient is refused', async (t) => {
    const theCase = await openCase(request)
    const response = await request({
      method: 'POST',
      url: `/v1/cases/${theCase.id}/consents`,
      key: plCaseworker,
      payload: consentBody(['identity'], [IOM_UKRAINE, UNKNOWN_ORGANISATION]),
    })
    const body = problem(t, response, 422, 'unknown-recipient')
    t.match(body.detail, UNKNOWN_ORGANISATION, 'detail names the unknown organisation')
    const list = await request({ method: 'GET', url: `/v1/cases/${theCase.id}/consents`, key: plCaseworker })
    t.same((list.json() as Schemas['ConsentList']).items, [], 'nothing was recorded')
  })
})

t.test('packets', async (t) => {
  const app = await startTestApp(t)
  const { request } = app

  t.test('a packet to an organisation that cannot receive referrals is refused', async (t) => {
    const theCase = await openCase(request)
    await recordConsent(request, theCase.id, consentBody(['identity'], [BORDER_GUARD_POLAND, IOM_UKRAINE]))
    await decideReturn(app, theCase.id)
    for (const recipient of [BORDER_GUARD_POLAND, IOM_POLAND, UNKNOWN_ORGANISATION]) {
      const response = await request({
        method: 'POST',
        url: `/v1/cases/${theCase.id}/packets`,
        key: plCaseworker,
        payload: { recipient_organisation_id: recipient, purpose: 'return_assistance' },
      })
      problem(t, response, 422, 'recipient-cannot-receive')
    }
    t.same(await packetIds(request, plCaseworker, 'direction=outbound'), [], 'nothing was sent')
    t.equal((await getCase(request, theCase.id)).theCase.step, 'return_decided', 'the case stays where it was')
  })

  t.test('packets go only at the steps of the procedure that send them', async (t) => {
    const theCase = await openCase(request)
    await recordConsent(request, theCase.id, consentBody(['identity', 'health']))
    const early = problem(
      t,
      await request({
        method: 'POST',
        url: `/v1/cases/${theCase.id}/packets`,
        key: plCaseworker,
        payload: { recipient_organisation_id: IOM_UKRAINE, purpose: 'return_assistance' },
      }),
      409,
      'action-not-open',
    )
    t.same(early.open_at, ['return_decided'], 'an enquiry goes once the return is decided')
    t.same(early.path, ['decide_return'], 'which decide_return reaches')
    t.match(early.unmet, [{ code: 'step' }])

    await decideReturn(app, theCase.id)
    const asTransition = await transition(app, theCase.id, plCaseworker, 'send_referral')
    const operation = problem(t, asTransition, 409, 'packet-operation')
    t.match(operation.unmet, [{ code: 'operation' }], 'sending the enquiry is a packet operation, not a transition')
    const unknown = problem(
      t,
      await transition(app, theCase.id, plCaseworker, 'send_everything'),
      422,
      'unknown-action',
    )
    t.ok(
      (unknown.valid_actions as string[] | undefined)?.includes('send_referral'),
      'an unknown action is answered with the valid ones',
    )

    const first = await sendPacket(request, theCase.id)
    t.match(first, { kind: 'enquiry', version: 1, supersedes: null, status: 'sent' })
    t.equal((await getCase(request, theCase.id)).theCase.step, 'referral_sent')
    const second = problem(
      t,
      await request({
        method: 'POST',
        url: `/v1/cases/${theCase.id}/packets`,
        key: plCaseworker,
        payload: { recipient_organisation_id: IOM_UKRAINE, purpose: 'return_assistance' },
      }),
      409,
      'action-not-open',
    )
    t.match(second.unmet, [{ code: 'step' }], 'no second enquiry while the first waits for an answer')
    t.same(await outboundOf(request, theCase.id), [first.id], 'one packet was sent')
  })

  t.test('an update supersedes the referral before it, and the next update that one', async (t) => {
    const { theCase, packet: enquiry, referral } = await referredCase(app)
    const fullId = await acceptReferral(t, app, referral)
    const { packet: full } = await getPacket(request, fullId, plCaseworker)
    t.match(full, { kind: 'referral', version: 2, supersedes: null, status: 'sent' })

    const first = await sendPacket(request, theCase.id)
    t.equal(first.kind, 'update', 'after acceptance a packet to the receiving partner is an update')
    t.equal(first.version, 3, 'the third packet to IOM Ukraine')
    t.equal(first.supersedes, fullId, 'and supersedes the full referral')
    t.equal(first.status, 'sent')
    t.same(first.included_categories, ['identity', 'health'], 'it carries identity now that the person is accepted')
    const { packet: fullNow } = await getPacket(request, fullId, plCaseworker)
    t.equal(fullNow.status, 'superseded', 'the full referral is superseded')
    t.same(
      fullNow.history.map((step) => step.status),
      ['sent', 'superseded'],
    )
    t.match(fullNow.history.at(-1), {
      principal_id: '00000000-0000-4000-8001-000000000101',
      organisation_id: IOM_POLAND,
    })
    const { packet: fullForRecipient, etag } = await getPacket(request, fullId, uaCaseworker)
    t.equal(fullForRecipient.status, 'superseded', 'reading a superseded packet does not mark it received')
    problem(t, await answer(request, fullId, 'accept', etag, {}), 409, 'invalid-state')

    const second = await sendPacket(request, theCase.id)
    t.match(second, { kind: 'update', version: 4, supersedes: first.id })
    t.equal((await getPacket(request, first.id, plCaseworker)).packet.status, 'superseded', 'the first update too')
    t.equal(
      (await getPacket(request, enquiry.id, plCaseworker)).packet.status,
      'accepted',
      'the accepted enquiry is an answer, not something to supersede',
    )
    t.equal((await getCase(request, theCase.id)).theCase.step, 'accepted', 'an update leaves the case at its step')
  })

  t.test('decline needs a reason from the vocabulary and marks the case declined', async (t) => {
    const { theCase, packet } = await referredCase(app)
    const etag = await acknowledge(request, packet.id)
    const badCode = problem(
      t,
      await answer(request, packet.id, 'decline', etag, { reason_code: 'too_busy', reason_text: 'Full.' }),
      400,
      'validation',
    )
    t.ok(
      badCode.errors?.some((error) => error.pointer === '#/reason_code'),
      'errors point at reason_code',
    )
    const noText = problem(t, await answer(request, packet.id, 'decline', etag, { reason_code: 'no_capacity' }), 400)
    t.ok(
      noText.errors?.some((error) => error.pointer === '#/reason_text'),
      'errors point at the missing reason_text',
    )
    t.equal((await getPacket(request, packet.id, plCaseworker)).packet.status, 'acknowledged', 'nothing changed')
    t.equal(
      (await getCase(request, theCase.id, uaCaseworker)).theCase.id,
      theCase.id,
      'having acknowledged, the recipient is a party',
    )

    const declined = await answer(request, packet.id, 'decline', etag, {
      reason_code: 'no_capacity',
      reason_text: 'Our shelter is full until February.',
    })
    t.equal(declined.statusCode, 200)
    const body = declined.json() as Packet
    t.equal(body.status, 'declined')
    t.same(body.decision, {
      outcome: 'declined',
      reason_code: 'no_capacity',
      reason_text: 'Our shelter is full until February.',
    })
    t.equal((await getCase(request, theCase.id)).theCase.step, 'declined', 'the case is declined')
    const notParty = await request({ method: 'GET', url: `/v1/cases/${theCase.id}`, key: uaCaseworker })
    problem(t, notParty, 404, 'not-found')
    t.notOk(
      (await getCase(request, theCase.id)).theCase.parties.some((party) => party.organisation_id === IOM_UKRAINE),
      'a recipient that declines is no longer a party',
    )

    const acceptDeclined = await answer(request, packet.id, 'accept', String(declined.headers.etag), {})
    problem(t, acceptDeclined, 409, 'invalid-state')
    t.equal((await getPacket(request, packet.id, plCaseworker)).packet.status, 'declined', 'still declined')
  })

  t.test('a packet sent after a decline is a new version that supersedes nothing', async (t) => {
    const { theCase, packet } = await referredCase(app)
    const etag = await acknowledge(request, packet.id)
    const declined = await answer(request, packet.id, 'decline', etag, { reason_code: 'other', reason_text: 'Later.' })
    t.equal(declined.statusCode, 200)
    const refused = problem(
      t,
      await request({
        method: 'POST',
        url: `/v1/cases/${theCase.id}/packets`,
        key: plCaseworker,
        payload: { recipient_organisation_id: IOM_UKRAINE, purpose: 'return_assistance' },
      }),
      409,
      'action-not-open',
    )
    t.same(refused.path, ['refer_elsewhere'], 'after a decline, the person is referred again first')
    t.equal((await transition(app, theCase.id, plCaseworker, 'refer_elsewhere')).statusCode, 200)
    t.equal((await getCase(request, theCase.id)).theCase.step, 'return_decided')
    const again = await sendPacket(request, theCase.id)
    t.equal(again.kind, 'enquiry', 'a new enquiry')
    t.equal(again.version, 2, 'the second packet to this recipient')
    t.equal(again.supersedes, null, 'a declined packet is an answer, not something to supersede')
    t.equal((await getPacket(request, packet.id, plCaseworker)).packet.status, 'declined', 'the first stays declined')
  })

  t.test('request-information stores the questions; the answer is an information packet', async (t) => {
    const { theCase, packet } = await referredCase(app)
    const etag = await acknowledge(request, packet.id)
    const questions = ['Does she need a medical escort on the flight?', 'Which city does she return to?']
    const asked = await answer(request, packet.id, 'request-information', etag, { questions })
    t.equal(asked.statusCode, 200)
    const body = asked.json() as Packet
    t.equal(body.status, 'information_requested')
    t.same(body.questions, questions, 'the questions are stored')
    t.same((await getPacket(request, packet.id, plCaseworker)).packet.questions, questions, 'the sender reads them')
    t.equal((await getCase(request, theCase.id)).theCase.step, 'information_requested')
    const empty = await answer(request, packet.id, 'request-information', String(asked.headers.etag), {
      questions: [],
    })
    problem(t, empty, 400, 'validation')

    const answered = await sendPacket(request, theCase.id)
    t.match(answered, { kind: 'information', version: 2, supersedes: null, status: 'sent' })
    t.same(answered.included_categories, ['health'], 'the consented data that answers, still without identity')
    t.same(answered.withheld, [
      { category: 'identity', reason: 'not_needed_for_purpose' },
      { category: 'psychosocial', reason: 'no_consent' },
      { category: 'legal', reason: 'no_consent' },
    ])
    t.equal(
      (await getPacket(request, packet.id, plCaseworker)).packet.status,
      'information_requested',
      'the enquiry with the questions stays open: the answer amends nothing',
    )
    t.equal((await getCase(request, theCase.id)).theCase.step, 'acknowledged', 'the answer takes the case back')
    const { packet: read, etag: answerEtag } = await getPacket(request, answered.id, uaCaseworker)
    t.equal(read.status, 'received', 'IOM Ukraine reads the answer')
    t.notOk(JSON.stringify(read).includes('Kovalenko'), 'which holds no identity')
    problem(t, await answer(request, answered.id, 'accept', answerEtag, {}), 409, 'invalid-state')

    await assessRisk(app, theCase.id)
    const { etag: enquiryEtag } = await getPacket(request, packet.id, uaCaseworker)
    t.equal((await answer(request, packet.id, 'accept', enquiryEtag, {})).statusCode, 200, 'the enquiry is accepted')
    t.equal((await getCase(request, theCase.id)).theCase.step, 'accepted')
  })

  t.test('invalid lifecycle moves are conflicts', async (t) => {
    const { packet } = await referredCase(app)
    const { packet: asSender, etag: sentEtag } = await getPacket(request, packet.id, plCaseworker)
    t.equal(asSender.status, 'sent', 'the sender reading it does not mark it received')
    problem(t, await answer(request, packet.id, 'accept', sentEtag, {}), 409, 'invalid-state')
    problem(t, await answer(request, packet.id, 'decline', sentEtag, { reason_code: 'other', reason_text: 'x' }), 409)
    problem(t, await answer(request, packet.id, 'request-information', sentEtag, { questions: ['?'] }), 409)
    const { packet: stillSent } = await getPacket(request, packet.id, plCaseworker)
    t.equal(stillSent.history.length, 1, 'the refused moves left no trace in the history')

    const { packet: asRecipient, etag: receivedEtag } = await getPacket(request, packet.id, uaCaseworker)
    t.equal(asRecipient.status, 'received', 'the recipient reading it marks it received')
    // No answer before the acknowledgement: the procedure needs a focal point named first.
    problem(t, await answer(request, packet.id, 'accept', receivedEtag, {}), 409, 'invalid-state')
    problem(
      t,
      await answer(request, packet.id, 'decline', receivedEtag, { reason_code: 'other', reason_text: 'x' }),
      409,
      'invalid-state',
    )
    problem(
      t,
      await answer(request, packet.id, 'request-information', receivedEtag, { questions: ['?'] }),
      409,
      'invalid-state',
    )
    const { packet: stillReceived } = await getPacket(request, packet.id, plCaseworker)
    t.same(
      stillReceived.history.map((step) => step.status),
      ['sent', 'received'],
      'the refused answers left no trace in the history',
    )
    t.equal((await getCase(request, packet.case_id)).theCase.step, 'referral_sent', 'nor on the case')

    const etag = await acknowledge(request, packet.id)
    await assessRisk(app, packet.case_id)
    const asSenderAnswer = await request({
      method: 'POST',
      url: `/v1/packets/${packet.id}/accept`,
      key: plCaseworker,
      headers: { 'if-match': etag },
      payload: {},
    })
    problem(t, asSenderAnswer, 403)
    const accepted = await answer(request, packet.id, 'accept', etag, {})
    t.equal(accepted.statusCode, 200)
    const acceptedEtag = String(accepted.headers.etag)
    problem(t, await answer(request, packet.id, 'accept', acceptedEtag, {}), 409, 'invalid-state')
    problem(t, await answer(request, packet.id, 'acknowledge', acceptedEtag, acknowledgement), 409, 'invalid-state')
    problem(
      t,
      await answer(request, packet.id, 'decline', acceptedEtag, { reason_code: 'other', reason_text: 'Changed.' }),
      409,
      'invalid-state',
    )
  })

  t.test('answers need If-Match: none is 428, a stale one is 412', async (t) => {
    const { packet } = await referredCase(app)
    const { etag: receivedEtag } = await getPacket(request, packet.id, uaCaseworker)
    problem(t, await answer(request, packet.id, 'acknowledge', undefined, acknowledgement), 428, 'if-match-required')
    const staleRead = problem(
      t,
      await answer(request, packet.id, 'acknowledge', '"1"', acknowledgement),
      412,
      'stale-version',
    )
    t.equal(staleRead.current_etag, receivedEtag, 'a 412 names the current ETag')
    const acknowledged = await answer(request, packet.id, 'acknowledge', receivedEtag, acknowledgement)
    t.equal(acknowledged.statusCode, 200)
    problem(t, await answer(request, packet.id, 'accept', undefined, {}), 428, 'if-match-required')
    const stale = problem(t, await answer(request, packet.id, 'accept', receivedEtag, {}), 412, 'stale-version')
    t.equal(stale.current_etag, acknowledged.headers.etag, 'current_etag is the ETag after the acknowledgement')
    t.equal((await getPacket(request, packet.id, plCaseworker)).packet.status, 'acknowledged', 'nothing changed')
  })

  t.test('the recipient is a party to the case from its acknowledgement, not before', async (t) => {
    const { theCase, packet } = await referredCase(app)
    const asRecipient = () => request({ method: 'GET', url: `/v1/cases/${theCase.id}`, key: uaCaseworker })
    problem(t, await asRecipient(), 404, 'not-found')
    await getPacket(request, packet.id, uaCaseworker)
    problem(t, await asRecipient(), 404, 'not-found')
    t.notOk(
      (await allCases(request, uaCaseworker)).some((item) => item.id === theCase.id),
      'reading the packet does not make it a party',
    )

    const etag = await acknowledge(request, packet.id)
    const read = await asRecipient()
    t.equal(read.statusCode, 200, 'after acknowledging, the recipient reads the case')
    const body = read.json() as Case
    t.same(Object.keys(body.sections), ['health'], 'only the consented sections, and no identity before acceptance')
    t.same(
      body.profile,
      { age_band: '25_34', sex: 'female', country_of_return: 'UA', vulnerabilities: ['victim_of_trafficking'] },
      'the shared profile: no nationality',
    )
    t.equal(body.step, 'acknowledged', 'the case is acknowledged')
    t.equal(body.lead_organisation_id, IOM_POLAND, 'the sender still leads')
    t.equal(body.receiving_organisation_id, null, 'acknowledging is not accepting')
    const receiving = (found: Case) => found.parties.filter((party) => party.organisation_id === IOM_UKRAINE)
    t.same(
      receiving(body).map(({ organisation_id, role }) => ({ organisation_id, role })),
      [{ organisation_id: IOM_UKRAINE, role: 'receiving' }],
      'one party, on the receiving side',
    )
    t.same(receiving((await getCase(request, theCase.id)).theCase), receiving(body), 'the sender sees the same party')
    t.ok(
      (await allCases(request, uaCaseworker)).some((item) => item.id === theCase.id),
      'and the case is in its list',
    )

    await assessRisk(app, theCase.id)
    t.equal((await answer(request, packet.id, 'accept', etag, {})).statusCode, 200)
    const { theCase: accepted } = await getCase(request, theCase.id, uaCaseworker)
    t.equal(accepted.receiving_organisation_id, IOM_UKRAINE, 'accepting makes it the receiving partner')
    t.same(Object.keys(accepted.sections), ['identity', 'health'], 'which now reads who the person is')
    t.same(receiving(accepted), receiving(body), 'and leaves it the one party it already was')
  })

  t.test('after acceptance the receiving partner reads but does not lead', async (t) => {
    const { theCase, packet } = await referredCase(app)
    const etag = await acknowledge(request, packet.id)
    await assessRisk(app, theCase.id)
    t.equal((await answer(request, packet.id, 'accept', etag, {})).statusCode, 200)
    const { theCase: asReceiver, etag: caseEtag } = await getCase(request, theCase.id, uaCaseworker)
    t.equal(asReceiver.step, 'accepted')
    const patch = await request({
      method: 'PATCH',
      url: `/v1/cases/${theCase.id}`,
      key: uaCaseworker,
      headers: { 'if-match': caseEtag },
      payload: { sections: { contact: { phone: '+380 44 000 0000' } } },
    })
    problem(t, patch, 403, 'not-lead')
    const consent = await request({
      method: 'POST',
      url: `/v1/cases/${theCase.id}/consents`,
      key: uaCaseworker,
      payload: consentBody(['identity']),
    })
    problem(t, consent, 403, 'not-lead')
    const before = await outboundOf(request, theCase.id)
    const send = await request({
      method: 'POST',
      url: `/v1/cases/${theCase.id}/packets`,
      key: uaCaseworker,
      payload: { recipient_organisation_id: KYIV_SHELTER, purpose: 'return_assistance' },
    })
    const notSender = problem(t, send, 409, 'preconditions-unmet')
    t.match(notSender.unmet, [{ code: 'actor.side' }], 'only the sending partner sends the case on')
    t.same(await outboundOf(request, theCase.id), before, 'the receiving partner passed nothing on')
    const { theCase: unchanged } = await getCase(request, theCase.id)
    t.equal(unchanged.version, asReceiver.version, 'the case did not change')
    t.same(Object.keys(unchanged.sections).sort(), ['health', 'identity', 'psychosocial'])
  })
})

t.test('case updates, idempotency and the audit trail', async (t) => {
  const { request } = await startTestApp(t)

  t.test('PATCH needs If-Match, replaces sections whole and removes null ones', async (t) => {
    const theCase = await openCase(request)
    const url = `/v1/cases/${theCase.id}`
    const change = {
      sections: { psychosocial: null, contact: { phone: '+380 44 000 0000', preferred_language: 'uk' } },
    }

    problem(t, await request({ method: 'PATCH', url, key: plCaseworker, payload: change }), 428, 'if-match-required')

    const updated = await request({
      method: 'PATCH',
      url,
      key: plCaseworker,
      headers: { 'if-match': '"1"' },
      payload: change,
    })
    t.equal(updated.statusCode, 200)
    const body = updated.json() as Case
    t.equal(body.version, 2)
    t.equal(updated.headers.etag, '"2"', 'the ETag moves on')
    t.same(
      body.sections,
      { identity: sections.identity, health: sections.health, contact: change.sections.contact },
      'psychosocial is gone, contact is added, the rest is untouched',
    )
    t.notOk('psychosocial' in (await getCase(request, theCase.id)).theCase.sections, 'the removal is stored')

    const stale = await request({
      method: 'PATCH',
      url,
      key: plCaseworker,
      headers: { 'if-match': '"1"' },
      payload: { sections: { health: null } },
    })
    const staleBody = problem(t, stale, 412, 'stale-version')
    t.equal(staleBody.current_etag, '"2"', 'the 412 names the current ETag')
    t.ok((await getCase(request, theCase.id)).theCase.sections.health, 'the stale change was not applied')

    const unknownField = await request({
      method: 'PATCH',
      url,
      key: plCaseworker,
      headers: { 'if-match': '"2"' },
      payload: { sections: { identity: { given_name: 'Olena', colour: 'blue' } } },
    })
    const invalid = problem(t, unknownField, 400, 'validation')
    t.ok(
      invalid.errors?.some((error) => error.pointer === '#/sections/identity/colour'),
      'errors point at the unknown field',
    )
    const unknownSection = await request({
      method: 'PATCH',
      url,
      key: plCaseworker,
      headers: { 'if-match': '"2"' },
      payload: { sections: { hobbies: { chess: true } } },
    })
    const invalidSection = problem(t, unknownSection, 400, 'validation')
    t.ok(
      invalidSection.errors?.some((error) => error.pointer === '#/sections/hobbies'),
      'errors point at the unknown section',
    )
    t.equal((await getCase(request, theCase.id)).theCase.version, 2, 'the invalid changes were not applied')

    const replaced = await request({
      method: 'PATCH',
      url,
      key: plCaseworker,
      headers: { 'if-match': '"2"' },
      payload: { sections: { health: { allergies: ['penicillin'] } } },
    })
    t.equal(replaced.statusCode, 200)
    t.same((replaced.json() as Case).sections.health, { allergies: ['penicillin'] }, 'a section is replaced whole')
  })

  t.test('an Idempotency-Key replays the first answer and creates nothing new', async (t) => {
    const before = (await allCases(request, plCaseworker)).length
    const body = { profile: adultProfile, sections: { identity: { given_name: 'Mariia' } } }
    const key = `create-case-${Date.now()}`
    const first = await request({
      method: 'POST',
      url: '/v1/cases',
      key: plCaseworker,
      headers: { 'idempotency-key': key },
      payload: body,
    })
    t.equal(first.statusCode, 201)
    t.notOk(first.headers['idempotent-replayed'], 'the first answer is not a replay')
    const replay = await request({
      method: 'POST',
      url: '/v1/cases',
      key: plCaseworker,
      headers: { 'idempotency-key': key },
      payload: body,
    })
    t.equal(replay.statusCode, 201, 'the replay answers as the first did')
    t.equal(replay.headers['idempotent-replayed'], 'true', 'and says it is a replay')
    t.same(replay.json(), first.json(), 'with the same body')
    t.equal(replay.headers.location, first.headers.location, 'and the same Location')
    t.equal(replay.headers.etag, first.headers.etag, 'and the same ETag')
    t.equal((await allCases(request, plCaseworker)).length, before + 1, 'one case was created, not two')

    const otherBody = await request({
      method: 'POST',
      url: '/v1/cases',
      key: plCaseworker,
      headers: { 'idempotency-key': key },
      payload: { ...body, sections: { identity: { given_name: 'Oksana' } } },
    })
    problem(t, otherBody, 422, 'idempotency-key-reused')
    t.equal((await allCases(request, plCaseworker)).length, before + 1, 'the reused key created nothing')

    const fresh = await request({
      method: 'POST',
      url: '/v1/cases',
      key: plCaseworker,
      headers: { 'idempotency-key': `${key}-2` },
      payload: body,
    })
    t.equal(fresh.statusCode, 201)
    t.not((fresh.json() as Case).id, (first.json() as Case).id, 'a new key makes a new case')
    t.equal((await allCases(request, plCaseworker)).length, before + 2)
  })

  t.test('only the dpo or auditor of a party reads the audit trail', async (t) => {
    const theCase = await openCase(request)
    const url = `/v1/cases/${theCase.id}/audit`
    problem(t, await request({ method: 'GET', url, key: plCaseworker }), 403)
    problem(t, await request({ method: 'GET', url, key: plSupervisor }), 403)
    problem(t, await request({ method: 'GET', url, key: auditor }), 404)
    const read = await request({ method: 'GET', url, key: plDpo })
    t.equal(read.statusCode, 200, 'the dpo of IOM Poland reads it')
    const page = read.json() as Schemas['AuditPage']
    t.match(page.items[0], {
      action: 'createCase',
      principal_id: '00000000-0000-4000-8001-000000000101',
      organisation_id: IOM_POLAND,
      case_id: theCase.id,
      resource_type: 'case',
      resource_id: theCase.id,
    })
    t.same(
      page.items[0]?.details,
      { reference: theCase.reference, sections: Object.keys(sections) },
      'the opening names the case by its reference and the sections it was given',
    )
  })
})

t.test('listing cases and packets', async (t) => {
  const app = await startTestApp(t)
  const { request } = app
  const opened = await openCase(request)
  const referred = await referredCase(app)
  const accepted = await referredCase(app)
  const declined = await referredCase(app)
  await openCase(request, { profile: adultProfile, sections }, ngoCaseworker)
  const fullReferral = await acceptReferral(t, app, accepted.referral)
  {
    const etag = await acknowledge(request, declined.packet.id)
    const response = await answer(request, declined.packet.id, 'decline', etag, {
      reason_code: 'outside_service_area',
      reason_text: 'We do not work in that region.',
    })
    t.equal(response.statusCode, 200)
  }
  const mine = [opened.id, referred.theCase.id, accepted.theCase.id, declined.theCase.id]

  t.test('listCases shows the cases of the caller, newest first, without sections', async (t) => {
    const all = await allCases(request, plCaseworker)
    t.same(
      all.map((item) => item.id),
      [...mine].reverse(),
      'exactly the cases of IOM Poland, newest first',
    )
    t.notOk(
      all.some((item) => 'sections' in item),
      'no sections in the list',
    )
    t.same(
      (await allCases(request, uaCaseworker)).map((item) => item.id),
      [accepted.theCase.id],
      'IOM Ukraine lists only the case it accepted: not the one it declined, nor the one it has not acknowledged',
    )
  })

  t.test('listCases filters by step, counterpart and updated_since', async (t) => {
    const byStep: [string, string[]][] = [
      ['identified', [opened.id]],
      ['referral_sent', [referred.theCase.id]],
      ['accepted', [accepted.theCase.id]],
      ['declined', [declined.theCase.id]],
      ['information_requested', []],
      ['closed', []],
    ]
    for (const [step, ids] of byStep) {
      const listed = await allCases(request, plCaseworker, `&step=${step}`)
      t.same(
        listed.map((item) => item.id),
        ids,
        `step=${step}`,
      )
      t.ok(
        listed.every((item) => item.step === step),
        `every case listed for step=${step} is at that step`,
      )
    }
    t.same(
      (await allCases(request, plCaseworker, `&counterpart=${IOM_UKRAINE}`)).map((item) => item.id),
      [accepted.theCase.id],
      'counterpart=IOM Ukraine: the one case it is party to',
    )
    t.same(await allCases(request, plCaseworker, `&counterpart=${UNKNOWN_ORGANISATION}`), [], 'unknown counterpart')
    problem(t, await request({ method: 'GET', url: '/v1/cases?step=Closed!', key: plCaseworker }), 400, 'validation')
    const noState = problem(
      t,
      await request({ method: 'GET', url: '/v1/cases?state=referred', key: plCaseworker }),
      400,
      'validation',
    )
    t.ok(
      noState.errors?.some((error) => error.parameter === 'state'),
      'the step is the only status: there is no state filter',
    )

    // Touch the oldest case, so that it is the most recently updated.
    const { etag } = await getCase(request, opened.id)
    await new Promise((resolve) => setTimeout(resolve, 5))
    const touched = await request({
      method: 'PATCH',
      url: `/v1/cases/${opened.id}`,
      key: plCaseworker,
      headers: { 'if-match': etag },
      payload: { sections: { contact: { preferred_language: 'uk' } } },
    })
    t.equal(touched.statusCode, 200)
    const since = (touched.json() as Case).updated_at
    const all = await allCases(request, plCaseworker)
    const expected = all.filter((item) => Date.parse(item.updated_at) >= Date.parse(since)).map((item) => item.id)
    t.ok(expected.includes(opened.id), 'the touched case was updated at that time')
    t.ok(expected.length < all.length, 'some cases were updated earlier')
    t.same(
      (await allCases(request, plCaseworker, `&updated_since=${encodeURIComponent(since)}`)).map((item) => item.id),
      expected,
      'updated_since: exactly the cases changed at or after that time',
    )
    const earliest = all.map((item) => item.updated_at).sort()[0] as string
    t.equal(
      (await allCases(request, plCaseworker, `&updated_since=${encodeURIComponent(earliest)}`)).length,
      all.length,
      'updated_since the earliest change: every case',
    )
    const future = new Date(Date.now() + 86_400_000).toISOString()
    t.same(await allCases(request, plCaseworker, `&updated_since=${encodeURIComponent(future)}`), [], 'future: none')
    problem(t, await request({ method: 'GET', url: '/v1/cases?updated_since=yesterday', key: plCaseworker }), 400)
  })

  t.test('cursor pagination with limit=1 walks every case exactly once', async (t) => {
    const all = (await allCases(request, plCaseworker)).map((item) => item.id)
    const walked: string[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const url: string = `/v1/cases?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`
      const response = await request({ method: 'GET', url, key: plCaseworker })
      t.equal(response.statusCode, 200)
      const page = response.json() as CasePage
      t.ok(page.items.length <= 1, 'at most one case per page')
      walked.push(...page.items.map((item) => item.id))
      cursor = page.next_cursor
      pages += 1
    } while (cursor !== null && pages <= all.length + 1)
    t.same(walked, all, 'the pages hold every case once, in order')
    t.equal(pages, all.length, 'and end with the last case')
    problem(t, await request({ method: 'GET', url: '/v1/cases?cursor=bm90LWEtY3Vyc29y', key: plCaseworker }), 400)
  })

  t.test('listPackets filters by direction and status', async (t) => {
    // In the order they were sent: three enquiries, then the full referral that followed the acceptance.
    const sent = [referred.packet.id, accepted.packet.id, declined.packet.id, fullReferral]
    t.same(
      sorted(await packetIds(request, plCaseworker, 'direction=outbound')),
      sorted(sent),
      'outbound: every packet IOM Poland sent',
    )
    t.same(await packetIds(request, plCaseworker, 'direction=inbound'), [], 'IOM Poland received none')
    t.same(
      sorted(await packetIds(request, uaCaseworker, 'direction=inbound')),
      sorted(sent),
      'inbound: every packet IOM Ukraine received',
    )
    t.same(await packetIds(request, uaCaseworker, 'direction=outbound'), [], 'IOM Ukraine sent none')
    const byStatus: [string, string[]][] = [
      ['sent', [fullReferral, referred.packet.id]],
      ['accepted', [accepted.packet.id]],
      ['declined', [declined.packet.id]],
      ['received', []],
      ['superseded', []],
    ]
    for (const [status, ids] of byStatus) {
      t.same(await packetIds(request, uaCaseworker, `direction=inbound&status=${status}`), ids, `status=${status}`)
      t.same(await packetIds(request, plCaseworker, `direction=outbound&status=${status}`), ids, `outbound ${status}`)
    }
    const kinds = await request({ method: 'GET', url: '/v1/packets?direction=inbound', key: uaCaseworker })
    t.same(
      (kinds.json() as PacketPage).items.map((item) => [item.id, item.kind]),
      [
        [fullReferral, 'referral'],
        [declined.packet.id, 'enquiry'],
        [accepted.packet.id, 'enquiry'],
        [referred.packet.id, 'enquiry'],
      ],
      'each packet says what kind it is',
    )
    const response = await request({ method: 'GET', url: '/v1/packets?direction=outbound', key: plCaseworker })
    t.notOk(response.body.includes('Kovalenko'), 'the list holds no content')
    problem(t, await request({ method: 'GET', url: '/v1/packets', key: plCaseworker }), 400, 'validation')
    problem(t, await request({ method: 'GET', url: '/v1/packets?direction=sideways', key: plCaseworker }), 400)

    const walked: string[] = []
    let cursor: string | null = null
    do {
      const url: string = `/v1/packets?direction=outbound&limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`
      const page = (await request({ method: 'GET', url, key: plCaseworker })).json() as PacketPage
      walked.push(...page.items.map((item) => item.id))
      cursor = page.next_cursor
    } while (cursor !== null && walked.length <= sent.length)
    t.same(walked, [...sent].reverse(), 'packets page newest first, each once')
  })
})
