import t, { type Test } from 'tap'
import { demoOrganisationIds, demoTransferAgreements } from '../src/demo/demo-data.js'
import { countryStanding } from '../src/transfers/countries.js'
import { demoKeys, startTestApp, type TestApp } from './fixtures/app.js'
import { acceptReferral, openReferral, record, sender, transition } from './fixtures/referral.js'

// GDPR Chapter V: a packet that leaves the EU/EEA for a country without an adequacy decision goes
// only on a legal basis — a standing agreement (Art. 46) or a derogation (Art. 49) — and records
// it; the data protection officer lists every such transfer.

const admin = demoKeys.demohubadmin as string
const dpo = demoKeys.demoiompldpo as string
const ORG = demoOrganisationIds

async function registerOrganisation(t: Test, app: TestApp, name: string, country: string): Promise<string> {
  const created = await app.request({
    method: 'POST',
    url: '/v1/organisations',
    key: admin,
    payload: { name, country, kind: 'ngo', can_send: false, can_receive: true },
  })
  t.equal(created.statusCode, 201, `the hub registers ${name}`)
  return created.json().id as string
}

/** A case of IOM Poland whose return is decided, with consent to share identity and health data with `recipientId`. */
async function decidedCase(
  t: Test,
  app: TestApp,
  recipientId: string,
  countryOfReturn: string,
  informedOfTransferRisks?: boolean,
): Promise<{ caseId: string; consentId: string }> {
  const opened = await app.request({
    method: 'POST',
    url: '/v1/cases',
    key: sender,
    payload: {
      profile: { age_band: '25_34', sex: 'female', country_of_return: countryOfReturn, vulnerabilities: [] },
      sections: {
        identity: { given_name: 'Olena', family_name: 'Kovalenko' },
        health: { conditions: ['post-traumatic stress'] },
      },
    },
  })
  const caseId = opened.json().id as string
  const consent = await app.request({
    method: 'POST',
    url: `/v1/cases/${caseId}/consents`,
    key: sender,
    payload: {
      given_at: new Date(Date.now() - 3_600_000).toISOString(),
      method: 'written',
      language: 'uk',
      interpreter: { used: false },
      guardian: null,
      provisions: [{ categories: ['identity', 'health'], recipients: [recipientId], purposes: ['return_assistance'] }],
      expires_at: null,
      ...(informedOfTransferRisks === undefined ? {} : { informed_of_transfer_risks: informedOfTransferRisks }),
    },
  })
  t.equal(consent.statusCode, 201, 'the consent is recorded')
  t.equal(
    consent.json().informed_of_transfer_risks,
    informedOfTransferRisks ?? false,
    'saying what the person was told',
  )
  t.equal((await record(app, caseId, sender, 'return_decision')).statusCode, 201)
  t.equal((await transition(app, caseId, sender, 'decide_return')).statusCode, 200)
  return { caseId, consentId: consent.json().id as string }
}

function sendEnquiry(app: TestApp, caseId: string, recipientId: string, transferBasis?: object) {
  return app.request({
    method: 'POST',
    url: `/v1/cases/${caseId}/packets`,
    key: sender,
    payload: {
      recipient_organisation_id: recipientId,
      purpose: 'return_assistance',
      ...(transferBasis ? { transfer_basis: transferBasis } : {}),
    },
  })
}

async function transfers(t: Test, app: TestApp, query = '') {
  const listed = await app.request({ method: 'GET', url: `/v1/transfers?limit=100${query}`, key: dpo })
  t.equal(listed.statusCode, 200)
  return listed.json().items as { packet_id: string; basis: Record<string, unknown> }[]
}

