import { createHash } from 'node:crypto'
import canonicalize from 'canonicalize'
import type { LightMyRequestResponse } from 'fastify'
import t from 'tap'
import type { components } from '../openapi/dist/types.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { demoKeys, startTestApp } from './fixtures/app.js'
import { record } from './fixtures/referral.js'

type Schemas = components['schemas']
type Case = Schemas['Case']
type Consent = Schemas['Consent']
type Packet = Schemas['Packet']
type PacketPage = Schemas['PacketPage']
type AuditRecord = Schemas['AuditRecord']
type AuditPage = Schemas['AuditPage']
type Problem = Schemas['Problem']

const IOM_POLAND = demoOrganisationIds.iomPoland
const IOM_UKRAINE = demoOrganisationIds.iomUkraine
const PL_CASEWORKER = '00000000-0000-4000-8001-000000000101'
const UA_CASEWORKER = '00000000-0000-4000-8001-000000000201'

const plCaseworker = demoKeys.demoiomplcw1 as string
const uaCaseworker = demoKeys.demoiomuacw1 as string
const plDpo = demoKeys.demoiompldpo as string

/** A name that must never reach anyone who may not read the identity section. */
const GIVEN_NAME = 'Olenka-Scenario-Zoriana'

const newCase = {
  profile: {
    age_band: '25_34',
    sex: 'female',
    nationality: 'UA',
    languages: ['uk', 'ru'],
    country_of_return: 'UA',
    vulnerabilities: ['victim_of_trafficking'],
  },
  sections: {
    identity: { given_name: GIVEN_NAME, family_name: 'Kovalenko', date_of_birth: '1994-03-02' },
    health: { conditions: ['post-traumatic stress'], notes: 'Needs a female doctor.' },
    psychosocial: { assessment_summary: 'Stable, engaged with counselling.', support_needs: ['counselling'] },
  },
}

const acknowledgement = {
  focal_point: {
    name: 'Iryna Shevchenko',
    role: 'Counter-trafficking officer',
    email: 'focal@iom-ua.example',
    phone: '+380 44 000 0001',
  },
  alternate_contact: { name: 'Petro Bondarenko', role: 'Programme assistant', email: 'alternate@iom-ua.example' },
}

function sha256OfCanonical(value: unknown): string {
  return createHash('sha256')
    .update(canonicalize(value) ?? '')
    .digest('hex')
}

/** What any party but the sending partner and the lead sees of the profile: no nationality. */
const sharedProfile = {
  age_band: '25_34',
  sex: 'female',
  languages: ['uk', 'ru'],
  country_of_return: 'UA',
  vulnerabilities: ['victim_of_trafficking'],
}

function requestIdOf(response: LightMyRequestResponse): string {
  return String(response.headers['x-request-id'])
}

