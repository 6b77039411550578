import t from 'tap'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { demoKeys, startTestApp, type TestApp } from './fixtures/app.js'
import { acknowledgement, answerPacket, record, transition } from './fixtures/referral.js'

const ukraine = demoOrganisationIds.iomUkraine
const kyivShelter = demoOrganisationIds.kyivShelter
const hub = demoOrganisationIds.hub
const poland = demoKeys.demoiomplcw1 as string
const shelter = demoKeys.demoshuacw01 as string

async function openCase(request: TestApp['request']) {
  const created = await request({
    method: 'POST',
    url: '/v1/cases',
    key: poland,
    payload: {
      profile: {
        age_band: '25_34',
        sex: 'female',
        nationality: 'UA',
        country_of_return: 'UA',
        vulnerabilities: ['victim_of_trafficking'],
      },
      sections: {
        identity: { given_name: 'Olena' },
        health: { conditions: ['asthma'] },
        psychosocial: { support_needs: ['counselling'] },
      },
    },
  })
  return created.json().id as string
}

const kindsOf = (response: { json(): { items: { kind: string; assessment: string | null }[] } }) =>
  response.json().items.map((item) => item.assessment ?? item.kind)

t.test('the sending party invites a shelter, which sees what a consent names it for in this step', async (t) => {
  const app = await startTestApp(t)
  const { request } = app
  const caseId = await openCase(request)
  t.equal((await record(app, caseId, poland, 'assessment', 'fit_to_travel')).statusCode, 201, 'a health record')
  t.equal((await record(app, caseId, poland, 'return_decision')).statusCode, 201, 'and a legal one')
  const invited = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/parties`,
    key: poland,
    payload: { organisation_id: kyivShelter },
  })
  t.equal(invited.statusCode, 201)
  t.match(invited.json().parties, [
    { organisation_id: demoOrganisationIds.iomPoland, role: 'sending' },
    { organisation_id: kyivShelter, role: 'invited' },
  ])

  const asShelter = () => request({ method: 'GET', url: `/v1/cases/${caseId}`, key: shelter })
  const recordsAsShelter = () => request({ method: 'GET', url: `/v1/cases/${caseId}/records`, key: shelter })
  const before = await asShelter()
  t.equal(before.statusCode, 200)
  t.same(before.json().sections, {}, 'no consent names the shelter, so it sees no section')
  t.same(before.json().profile, { country_of_return: 'UA' }, 'and of the profile only the country of return')
  t.notOk(before.body.includes('Olena'))
  const noRecords = await recordsAsShelter()
  t.equal(noRecords.statusCode, 200, 'an invited party may list the records')
  t.same(noRecords.json().items, [], 'but sees none without consent')

  const consent = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/consents`,
    key: poland,
    payload: {
      given_at: new Date(Date.now() - 3_600_000).toISOString(),
      method: 'oral',
      language: 'uk',
      interpreter: { used: true, name: 'Interpreter of IOM Poland' },
      guardian: { name: 'Maria Kovalenko', relationship: 'legal_representative' },
      provisions: [
        { categories: ['identity', 'health'], recipients: [kyivShelter], purposes: ['return_assistance'] },
        { categories: ['psychosocial'], recipients: [kyivShelter], purposes: ['reintegration'] },
      ],
    },
  })
  t.equal(consent.statusCode, 201)
  const consented = await asShelter()
  t.same(
    consented.json().sections,
    { identity: { given_name: 'Olena' }, health: { conditions: ['asthma'] } },
    'identity and health, consented for return assistance, the purpose of the step; not psychosocial data, consented for reintegration only',
  )
  t.same(
    consented.json().profile,
    { age_band: '25_34', sex: 'female', vulnerabilities: ['victim_of_trafficking'], country_of_return: 'UA' },
    'the shared minimum of the profile, without the nationality',
  )
  t.same(
    kindsOf(await recordsAsShelter()),
    ['fit_to_travel'],
    'the health record, not the legal one (the return decision)',
  )

  const consents = await request({ method: 'GET', url: `/v1/cases/${caseId}/consents`, key: shelter })
  t.equal(consents.statusCode, 200)
  t.match(consents.json().items, [
    {
      guardian: null,
      guardian_consented: true,
      child_views: null,
      interpreter: { used: true },
    },
  ])
  t.notOk(consents.body.includes('Maria'), 'the guardian is not named to the shelter')
  t.notOk(consents.body.includes('Interpreter of IOM Poland'), 'nor the interpreter')
  const asSender = await request({ method: 'GET', url: `/v1/cases/${caseId}/consents`, key: poland })
  t.match(asSender.json().items, [
    {
      guardian: { name: 'Maria Kovalenko', relationship: 'legal_representative' },
      guardian_consented: true,
      interpreter: { used: true, name: 'Interpreter of IOM Poland' },
    },
  ])

  const byInvited = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/parties`,
    key: shelter,
    payload: { organisation_id: ukraine },
  })
  t.equal(byInvited.statusCode, 403, 'an invited party cannot invite others')
})

t.test('invitations that cannot be', async (t) => {
  const { request } = await startTestApp(t)
  const caseId = await openCase(request)
  const invite = (organisationId: string, key = poland) =>
    request({ method: 'POST', url: `/v1/cases/${caseId}/parties`, key, payload: { organisation_id: organisationId } })

  t.equal((await invite(kyivShelter)).statusCode, 201)
  const again = await invite(kyivShelter)
  t.equal(again.statusCode, 422)
  t.equal(again.json().type, 'urn:trm:problem:already-party')
  t.equal((await invite(hub)).statusCode, 422, 'the hub operator is no partner in a case')
  t.equal((await invite('00000000-0000-4000-8000-00000000ffff')).statusCode, 422, 'unknown organisation')
  t.equal((await invite(ukraine, demoKeys.demoiommacw1)).statusCode, 404, 'a non-party learns nothing')
  t.equal((await invite(ukraine, demoKeys.demoiompldpo)).statusCode, 403, 'a dpo only reads')
})

t.test('a recipient is a party from its acknowledgement until it declines', async (t) => {
  const app = await startTestApp(t)
  const { request } = app
  const ukraineKey = demoKeys.demoiomuacw1 as string
  const caseId = await openCase(request)
  const consent = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/consents`,
    key: poland,
    payload: {
      given_at: new Date(Date.now() - 3_600_000).toISOString(),
      method: 'written',
      language: 'uk',
      interpreter: { used: false },
      provisions: [{ categories: ['identity', 'health'], recipients: [ukraine], purposes: ['return_assistance'] }],
    },
  })
  t.equal(consent.statusCode, 201)
  t.equal((await record(app, caseId, poland, 'return_decision')).statusCode, 201)
  t.equal((await transition(app, caseId, poland, 'decide_return')).statusCode, 200)
  const sent = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/packets`,
    key: poland,
    payload: { recipient_organisation_id: ukraine, purpose: 'return_assistance' },
  })
  t.equal(sent.statusCode, 201, 'IOM Poland sends the enquiry')
  const packetId = sent.json().id as string
  const asUkraine = () => request({ method: 'GET', url: `/v1/cases/${caseId}`, key: ukraineKey })

  t.equal((await request({ method: 'GET', url: `/v1/packets/${packetId}`, key: ukraineKey })).statusCode, 200)
  t.equal((await asUkraine()).statusCode, 404, 'reading the packet does not make it a party')
  t.equal((await answerPacket(app, packetId, ukraineKey, 'acknowledge', acknowledgement)).statusCode, 200)
  const party = await asUkraine()
  t.equal(party.statusCode, 200, 'acknowledging does')
  t.same(
    Object.keys(party.json().sections),
    ['health'],
    'it sees the health data the consent names it for; identity only once it accepts the person',
  )
  const records = () => request({ method: 'GET', url: `/v1/cases/${caseId}/records`, key: ukraineKey })
  t.same((await records()).json().items, [], 'the return decision is legal data, which no consent names it for')
  t.equal((await record(app, caseId, ukraineKey, 'assessment', 'risk_and_needs')).statusCode, 201)
  t.same(kindsOf(await records()), ['risk_and_needs'], 'a record it made itself it always sees')
  const invite = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/parties`,
    key: ukraineKey,
    payload: { organisation_id: kyivShelter },
  })
  t.equal(invite.statusCode, 403, 'it cannot invite others before it accepts')

  const declined = await answerPacket(app, packetId, ukraineKey, 'decline', {
    reason_code: 'no_capacity',
    reason_text: 'Full until February.',
  })
  t.equal(declined.statusCode, 200)
  t.equal((await asUkraine()).statusCode, 404, 'a recipient that declined takes no further part')
})