t.test('a packet from Poland to Ukraine goes only on a legal basis, and the DPO lists it', async (t) => {
  const app = await startTestApp(t)
  const { request } = app
  const laStrada = await registerOrganisation(t, app, 'La Strada Ukraine', 'UA')
  const directory = await request({ method: 'GET', url: `/v1/organisations/${laStrada}`, key: sender })
  t.match(directory.json(), { country: 'UA', transfer_zone: 'third_country', adequacy_decision: null })
  const poland = await request({ method: 'GET', url: `/v1/organisations/${ORG.iomPoland}`, key: sender })
  t.equal(poland.json().transfer_zone, 'eea', 'Poland is in the EU')

  const { caseId, consentId } = await decidedCase(t, app, laStrada, 'UA')

  const refused = await sendEnquiry(app, caseId, laStrada)
  t.equal(refused.statusCode, 422, 'no agreement, no basis named: refused')
  t.equal(refused.json().type, 'urn:trm:problem:transfer-basis-required')
  t.same(
    refused.json().errors.map((e: { pointer: string }) => e.pointer),
    ['#/transfer_basis'],
  )

  const uninformed = await sendEnquiry(app, caseId, laStrada, {
    legal_basis: 'explicit_consent',
    consent_id: consentId,
  })
  t.equal(uninformed.statusCode, 422, 'a consent that does not say the person was informed of the risks is no basis')
  t.equal(uninformed.json().type, 'urn:trm:problem:transfer-basis-invalid')
  t.equal(uninformed.json().errors[0].pointer, '#/transfer_basis/consent_id')

  const unjustified = await sendEnquiry(app, caseId, laStrada, { legal_basis: 'vital_interests' })
  t.equal(unjustified.statusCode, 422, 'vital interests need a justification')
  t.equal(unjustified.json().errors[0].pointer, '#/transfer_basis/justification')

  const noAgreement = await sendEnquiry(app, caseId, laStrada, { legal_basis: 'safeguards' })
  t.equal(noAgreement.statusCode, 422, 'safeguards need an agreement in force')
  const timeline = await request({ method: 'GET', url: `/v1/cases/${caseId}`, key: sender })
  t.equal(timeline.json().step, 'return_decided', 'no refused packet moved the case')

  const agreement = {
    exporter_organisation_id: ORG.iomPoland,
    importer_organisation_id: laStrada,
    safeguard: 'standard_contractual_clauses',
    reference: 'SCC IOM Poland – La Strada Ukraine, 2026-17',
    valid_from: '2026-01-01',
    valid_until: null,
  }
  const register = (payload: object, key = admin) =>
    request({ method: 'POST', url: '/v1/transfer-agreements', key, payload })
  t.equal((await register(agreement, sender)).statusCode, 403, 'only the hub admin registers agreements')
  t.equal(
    (await register({ ...agreement, exporter_organisation_id: ORG.iomUkraine })).statusCode,
    422,
    'an exporter outside the EU/EEA needs no Art. 46 safeguard',
  )
  t.equal(
    (await register({ ...agreement, importer_organisation_id: ORG.borderGuardPoland })).statusCode,
    422,
    'nor does an importer inside it',
  )
  t.equal(
    (await register({ ...agreement, valid_until: '2025-12-31' })).statusCode,
    422,
    'validity ends before it starts',
  )
  const registered = await register(agreement)
  t.equal(registered.statusCode, 201, 'the hub registers the standing agreement')
  t.match(registered.json(), { ...agreement, article: 'Art. 46(2)(c)' })
  const agreementId = registered.json().id as string

  const sent = await sendEnquiry(app, caseId, laStrada)
  t.equal(sent.statusCode, 201, 'the enquiry goes under the standing agreement')
  const basis = {
    destination_country: 'UA',
    zone: 'third_country',
    legal_basis: 'safeguards',
    article: 'Art. 46(2)(c)',
    adequacy_decision: null,
    agreement_id: agreementId,
    agreement_reference: agreement.reference,
    consent_id: null,
    justification: null,
  }
  t.same(sent.json().transfer, basis, 'and records it')
  const packetId = sent.json().id as string

  const listed = await transfers(t, app)
  t.same(
    listed.find((item) => item.packet_id === packetId),
    {
      packet_id: packetId,
      packet_kind: 'enquiry',
      case_id: caseId,
      case_reference: timeline.json().reference,
      sender_organisation_id: ORG.iomPoland,
      recipient_organisation_id: laStrada,
      sent_at: sent.json().history[0].at,
      basis,
    },
    'the DPO lists the transfer with its basis',
  )
  t.ok(
    (await transfers(t, app, '&country=UA')).some((item) => item.packet_id === packetId),
    'by country',
  )
  t.notOk((await transfers(t, app, '&country=AL')).some((item) => item.packet_id === packetId))
  t.ok(
    (await transfers(t, app, `&to=${laStrada}`)).some((item) => item.packet_id === packetId),
    'by recipient',
  )
  t.ok(
    (await transfers(t, app, `&from=${ORG.iomPoland}`)).some((item) => item.packet_id === packetId),
    'by sender',
  )
  t.notOk((await transfers(t, app, `&from=${ORG.borderGuardPoland}`)).some((item) => item.packet_id === packetId))
  const caseworkerList = await request({ method: 'GET', url: '/v1/transfers', key: sender })
  t.equal(caseworkerList.statusCode, 403, 'the list is for the DPO')

  const agreements = await request({ method: 'GET', url: '/v1/transfer-agreements?limit=100', key: dpo })
  t.equal(agreements.statusCode, 200)
  t.ok(
    agreements.json().items.some((item: { id: string }) => item.id === agreementId),
    'the DPO sees the agreements its organisation is party to',
  )
})

