import t from 'tap'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { demoKeys, startTestApp, type TestApp } from './fixtures/app.js'

const ukraine = demoOrganisationIds.iomUkraine
const kyivShelter = demoOrganisationIds.kyivShelter
const hub = demoOrganisationIds.hub

async function openCase(request: TestApp['request']) {
  const created = await request({
    method: 'POST',
    url: '/v1/cases',
    key: demoKeys.demoiomplcw1,
    payload: {
      profile: { country_of_return: 'UA', vulnerabilities: ['victim_of_trafficking'] },
      sections: { identity: { given_name: 'Olena' }, health: { conditions: ['asthma'] } },
    },
  })
  return created.json().id as string
}

t.test('the sending party invites a shelter, which sees the case but only consented sections', async (t) => {
  const { request } = await startTestApp(t)
  const caseId = await openCase(request)
  const invited = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/parties`,
    key: demoKeys.demoiomplcw1,
    payload: { organisation_id: kyivShelter },
  })
  t.equal(invited.statusCode, 201)
  t.match(invited.json().parties, [
    { organisation_id: demoOrganisationIds.iomPoland, role: 'sending' },
    { organisation_id: kyivShelter, role: 'invited' },
  ])
  t.equal(invited.headers.etag, '"2"', 'the case moved to its next version')

  const asShelter = await request({ method: 'GET', url: `/v1/cases/${caseId}`, key: demoKeys.demoshuacw01 })
  t.equal(asShelter.statusCode, 200)
  t.same(asShelter.json().sections, {}, 'no consent names the shelter, so it sees no section')
  t.notOk(asShelter.body.includes('Olena'))

  await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/consents`,
    key: demoKeys.demoiomplcw1,
    payload: {
      given_at: '2026-11-20T10:00:00Z',
      method: 'oral',
      language: 'uk',
      interpreter: { used: true },
      provisions: [{ categories: ['health'], recipients: [kyivShelter], purposes: ['reintegration'] }],
    },
  })
  const consented = await request({ method: 'GET', url: `/v1/cases/${caseId}`, key: demoKeys.demoshuacw01 })
  t.same(consented.json().sections, { health: { conditions: ['asthma'] } }, 'only the consented section')

  const byInvited = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/parties`,
    key: demoKeys.demoshuacw01,
    payload: { organisation_id: ukraine },
  })
  t.equal(byInvited.statusCode, 403, 'an invited party cannot invite others')
})

t.test('invitations that cannot be', async (t) => {
  const { request } = await startTestApp(t)
  const caseId = await openCase(request)
  const invite = (organisationId: string, key = demoKeys.demoiomplcw1) =>
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
  const { request } = await startTestApp(t)
  const caseId = await openCase(request)
  await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/consents`,
    key: demoKeys.demoiomplcw1,
    payload: {
      given_at: '2026-11-20T10:00:00Z',
      method: 'written',
      language: 'uk',
      interpreter: { used: false },
      provisions: [{ categories: ['identity'], recipients: [ukraine], purposes: ['return_assistance'] }],
    },
  })
  const sent = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/packets`,
    key: demoKeys.demoiomplcw1,
    payload: { recipient_organisation_id: ukraine, purpose: 'return_assistance' },
  })
  const packetId = sent.json().id as string
  const asUkraine = () => request({ method: 'GET', url: `/v1/cases/${caseId}`, key: demoKeys.demoiomuacw1 })

  const read = await request({ method: 'GET', url: `/v1/packets/${packetId}`, key: demoKeys.demoiomuacw1 })
  t.equal((await asUkraine()).statusCode, 404, 'reading the packet does not make it a party')
  const acknowledged = await request({
    method: 'POST',
    url: `/v1/packets/${packetId}/acknowledge`,
    key: demoKeys.demoiomuacw1,
    headers: { 'if-match': String(read.headers.etag) },
    payload: { focal_point: { name: 'Iryna' }, alternate_contact: { name: 'Petro' } },
  })
  const party = await asUkraine()
  t.equal(party.statusCode, 200, 'acknowledging does')
  t.same(Object.keys(party.json().sections), ['identity'], 'seeing only what the consent names it for')
  const invite = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/parties`,
    key: demoKeys.demoiomuacw1,
    payload: { organisation_id: kyivShelter },
  })
  t.equal(invite.statusCode, 403, 'it cannot invite others before it accepts')

  const declined = await request({
    method: 'POST',
    url: `/v1/packets/${packetId}/decline`,
    key: demoKeys.demoiomuacw1,
    headers: { 'if-match': String(acknowledged.headers.etag) },
    payload: { reason_code: 'no_capacity', reason_text: 'Full until February.' },
  })
  t.equal(declined.statusCode, 200)
  t.equal((await asUkraine()).statusCode, 404, 'a recipient that declined takes no further part')
})
