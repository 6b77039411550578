import { createHash } from 'node:crypto'
import canonicalize from 'canonicalize'
import type { LightMyRequestResponse } from 'fastify'
import t from 'tap'
import type { components } from '../openapi/dist/types.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { demoKeys, startTestApp } from './fixtures/app.js'

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

function requestIdOf(response: LightMyRequestResponse): string {
  return String(response.headers['x-request-id'])
}

t.test('a referral from IOM Poland to IOM Ukraine, end to end, then the consent is withdrawn', async (t) => {
  const { request } = await startTestApp(t)
  /** The steps whose audit records we expect: the request id each answered with, and who made it. */
  const steps: { action: string; requestId: string; principal: string; organisation: string }[] = []
  const remember = (action: string, response: LightMyRequestResponse, principal: string, organisation: string) => {
    t.ok(response.headers['x-request-id'], `${action} answers with x-request-id`)
    steps.push({ action, requestId: requestIdOf(response), principal, organisation })
  }

  // 1. IOM Poland opens the case.
  const created = await request({ method: 'POST', url: '/v1/cases', key: plCaseworker, payload: newCase })
  t.equal(created.statusCode, 201, 'the case is opened')
  const theCase = created.json() as Case
  remember('createCase', created, PL_CASEWORKER, IOM_POLAND)
  t.equal(created.headers.location, `/v1/cases/${theCase.id}`, 'Location names the case')
  t.equal(created.headers.etag, `"${theCase.version}"`, 'ETag is the version')
  t.equal(theCase.state, 'open')
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

  // 3. IOM Poland sends the packet.
  const sent = await request({
    method: 'POST',
    url: `/v1/cases/${theCase.id}/packets`,
    key: plCaseworker,
    payload: { recipient_organisation_id: IOM_UKRAINE, purpose: 'return_assistance', note: 'Return planned soon.' },
  })
  t.equal(sent.statusCode, 201, 'the packet is sent')
  const packet = sent.json() as Packet
  remember('sendPacket', sent, PL_CASEWORKER, IOM_POLAND)
  t.equal(sent.headers.location, `/v1/packets/${packet.id}`)
  t.ok(sent.headers.etag, 'the packet has an ETag')
  t.match(packet, {
    case_id: theCase.id,
    case_reference: theCase.reference,
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
  t.same(packet.included_categories, ['identity', 'health'], 'exactly identity and health go in')
  t.same(packet.withheld, [{ category: 'psychosocial', reason: 'no_consent' }], 'psychosocial is withheld')
  t.same(
    packet.content,
    {
      profile: newCase.profile,
      sections: { identity: newCase.sections.identity, health: newCase.sections.health },
    },
    'the content holds the profile and only the consented sections',
  )
  t.match(packet.content_hash, /^[0-9a-f]{64}$/, 'content_hash is 64 hex digits')
  t.equal(packet.content_hash, sha256OfCanonical(packet.content), 'content_hash is SHA-256 of the canonical content')
  t.same(packet.withdrawn_categories, [])
  t.equal(packet.history.length, 1)
  t.match(packet.history[0], { status: 'sent', principal_id: PL_CASEWORKER, organisation_id: IOM_POLAND })

  const referred = await request({ method: 'GET', url: `/v1/cases/${theCase.id}`, key: plCaseworker })
  t.equal((referred.json() as Case).state, 'referred', 'the case is referred')
  remember('getCase', referred, PL_CASEWORKER, IOM_POLAND)

  // 4. IOM Ukraine finds it in its inbox.
  const inbox = await request({ method: 'GET', url: '/v1/packets?direction=inbound', key: uaCaseworker })
  t.equal(inbox.statusCode, 200)
  const inboxPage = inbox.json() as PacketPage
  const listed = inboxPage.items.find((item) => item.id === packet.id)
  t.ok(listed, 'the packet is in the inbox of IOM Ukraine')
  t.match(listed, { status: 'sent', case_reference: theCase.reference, content_hash: packet.content_hash })
  t.notOk('content' in (listed ?? {}), 'the inbox lists packets without their content')
  t.notOk(inbox.body.includes(GIVEN_NAME), 'the inbox holds no personal data')

  // 5. IOM Ukraine reads it: it is received.
  const read = await request({ method: 'GET', url: `/v1/packets/${packet.id}`, key: uaCaseworker })
  t.equal(read.statusCode, 200)
  const received = read.json() as Packet
  remember('getPacket', read, UA_CASEWORKER, IOM_UKRAINE)
  t.equal(received.status, 'received', 'the first read by the recipient records receipt')
  t.same(received.content, packet.content, 'the recipient reads the consented content')
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

  // 6. IOM Ukraine acknowledges, naming a focal point and an alternate contact.
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

  // 7. IOM Ukraine accepts: it becomes a party to the case.
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

  const asReceiver = await request({ method: 'GET', url: `/v1/cases/${theCase.id}`, key: uaCaseworker })
  t.equal(asReceiver.statusCode, 200, 'IOM Ukraine now reads the case')
  remember('getCase', asReceiver, UA_CASEWORKER, IOM_UKRAINE)
  const caseForReceiver = asReceiver.json() as Case
  t.equal(caseForReceiver.state, 'referral_accepted')
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

  // 8. The person withdraws the consent.
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

  const afterWithdrawal = await request({ method: 'GET', url: `/v1/packets/${packet.id}`, key: uaCaseworker })
  t.equal(afterWithdrawal.statusCode, 200)
  remember('getPacket', afterWithdrawal, UA_CASEWORKER, IOM_UKRAINE)
  const stripped = afterWithdrawal.json() as Packet
  t.same(stripped.withdrawn_categories, ['identity', 'health'], 'the recipient is told which categories to delete')
  t.same(stripped.content.sections, {}, 'no section data at all')
  t.notOk(afterWithdrawal.body.includes(GIVEN_NAME), 'the given name appears nowhere in the packet')
  t.notOk(afterWithdrawal.body.includes('post-traumatic stress'), 'nor does the health data')

  const caseAfterWithdrawal = await request({ method: 'GET', url: `/v1/cases/${theCase.id}`, key: uaCaseworker })
  t.equal(caseAfterWithdrawal.statusCode, 200, 'IOM Ukraine is still a party')
  remember('getCase', caseAfterWithdrawal, UA_CASEWORKER, IOM_UKRAINE)
  t.same((caseAfterWithdrawal.json() as Case).sections, {}, 'and sees no sections any more')
  t.notOk(caseAfterWithdrawal.body.includes(GIVEN_NAME), 'the given name appears nowhere in the case')

  const senderView = await request({ method: 'GET', url: `/v1/packets/${packet.id}`, key: plCaseworker })
  remember('getPacket', senderView, PL_CASEWORKER, IOM_POLAND)
  t.same((senderView.json() as Packet).withdrawn_categories, ['identity', 'health'], 'the sender sees it too')

  const refused = await request({
    method: 'POST',
    url: `/v1/cases/${theCase.id}/packets`,
    key: plCaseworker,
    payload: { recipient_organisation_id: IOM_UKRAINE, purpose: 'return_assistance' },
  })
  t.equal(refused.statusCode, 422, 'a new packet with nothing consented is refused')
  const refusal = refused.json() as Problem
  t.equal(refusal.type, 'urn:trm:problem:nothing-consented')
  t.same(
    refusal.withheld,
    [
      { category: 'identity', reason: 'no_consent' },
      { category: 'health', reason: 'no_consent' },
      { category: 'psychosocial', reason: 'no_consent' },
    ],
    'the refusal lists what no consent covers',
  )
  const outbox = await request({ method: 'GET', url: '/v1/packets?direction=outbound', key: plCaseworker })
  t.equal(
    (outbox.json() as PacketPage).items.filter((item) => item.case_id === theCase.id).length,
    1,
    'the refused packet was not stored',
  )

  // 9. The DPO of IOM Poland reads the audit trail and finds every step.
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
    const record = trail.find((r) => r.request_id === step.requestId)
    t.ok(record, `the audit trail holds ${step.action} (request ${step.requestId})`)
    t.match(
      record,
      { action: step.action, principal_id: step.principal, organisation_id: step.organisation },
      `${step.action}: who and for which organisation`,
    )
  }
  const actions = new Set(trail.map((record) => record.action))
  for (const action of [
    'createCase',
    'recordConsent',
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
  for (const action of ['sendPacket', 'getPacket', 'acknowledgePacket', 'acceptPacket']) {
    t.match(
      trail.find((record) => record.action === action),
      { resource_type: 'packet', resource_id: packet.id },
      `${action} names the packet`,
    )
  }
  t.equal(trail.filter((record) => record.action === 'sendPacket').length, 1, 'the refused packet left no sendPacket')
  const trailText = JSON.stringify(trail)
  t.notOk(trailText.includes(GIVEN_NAME), 'the audit trail holds no personal data')
})