t.test('a referral from IOM Poland to IOM Ukraine, end to end, then the consent is withdrawn', async (t) => {
  const app = await startTestApp(t)
  const { request } = app
  /** The steps whose audit records we expect: the request id each answered with, and who made it. */
  const steps: { action: string; requestId: string; principal: string; organisation: string }[] = []
  const remember = (action: string, response: LightMyRequestResponse, principal: string, organisation: string) => {
    t.ok(response.headers['x-request-id'], `${action} answers with x-request-id`)
    steps.push({ action, requestId: requestIdOf(response), principal, organisation })
  }
  const stepOf = async (caseId: string) =>
    ((await request({ method: 'GET', url: `/v1/cases/${caseId}`, key: plCaseworker })).json() as Case).step

  // 1. IOM Poland opens the case.
  const created = await request({ method: 'POST', url: '/v1/cases', key: plCaseworker, payload: newCase })
  t.equal(created.statusCode, 201, 'the case is opened')
  const theCase = created.json() as Case
  remember('createCase', created, PL_CASEWORKER, IOM_POLAND)
  t.equal(created.headers.location, `/v1/cases/${theCase.id}`, 'Location names the case')
  t.equal(created.headers.etag, `"${theCase.version}"`, 'ETag is the version')
  t.same(theCase.sop, { id: 'adult-return', version: 2 }, 'an adult follows the adult return procedure')
  t.equal(theCase.step, 'identified', 'the case starts at the first step of its procedure')
  t.match(theCase.reference, /^PL-UA-\d{4}-\d{6}$/, 'reference: sending country, country of return, year, number')
  t.equal(theCase.lead_organisation_id, IOM_POLAND)
  t.equal(theCase.sending_organisation_id, IOM_POLAND)
  t.equal(theCase.receiving_organisation_id, null)
  t.same(
    theCase.parties.map((party) => [party.organisation_id, party.role]),
    [[IOM_POLAND, 'sending']],
  )
  t.same(theCase.sections, newCase.sections, 'all three sections are stored')

  const beforeReferral = await request({ method: 'GET', url: `/v1/cases/${theCase.id}`, key: uaCaseworker })
  t.equal(beforeReferral.statusCode, 404, 'IOM Ukraine, not yet a party, cannot see the case')

  // 2. IOM Poland records the consent: identity and health to IOM Ukraine for return assistance.
  const givenAt = new Date(Date.now() - 60 * 60_000).toISOString()
  const consented = await request({
    method: 'POST',
    url: `/v1/cases/${theCase.id}/consents`,
    key: plCaseworker,
    payload: {
      given_at: givenAt,
      method: 'written',
      language: 'uk',
      interpreter: { used: true, name: 'Interpreter of IOM Poland' },
      guardian: null,
      provisions: [{ categories: ['identity', 'health'], recipients: [IOM_UKRAINE], purposes: ['return_assistance'] }],
      expires_at: null,
    },
  })
  t.equal(consented.statusCode, 201, 'the consent is recorded')
  const consent = consented.json() as Consent
  remember('recordConsent', consented, PL_CASEWORKER, IOM_POLAND)
  t.equal(consented.headers.location, `/v1/cases/${theCase.id}/consents/${consent.id}`)
  t.match(consent, {
    case_id: theCase.id,
    status: 'active',
    recorded_by_principal_id: PL_CASEWORKER,
    recorded_by_organisation_id: IOM_POLAND,
    withdrawn_at: null,
  })
  t.equal(new Date(consent.given_at).getTime(), new Date(givenAt).getTime(), 'given_at as recorded')

  // 3. Nothing goes to IOM Ukraine before the person decided to return.
  const early = await request({
    method: 'POST',
    url: `/v1/cases/${theCase.id}/packets`,
    key: plCaseworker,
    payload: { recipient_organisation_id: IOM_UKRAINE, purpose: 'return_assistance' },
  })
  t.equal(early.statusCode, 409, 'an enquiry before the return decision is refused')
  const notOpen = early.json() as Problem
  t.equal(notOpen.type, 'urn:trm:problem:action-not-open')
  t.same(notOpen.open_at, ['return_decided'], 'the problem says at which step an enquiry goes')
  t.same(notOpen.path, ['decide_return'], 'and the way there')
  t.match(notOpen.unmet, [{ code: 'step' }], 'the first thing unmet is the step')
  t.equal(await stepOf(theCase.id), 'identified', 'the case did not move')

  const decision = await record(app, theCase.id, plCaseworker, 'return_decision')
  t.equal(decision.statusCode, 201, 'IOM Poland records the return decision')
  remember('createCaseRecord', decision, PL_CASEWORKER, IOM_POLAND)
  const decided = await request({
    method: 'POST',
    url: `/v1/cases/${theCase.id}/transitions`,
    key: plCaseworker,
    headers: { 'if-match': `"${theCase.version}"` },
    payload: { action: 'decide_return' },
  })
  t.equal(decided.statusCode, 200, 'and takes it')
  remember('performTransition', decided, PL_CASEWORKER, IOM_POLAND)
  t.equal(await stepOf(theCase.id), 'return_decided')

  // 4. IOM Poland sends the enquiry: the minimum to decide, without the person's identity.
  const sent = await request({
    method: 'POST',
    url: `/v1/cases/${theCase.id}/packets`,
    key: plCaseworker,
    payload: { recipient_organisation_id: IOM_UKRAINE, purpose: 'return_assistance', note: 'Return planned soon.' },
  })
  t.equal(sent.statusCode, 201, 'the enquiry is sent')
  const packet = sent.json() as Packet
  remember('sendPacket', sent, PL_CASEWORKER, IOM_POLAND)
  t.equal(sent.headers.location, `/v1/packets/${packet.id}`)
  t.ok(sent.headers.etag, 'the packet has an ETag')
  t.match(packet, {
    case_id: theCase.id,
    case_reference: theCase.reference,
    kind: 'enquiry',
    version: 1,
    sender_organisation_id: IOM_POLAND,
    recipient_organisation_id: IOM_UKRAINE,
    purpose: 'return_assistance',
    status: 'sent',
    supersedes: null,
    acknowledgement: null,
    decision: null,
    questions: null,
  })
  t.same(packet.included_categories, ['health'], 'only health goes in')
  t.same(
    packet.withheld,
    [
      { category: 'identity', reason: 'not_needed_for_purpose' },
      { category: 'psychosocial', reason: 'no_consent' },
      { category: 'legal', reason: 'not_needed_for_purpose' },
    ],
    'identity stays out although consented; psychosocial is not consented; the return decision (legal) stays out',
  )
  t.same(
    packet.content,
    { profile: sharedProfile, sections: { health: newCase.sections.health }, records: [] },
    'the content holds the shared profile and the consented health section',
  )
  t.notOk(sent.body.includes(GIVEN_NAME), 'the given name is not in the enquiry')
  t.match(packet.content_hash, /^[0-9a-f]{64}$/, 'content_hash is 64 hex digits')
  t.equal(packet.content_hash, sha256OfCanonical(packet.content), 'content_hash is SHA-256 of the canonical content')
  t.same(packet.withdrawn_categories, [])
  t.equal(packet.history.length, 1)
  t.match(packet.history[0], { status: 'sent', principal_id: PL_CASEWORKER, organisation_id: IOM_POLAND })

  const referred = await request({ method: 'GET', url: `/v1/cases/${theCase.id}`, key: plCaseworker })
  t.equal((referred.json() as Case).step, 'referral_sent', 'sending the enquiry took the case to referral_sent')
  remember('getCase', referred, PL_CASEWORKER, IOM_POLAND)

  // 5. IOM Ukraine finds it in its inbox.
  const inbox = await request({ method: 'GET', url: '/v1/packets?direction=inbound', key: uaCaseworker })
  t.equal(inbox.statusCode, 200)
  const inboxPage = inbox.json() as PacketPage
  const listed = inboxPage.items.find((item) => item.id === packet.id)
  t.ok(listed, 'the packet is in the inbox of IOM Ukraine')
  t.match(listed, {
    kind: 'enquiry',
    status: 'sent',
    case_reference: theCase.reference,
    content_hash: packet.content_hash,
  })
  t.notOk('content' in (listed ?? {}), 'the inbox lists packets without their content')
  t.notOk(inbox.body.includes(GIVEN_NAME), 'the inbox holds no personal data')

  // 6. IOM Ukraine reads it: it is received.
  const read = await request({ method: 'GET', url: `/v1/packets/${packet.id}`, key: uaCaseworker })
  t.equal(read.statusCode, 200)
  const received = read.json() as Packet
  remember('getPacket', read, UA_CASEWORKER, IOM_UKRAINE)
  t.equal(received.status, 'received', 'the first read by the recipient records receipt')
  t.same(received.content, packet.content, 'the recipient reads the consented content')
  t.notOk(read.body.includes(GIVEN_NAME), 'and not who the person is')
  t.equal(received.content_hash, sha256OfCanonical(received.content), 'the recipient can verify the hash')
  t.same(received.withdrawn_categories, [])
  t.equal(received.history.length, 2, 'history: sent, received')
  t.match(received.history, [
    { status: 'sent', principal_id: PL_CASEWORKER, organisation_id: IOM_POLAND },
    { status: 'received', principal_id: UA_CASEWORKER, organisation_id: IOM_UKRAINE },
  ])
  for (const step of received.history) {
    t.ok(!Number.isNaN(Date.parse(step.at)), `the ${step.status} step has a time`)
  }
  const [sentStep, receivedStep] = received.history
  t.ok(
    sentStep && receivedStep && Date.parse(sentStep.at) <= Date.parse(receivedStep.at),
    'received no earlier than sent',
  )
  const receivedEtag = String(read.headers.etag)
  t.ok(receivedEtag && receivedEtag !== sent.headers.etag, 'receipt moves the ETag on')

  const readAgain = await request({ method: 'GET', url: `/v1/packets/${packet.id}`, key: uaCaseworker })
  remember('getPacket', readAgain, UA_CASEWORKER, IOM_UKRAINE)
  t.equal((readAgain.json() as Packet).history.length, 2, 'a second read records no second receipt')
  t.equal(readAgain.headers.etag, receivedEtag, 'nor changes the ETag')

  // 7. IOM Ukraine acknowledges, naming a focal point and an alternate contact.
  const acknowledged = await request({
    method: 'POST',
    url: `/v1/packets/${packet.id}/acknowledge`,
    key: uaCaseworker,
    headers: { 'if-match': receivedEtag },
    payload: acknowledgement,
  })
  t.equal(acknowledged.statusCode, 200, 'acknowledged')
  remember('acknowledgePacket', acknowledged, UA_CASEWORKER, IOM_UKRAINE)
  const acknowledgedPacket = acknowledged.json() as Packet
  t.equal(acknowledgedPacket.status, 'acknowledged')
  t.same(acknowledgedPacket.acknowledgement, acknowledgement, 'focal point and alternate contact are kept')
  t.match(acknowledgedPacket.history.at(-1), {
    status: 'acknowledged',
    principal_id: UA_CASEWORKER,
    organisation_id: IOM_UKRAINE,
  })
  t.equal(await stepOf(theCase.id), 'acknowledged', 'the acknowledgement moved the case on')

  // 8. IOM Ukraine cannot accept before both sides assessed risk and needs.
  const tooSoon = await request({
    method: 'POST',
    url: `/v1/packets/${packet.id}/accept`,
    key: uaCaseworker,
    headers: { 'if-match': String(acknowledged.headers.etag) },
    payload: { note: 'We can receive her on the proposed date.' },
  })
  t.equal(tooSoon.statusCode, 409, 'accepting without the joint risk assessment is refused')
  const unmet = tooSoon.json() as Problem
  t.equal(unmet.type, 'urn:trm:problem:preconditions-unmet')
  t.match(unmet.unmet, [{ code: 'assessment.risk_and_needs' }], 'the problem names the missing assessment')
  const riskPoland = await record(app, theCase.id, plCaseworker, 'assessment', 'risk_and_needs')
  t.equal(riskPoland.statusCode, 201, 'IOM Poland assesses risk and needs')
  const halfway = await request({
    method: 'POST',
    url: `/v1/packets/${packet.id}/accept`,
    key: uaCaseworker,
    headers: { 'if-match': String(acknowledged.headers.etag) },
    payload: {},
  })
  t.equal(halfway.statusCode, 409, 'one side is not enough')
  t.match((halfway.json() as Problem).unmet, [{ code: 'assessment.risk_and_needs.joint' }], 'the assessment is joint')
  const riskUkraine = await record(app, theCase.id, uaCaseworker, 'assessment', 'risk_and_needs')
  t.equal(riskUkraine.statusCode, 201, 'and so does IOM Ukraine')
  t.equal(await stepOf(theCase.id), 'acknowledged', 'the refusals left the case where it was')

  // 9. IOM Ukraine accepts: the full referral follows, with the person's identity.
  const accepted = await request({
    method: 'POST',
    url: `/v1/packets/${packet.id}/accept`,
    key: uaCaseworker,
    headers: { 'if-match': String(acknowledged.headers.etag) },
    payload: { note: 'We can receive her on the proposed date.' },
  })
  t.equal(accepted.statusCode, 200, 'accepted')
  remember('acceptPacket', accepted, UA_CASEWORKER, IOM_UKRAINE)
  const acceptedPacket = accepted.json() as Packet
  t.equal(acceptedPacket.status, 'accepted')
  t.match(acceptedPacket.decision, { outcome: 'accepted', note: 'We can receive her on the proposed date.' })
  t.same(
    acceptedPacket.history.map((step) => step.status),
    ['sent', 'received', 'acknowledged', 'accepted'],
  )
  t.notOk(accepted.body.includes(GIVEN_NAME), 'the accepted enquiry still holds no identity')

  const afterAcceptance = await request({ method: 'GET', url: '/v1/packets?direction=inbound', key: uaCaseworker })
  const referrals = (afterAcceptance.json() as PacketPage).items.filter(
    (item) => item.case_id === theCase.id && item.kind === 'referral',
  )
  t.equal(referrals.length, 1, 'one full referral followed the acceptance')
  const fullId = referrals[0]?.id as string
  const fullRead = await request({ method: 'GET', url: `/v1/packets/${fullId}`, key: uaCaseworker })
  t.equal(fullRead.statusCode, 200)
  remember('getPacket', fullRead, UA_CASEWORKER, IOM_UKRAINE)
  const full = fullRead.json() as Packet
  t.match(full, {
    case_id: theCase.id,
    kind: 'referral',
    version: 2,
    sender_organisation_id: IOM_POLAND,
    recipient_organisation_id: IOM_UKRAINE,
    purpose: 'return_assistance',
    status: 'received',
    supersedes: null,
  })
  t.match(full.history, [
    { status: 'sent', principal_id: null, organisation_id: IOM_POLAND },
    { status: 'received', principal_id: UA_CASEWORKER, organisation_id: IOM_UKRAINE },
  ])
  t.same(full.included_categories, ['identity', 'health'], 'every consented category, identity included')
  t.same(
    full.withheld,
    [
      { category: 'psychosocial', reason: 'no_consent' },
      { category: 'legal', reason: 'no_consent' },
    ],
    'what no consent covers stays out: psychosocial (section and risk assessments) and legal (the return decision)',
  )
  t.same(
    full.content,
    {
      profile: newCase.profile,
      sections: { identity: newCase.sections.identity, health: newCase.sections.health },
      records: [],
    },
    'the full profile and the consented sections',
  )
  t.ok(fullRead.body.includes(GIVEN_NAME), 'the accepted receiver now reads the given name')
  t.equal(full.content_hash, sha256OfCanonical(full.content), 'the full referral has its own verifiable hash')

  const asReceiver = await request({ method: 'GET', url: `/v1/cases/${theCase.id}`, key: uaCaseworker })
  t.equal(asReceiver.statusCode, 200, 'IOM Ukraine reads the case')
  remember('getCase', asReceiver, UA_CASEWORKER, IOM_UKRAINE)
  const caseForReceiver = asReceiver.json() as Case
  t.equal(caseForReceiver.step, 'accepted')
  t.equal(caseForReceiver.receiving_organisation_id, IOM_UKRAINE)
  t.equal(caseForReceiver.lead_organisation_id, IOM_POLAND, 'IOM Poland still leads')
  t.same(
    caseForReceiver.parties.map((party) => [party.organisation_id, party.role]).sort(),
    [
      [IOM_POLAND, 'sending'],
      [IOM_UKRAINE, 'receiving'],
    ],
    'both organisations are parties',
  )
  t.same(
    caseForReceiver.sections,
    { identity: newCase.sections.identity, health: newCase.sections.health },
    'IOM Ukraine sees the consented sections only',
  )

  const receiverCases = await request({ method: 'GET', url: '/v1/cases', key: uaCaseworker })
  t.ok(
    (receiverCases.json() as Schemas['CasePage']).items.some((item) => item.id === theCase.id),
    'the case is in the case list of IOM Ukraine',
  )

  // 10. The person withdraws the consent.
  const withdrawn = await request({
    method: 'POST',
    url: `/v1/cases/${theCase.id}/consents/${consent.id}/withdraw`,
    key: plCaseworker,
    payload: { reason: 'The person no longer wants to share these data.' },
  })
  t.equal(withdrawn.statusCode, 200, 'the consent is withdrawn')
  remember('withdrawConsent', withdrawn, PL_CASEWORKER, IOM_POLAND)
  const withdrawnConsent = withdrawn.json() as Consent
  t.equal(withdrawnConsent.status, 'withdrawn')
  t.ok(withdrawnConsent.withdrawn_at, 'withdrawn_at is set')
  t.equal(withdrawnConsent.withdrawal_reason, 'The person no longer wants to share these data.')
  const withdrawnAgain = await request({
    method: 'POST',
    url: `/v1/cases/${theCase.id}/consents/${consent.id}/withdraw`,
    key: plCaseworker,
    payload: { reason: 'A second, different reason.' },
  })
  t.equal(withdrawnAgain.statusCode, 200, 'withdrawing a withdrawn consent answers 200')
  t.same(withdrawnAgain.json(), withdrawnConsent, 'and changes nothing')

  const fullAfterWithdrawal = await request({ method: 'GET', url: `/v1/packets/${fullId}`, key: uaCaseworker })
  t.equal(fullAfterWithdrawal.statusCode, 200)
  remember('getPacket', fullAfterWithdrawal, UA_CASEWORKER, IOM_UKRAINE)
  const stripped = fullAfterWithdrawal.json() as Packet
  t.same(stripped.withdrawn_categories, ['identity', 'health'], 'the recipient is told which categories to delete')
  t.same(stripped.included_categories, [], 'none is included any more')
  t.same(
    stripped.withheld,
    [
      { category: 'psychosocial', reason: 'no_consent' },
      { category: 'legal', reason: 'no_consent' },
      { category: 'identity', reason: 'withdrawn' },
      { category: 'health', reason: 'withdrawn' },
    ],
    'and why they are gone',
  )
  t.same(stripped.content.sections, {}, 'no section data at all')
  t.ok(stripped.content_notice, 'with a notice to delete its copies')
  t.notOk(fullAfterWithdrawal.body.includes(GIVEN_NAME), 'the given name appears nowhere in the packet')
  t.notOk(fullAfterWithdrawal.body.includes('post-traumatic stress'), 'nor does the health data')

  const enquiryAfterWithdrawal = await request({ method: 'GET', url: `/v1/packets/${packet.id}`, key: uaCaseworker })
  remember('getPacket', enquiryAfterWithdrawal, UA_CASEWORKER, IOM_UKRAINE)
  t.same((enquiryAfterWithdrawal.json() as Packet).withdrawn_categories, ['health'], 'the enquiry loses health too')
  t.notOk(enquiryAfterWithdrawal.body.includes('post-traumatic stress'), 'so no health data is left in it')

  const caseAfterWithdrawal = await request({ method: 'GET', url: `/v1/cases/${theCase.id}`, key: uaCaseworker })
  t.equal(caseAfterWithdrawal.statusCode, 200, 'IOM Ukraine is still a party')
  remember('getCase', caseAfterWithdrawal, UA_CASEWORKER, IOM_UKRAINE)
  t.same((caseAfterWithdrawal.json() as Case).sections, {}, 'and sees no sections any more')
  t.notOk(caseAfterWithdrawal.body.includes(GIVEN_NAME), 'the given name appears nowhere in the case')

  const senderView = await request({ method: 'GET', url: `/v1/packets/${fullId}`, key: plCaseworker })
  remember('getPacket', senderView, PL_CASEWORKER, IOM_POLAND)
  const asSent = senderView.json() as Packet
  t.same(asSent.withdrawn_categories, ['identity', 'health'], 'the sender sees it too')
  t.same(asSent.content, full.content, 'and still sees what it sent')

  const refused = await request({
    method: 'POST',
    url: `/v1/cases/${theCase.id}/packets`,
    key: plCaseworker,
    payload: { recipient_organisation_id: IOM_UKRAINE, purpose: 'return_assistance' },
  })
  t.equal(refused.statusCode, 422, 'an update with nothing consented is refused')
  const refusal = refused.json() as Problem
  t.equal(refusal.type, 'urn:trm:problem:nothing-consented')
  t.same(
    refusal.withheld,
    [
      { category: 'identity', reason: 'withdrawn' },
      { category: 'health', reason: 'withdrawn' },
      { category: 'psychosocial', reason: 'no_consent' },
      { category: 'legal', reason: 'no_consent' },
    ],
    'the refusal lists why each category cannot go',
  )
  const outbox = await request({ method: 'GET', url: '/v1/packets?direction=outbound', key: plCaseworker })
  t.same(
    (outbox.json() as PacketPage).items
      .filter((item) => item.case_id === theCase.id)
      .map((item) => item.kind)
      .sort(),
    ['enquiry', 'referral'],
    'the refused update was not stored',
  )
  t.equal(await stepOf(theCase.id), 'accepted', 'the case stays accepted')

  // 11. The DPO of IOM Poland reads the audit trail and finds every step.
  const trail: AuditRecord[] = []
  let cursor: string | null = null
  do {
    const url: string = `/v1/cases/${theCase.id}/audit?limit=5${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`
    const page = await request({ method: 'GET', url, key: plDpo })
    t.equal(page.statusCode, 200, 'the DPO reads the audit trail')
    const body = page.json() as AuditPage
    trail.push(...body.items)
    cursor = body.next_cursor
  } while (cursor !== null && trail.length < 500)
  t.equal(new Set(trail.map((record) => record.id)).size, trail.length, 'no record is listed twice')
  const times = trail.map((record) => Date.parse(record.at))
  t.same(
    times,
    [...times].sort((a, b) => a - b),
    'oldest first',
  )
  for (const record of trail) {
    t.equal(record.case_id, theCase.id, `${record.action} belongs to the case`)
    t.ok(record.request_id, `${record.action} has a request id`)
  }
  for (const step of steps) {
    const records = trail.filter((r) => r.request_id === step.requestId)
    t.ok(records.length > 0, `the audit trail holds ${step.action} (request ${step.requestId})`)
    for (const record of records) {
      t.match(
        record,
        { action: step.action, principal_id: step.principal, organisation_id: step.organisation },
        `${step.action}: who and for which organisation`,
      )
    }
  }
  const actions = new Set(trail.map((record) => record.action))
  for (const action of [
    'createCase',
    'recordConsent',
    'createCaseRecord',
    'performTransition',
    'sendPacket',
    'getPacket',
    'acknowledgePacket',
    'acceptPacket',
    'withdrawConsent',
    'getCase',
  ]) {
    t.ok(actions.has(action), `the trail records ${action}`)
  }
  t.match(
    trail.find((record) => record.action === 'createCase'),
    { resource_type: 'case', resource_id: theCase.id },
  )
  t.match(
    trail.find((record) => record.action === 'recordConsent'),
    {
      resource_type: 'consent',
      resource_id: consent.id,
    },
  )
  t.match(
    trail.find((record) => record.action === 'withdrawConsent'),
    {
      resource_type: 'consent',
      resource_id: consent.id,
    },
  )
  for (const action of ['sendPacket', 'acknowledgePacket']) {
    t.match(
      trail.find((record) => record.action === action && record.resource_type === 'packet'),
      { resource_id: packet.id },
      `${action} names the enquiry`,
    )
  }
  const acceptance = trail.filter((record) => record.request_id === requestIdOf(accepted))
  t.same(
    acceptance.map((record) => [record.resource_type, record.resource_id]).sort(),
    [
      ['case', theCase.id],
      ['packet', fullId],
      ['packet', packet.id],
    ].sort(),
    'the acceptance answered the enquiry, moved the case on and sent the full referral, under one request',
  )
  t.equal(
    trail.filter((record) => record.action === 'sendPacket' && record.resource_type === 'packet').length,
    1,
    'the refused sends left no sendPacket',
  )
  const trailText = JSON.stringify(trail)
  t.notOk(trailText.includes(GIVEN_NAME), 'the audit trail holds no personal data')
})