t.test('explicit consent after being informed of the risks is a basis (Art. 49(1)(a))', async (t) => {
  const app = await startTestApp(t)
  const differentAndEqual = await registerOrganisation(t, app, 'Different and Equal', 'AL')
  const { caseId, consentId } = await decidedCase(t, app, differentAndEqual, 'AL', true)
  const sent = await sendEnquiry(app, caseId, differentAndEqual, {
    legal_basis: 'explicit_consent',
    consent_id: consentId,
  })
  t.equal(sent.statusCode, 201)
  t.match(sent.json().transfer, {
    destination_country: 'AL',
    legal_basis: 'explicit_consent',
    article: 'Art. 49(1)(a)',
    consent_id: consentId,
    agreement_id: null,
  })
  t.ok(
    (await transfers(t, app)).some((item) => item.packet_id === sent.json().id),
    'listed for the DPO',
  )
})

t.test('inside the EU/EEA a packet needs no transfer basis', async (t) => {
  const app = await startTestApp(t)
  const banYing = await registerOrganisation(t, app, 'Ban Ying', 'DE')
  const directory = await app.request({ method: 'GET', url: `/v1/organisations/${banYing}`, key: sender })
  t.equal(directory.json().transfer_zone, 'eea')
  const { caseId } = await decidedCase(t, app, banYing, 'DE')
  const sent = await sendEnquiry(app, caseId, banYing)
  t.equal(sent.statusCode, 201, 'Poland to Germany: no transfer out of the EU')
  t.equal(sent.json().transfer, null, 'and none recorded')
  t.notOk(
    (await transfers(t, app)).some((item) => item.packet_id === sent.json().id),
    'not a transfer for the DPO',
  )
})

t.test('the demo corridor rests on its standing agreement, and the full referral on the enquiry`s basis', async (t) => {
  const app = await startTestApp(t)
  const referral = await openReferral(t, app)
  const fullId = await acceptReferral(t, app, referral)
  const demoAgreement = demoTransferAgreements.find(
    (agreement) =>
      agreement.exporter_organisation_id === ORG.iomPoland && agreement.importer_organisation_id === ORG.iomUkraine,
  )
  const listed = await transfers(t, app, `&to=${ORG.iomUkraine}`)
  for (const packetId of [referral.packetId, fullId]) {
    t.match(
      listed.find((item) => item.packet_id === packetId)?.basis,
      { legal_basis: 'safeguards', article: 'Art. 46(3)(b)', agreement_id: demoAgreement?.id },
      'the enquiry and the full referral both rest on the administrative arrangement',
    )
  }
})

t.test('where a country stands is data, as of a day', async (t) => {
  const day = new Date('2026-12-02T12:00:00Z')
  const cases: [string, Date, string][] = [
    ['PL', day, 'eea'],
    ['NO', day, 'eea'],
    ['UA', day, 'third_country'],
    ['AL', day, 'third_country'],
    ['MA', day, 'third_country'],
    ['BR', day, 'adequate'],
    ['CH', day, 'adequate'],
    ['GB', day, 'adequate'],
    ['GB', new Date('2031-12-28T00:00:00Z'), 'third_country'], // the renewed decision ends on 27 December 2031
    ['US', day, 'third_country'], // the Data Privacy Framework covers certified organisations only
    ['CA', day, 'third_country'], // commercial organisations only
  ]
  for (const [country, at, zone] of cases) {
    t.equal(countryStanding(country, at).zone, zone, `${country} on ${at.toISOString().slice(0, 10)}: ${zone}`)
  }
  t.match(countryStanding('BR', day).adequacyDecision, /2026\/179/)
})
