import type { LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { demoKeys, startTestApp, type TestApp } from './fixtures/app.js'
import { record, transition } from './fixtures/referral.js'

// Idempotency-Key through HTTP, on PGlite and (with TEST_DATABASE_URL) on PostgreSQL.

const POLAND = demoOrganisationIds.iomPoland // IOM Poland (demo), sending side
const BORDER_GUARD = demoOrganisationIds.borderGuardPoland // Border Guard, Poland (demo), sending side
const UKRAINE = demoOrganisationIds.iomUkraine // IOM Ukraine (demo), receiving side
const polandCaseworker = demoKeys.demoiomplcw1 as string
const polandSupervisor = demoKeys.demoiomplsv1 as string
const borderGuardCaseworker = demoKeys.demobgplcw01 as string

const newCase = {
  profile: {
    age_band: '25_34',
    sex: 'female',
    nationality: 'UA',
    languages: ['uk'],
    country_of_return: 'UA',
    vulnerabilities: ['victim_of_trafficking'],
  },
  sections: {
    identity: { given_name: 'Olena', family_name: 'Kovalenko', date_of_birth: '1994-03-02' },
    health: { conditions: ['post-traumatic stress'] },
  },
}

function consentFor(categories: string[], recipient = UKRAINE) {
  return {
    given_at: new Date(Date.now() - 3_600_000).toISOString(),
    method: 'written',
    language: 'uk',
    interpreter: { used: true, name: 'Interpreter of IOM Poland' },
    guardian: null,
    provisions: [{ categories, recipients: [recipient], purposes: ['return_assistance'] }],
    expires_at: null,
  }
}

const newPacket = { recipient_organisation_id: UKRAINE, purpose: 'return_assistance', note: 'Return in December.' }

interface ProblemBody {
  type: string
  status: number
  detail: string
  errors?: { pointer?: string; parameter?: string; detail: string }[]
}

function assertProblem(t: Test, response: LightMyRequestResponse, status: number, type: string): ProblemBody {
  t.equal(response.statusCode, status, `answers ${status}`)
  t.match(String(response.headers['content-type']), /^application\/problem\+json/, 'as a problem document')
  const body = response.json() as ProblemBody
  t.equal(body.status, status, 'status in the body')
  t.equal(body.type, type, `type ${type}`)
  t.notOk(response.headers['idempotent-replayed'], 'not marked as a replay')
  return body
}

async function casesOpenedBy(app: TestApp, organisationId: string): Promise<string[]> {
  const rows = await app.database.db
    .selectFrom('cases')
    .select('id')
    .where('sending_organisation_id', '=', organisationId)
    .execute()
  return rows.map((row) => row.id)
}

async function packetsOf(app: TestApp, caseId: string): Promise<string[]> {
  const rows = await app.database.db.selectFrom('packets').select('id').where('case_id', '=', caseId).execute()
  return rows.map((row) => row.id)
}

async function openCase(t: Test, app: TestApp, key = polandCaseworker): Promise<{ id: string; etag: string }> {
  const response = await app.request({ method: 'POST', url: '/v1/cases', key, payload: newCase })
  t.equal(response.statusCode, 201, 'case opened')
  return { id: (response.json() as { id: string }).id, etag: String(response.headers.etag) }
}

/** Records the person's return decision and takes it: from there the enquiry goes. */
async function decideReturn(t: Test, app: TestApp, caseId: string): Promise<void> {
  t.equal((await record(app, caseId, polandCaseworker, 'return_decision')).statusCode, 201, 'return decision recorded')
  t.equal((await transition(app, caseId, polandCaseworker, 'decide_return')).statusCode, 200, 'and taken')
}

async function stepOf(app: TestApp, caseId: string): Promise<string> {
  const read = await app.request({ method: 'GET', url: `/v1/cases/${caseId}`, key: polandCaseworker })
  return (read.json() as { step: string }).step
}

async function recordConsent(t: Test, app: TestApp, caseId: string, categories: string[]): Promise<void> {
  const response = await app.request({
    method: 'POST',
    url: `/v1/cases/${caseId}/consents`,
    key: polandCaseworker,
    payload: consentFor(categories),
  })
  t.equal(response.statusCode, 201, 'consent recorded')
}

t.test('the same key and body replays the first response, with one effect', async (t) => {
  const app = await startTestApp(t)
  const before = await casesOpenedBy(app, POLAND)
  const headers = { 'idempotency-key': 'open-case-7f3a' }

  const first = await app.request({
    method: 'POST',
    url: '/v1/cases',
    key: polandCaseworker,
    headers,
    payload: newCase,
  })
  t.equal(first.statusCode, 201)
  t.notOk(first.headers['idempotent-replayed'], 'the first response is not a replay')
  const created = first.json() as { id: string; version: number }
  t.equal(first.headers.location, `/v1/cases/${created.id}`)
  t.equal(first.headers.etag, '"1"')

  for (const attempt of [1, 2]) {
    const again = await app.request({
      method: 'POST',
      url: '/v1/cases',
      key: polandCaseworker,
      headers,
      payload: newCase,
    })
    t.equal(again.statusCode, 201, `retry ${attempt}: the same status`)
    t.equal(again.headers['idempotent-replayed'], 'true', `retry ${attempt}: marked as a replay`)
    t.same(again.json(), created, `retry ${attempt}: the same body`)
    t.equal(again.headers.location, first.headers.location, `retry ${attempt}: the same Location`)
    t.equal(again.headers.etag, first.headers.etag, `retry ${attempt}: the same ETag`)
  }

  // Key order of the body is not part of the request's identity; another principal of the same
  // organisation shares the organisation's keys.
  const reordered = { sections: newCase.sections, profile: newCase.profile }
  const bySupervisor = await app.request({
    method: 'POST',
    url: '/v1/cases',
    key: polandSupervisor,
    headers,
    payload: reordered,
  })
  t.equal(bySupervisor.statusCode, 201)
  t.equal(bySupervisor.headers['idempotent-replayed'], 'true', 'replayed for the same organisation')
  t.same(bySupervisor.json(), created)

  const after = await casesOpenedBy(app, POLAND)
  t.same(
    after.filter((id) => !before.includes(id)),
    [created.id],
    'exactly one case was opened',
  )

  // A replay answers with the first outcome (status, location) and the case as it is now: no stored
  // body is ever served, so nothing stale and nothing whose consent was since withdrawn.
  const patched = await app.request({
    method: 'PATCH',
    url: `/v1/cases/${created.id}`,
    key: polandCaseworker,
    headers: { 'if-match': '"1"' },
    payload: { sections: { contact: { phone: '+380 44 000 0000' } } },
  })
  t.equal(patched.statusCode, 200)
  t.equal(patched.headers.etag, '"2"')
  const late = await app.request({ method: 'POST', url: '/v1/cases', key: polandCaseworker, headers, payload: newCase })
  t.equal(late.statusCode, 201)
  t.equal(late.headers['idempotent-replayed'], 'true')
  t.equal(late.headers.location, `/v1/cases/${created.id}`, 'the first outcome')
  t.equal(late.json().id, created.id)
  t.same(late.json().sections.contact, { phone: '+380 44 000 0000' }, 'the case as it is now')
  t.equal(late.headers.etag, '"2"', 'with its current ETag')
})

t.test('sending a packet twice with one key sends one packet', async (t) => {
  const app = await startTestApp(t)
  const opened = await openCase(t, app)
  await recordConsent(t, app, opened.id, ['identity', 'health'])
  await decideReturn(t, app, opened.id)
  const url = `/v1/cases/${opened.id}/packets`
  const headers = { 'idempotency-key': 'send-packet-1' }

  const first = await app.request({ method: 'POST', url, key: polandCaseworker, headers, payload: newPacket })
  t.equal(first.statusCode, 201)
  t.notOk(first.headers['idempotent-replayed'])
  const packet = first.json() as { id: string; kind: string; included_categories: string[]; withheld: unknown[] }
  t.equal(packet.kind, 'enquiry')
  t.same(packet.included_categories, ['health'])
  t.same(packet.withheld, [
    { category: 'identity', reason: 'not_needed_for_purpose' },
    { category: 'legal', reason: 'not_needed_for_purpose' },
  ])
  t.equal(await stepOf(app, opened.id), 'referral_sent', 'the enquiry took the case to referral_sent')

  const again = await app.request({ method: 'POST', url, key: polandCaseworker, headers, payload: newPacket })
  t.equal(again.statusCode, 201)
  t.equal(again.headers['idempotent-replayed'], 'true')
  t.same(again.json(), packet, 'the same packet')
  t.equal(again.headers.location, `/v1/packets/${packet.id}`)
  t.equal(again.headers.location, first.headers.location)
  t.equal(again.headers.etag, first.headers.etag)
  t.same(await packetsOf(app, opened.id), [packet.id], 'one packet, not superseded by a duplicate')
  const transitions = await app.database.db
    .selectFrom('case_transitions')
    .select('action')
    .where('case_id', '=', opened.id)
    .orderBy('id')
    .execute()
  t.same(
    transitions.map((row) => row.action),
    ['open', 'decide_return', 'send_referral'],
    'the procedure moved once: the replay took no second transition',
  )
})

t.test('the same key with a different request is a 422 and changes nothing', async (t) => {
  const app = await startTestApp(t)
  const headers = { 'idempotency-key': 'reused-key' }
  const first = await app.request({
    method: 'POST',
    url: '/v1/cases',
    key: polandCaseworker,
    headers,
    payload: newCase,
  })
  t.equal(first.statusCode, 201)
  const before = await casesOpenedBy(app, POLAND)

  const otherBody = { ...newCase, profile: { ...newCase.profile, age_band: '35_49' } }
  const changed = await app.request({
    method: 'POST',
    url: '/v1/cases',
    key: polandCaseworker,
    headers,
    payload: otherBody,
  })
  const problem = assertProblem(t, changed, 422, 'urn:trm:problem:idempotency-key-reused')
  t.type(problem.detail, 'string')
  t.same(await casesOpenedBy(app, POLAND), before, 'no case opened')

  // The same key on another operation is another request, too.
  const created = first.json() as { id: string }
  const onConsents = await app.request({
    method: 'POST',
    url: `/v1/cases/${created.id}/consents`,
    key: polandCaseworker,
    headers,
    payload: consentFor(['identity']),
  })
  assertProblem(t, onConsents, 422, 'urn:trm:problem:idempotency-key-reused')
  const consents = await app.request({ method: 'GET', url: `/v1/cases/${created.id}/consents`, key: polandCaseworker })
  t.same((consents.json() as { items: unknown[] }).items, [], 'no consent recorded')

  // The original request with the key still replays.
  const retry = await app.request({
    method: 'POST',
    url: '/v1/cases',
    key: polandCaseworker,
    headers,
    payload: newCase,
  })
  t.equal(retry.statusCode, 201)
  t.equal(retry.headers['idempotent-replayed'], 'true')
  t.same(retry.json(), created)
})

t.test('keys are scoped to the organisation', async (t) => {
  const app = await startTestApp(t)
  const headers = { 'idempotency-key': 'shared-looking-key' }
  const poland = await app.request({
    method: 'POST',
    url: '/v1/cases',
    key: polandCaseworker,
    headers,
    payload: newCase,
  })
  t.equal(poland.statusCode, 201)
  const polandCase = poland.json() as { id: string; sending_organisation_id: string }
  t.equal(polandCase.sending_organisation_id, POLAND)

  const guardBefore = await casesOpenedBy(app, BORDER_GUARD)
  const guard = await app.request({
    method: 'POST',
    url: '/v1/cases',
    key: borderGuardCaseworker,
    headers,
    payload: newCase,
  })
  t.equal(guard.statusCode, 201, 'the other organisation gets its own effect')
  t.notOk(guard.headers['idempotent-replayed'], 'not a replay of the other organisation’s response')
  const guardCase = guard.json() as { id: string; sending_organisation_id: string }
  t.not(guardCase.id, polandCase.id, 'a case of its own')
  t.equal(guardCase.sending_organisation_id, BORDER_GUARD)
  t.equal(guard.headers.location, `/v1/cases/${guardCase.id}`)
  t.same(
    (await casesOpenedBy(app, BORDER_GUARD)).filter((id) => !guardBefore.includes(id)),
    [guardCase.id],
  )

  // A different body from the other organisation is no conflict either.
  const otherBody = { ...newCase, profile: { ...newCase.profile, country_of_return: 'AL' } }
  const otherKey = { 'idempotency-key': 'only-poland-used-this' }
  const first = await app.request({
    method: 'POST',
    url: '/v1/cases',
    key: polandCaseworker,
    headers: otherKey,
    payload: newCase,
  })
  t.equal(first.statusCode, 201)
  const different = await app.request({
    method: 'POST',
    url: '/v1/cases',
    key: borderGuardCaseworker,
    headers: otherKey,
    payload: otherBody,
  })
  t.equal(different.statusCode, 201, 'not a 422: the key is the Border Guard’s own')
  t.notOk(different.headers['idempotent-replayed'])

  // Each organisation's retry replays its own response.
  const polandRetry = await app.request({
    method: 'POST',
    url: '/v1/cases',
    key: polandCaseworker,
    headers,
    payload: newCase,
  })
  t.equal(polandRetry.headers['idempotent-replayed'], 'true')
  t.same(polandRetry.json(), polandCase)
  const guardRetry = await app.request({
    method: 'POST',
    url: '/v1/cases',
    key: borderGuardCaseworker,
    headers,
    payload: newCase,
  })
  t.equal(guardRetry.headers['idempotent-replayed'], 'true')
  t.same(guardRetry.json(), guardCase)
})

t.test('a key whose request failed is not kept: the retry after fixing the cause succeeds', async (t) => {
  const app = await startTestApp(t)
  const opened = await openCase(t, app)
  await decideReturn(t, app, opened.id)
  const url = `/v1/cases/${opened.id}/packets`
  const headers = { 'idempotency-key': 'packet-before-consent' }

  // The enquiry needs the person's consent to share identity with the receiving partner.
  const refused = await app.request({ method: 'POST', url, key: polandCaseworker, headers, payload: newPacket })
  const problem = assertProblem(t, refused, 409, 'urn:trm:problem:preconditions-unmet') as ProblemBody & {
    unmet?: { code: string }[]
  }
  t.match(problem.unmet, [{ code: 'consent.identity' }], 'the missing consent is named')
  const stored = await app.database.db
    .selectFrom('idempotency_keys')
    .select('key')
    .where('organisation_id', '=', POLAND)
    .where('key', '=', 'packet-before-consent')
    .execute()
  t.same(stored, [], 'the key is not stored')

  // The same failure again is evaluated afresh, not replayed.
  const refusedAgain = await app.request({ method: 'POST', url, key: polandCaseworker, headers, payload: newPacket })
  assertProblem(t, refusedAgain, 409, 'urn:trm:problem:preconditions-unmet')
  t.same(await packetsOf(app, opened.id), [], 'no packet')
  t.equal(await stepOf(app, opened.id), 'return_decided', 'the case did not move')

  await recordConsent(t, app, opened.id, ['identity', 'health'])
  const sent = await app.request({ method: 'POST', url, key: polandCaseworker, headers, payload: newPacket })
  t.equal(sent.statusCode, 201, 'the retry with the same key succeeds')
  t.notOk(sent.headers['idempotent-replayed'], 'and is no replay')
  const packet = sent.json() as { id: string; included_categories: string[] }
  t.same(packet.included_categories, ['health'])

  const replay = await app.request({ method: 'POST', url, key: polandCaseworker, headers, payload: newPacket })
  t.equal(replay.statusCode, 201)
  t.equal(replay.headers['idempotent-replayed'], 'true', 'from now on the key replays')
  t.same(replay.json(), packet)
  t.same(await packetsOf(app, opened.id), [packet.id], 'one packet')
})

t.test('an invalid key is a 400 and changes nothing', async (t) => {
  const app = await startTestApp(t)
  const before = await casesOpenedBy(app, POLAND)
  const invalid: [string, string][] = [
    ['300 characters', 'k'.repeat(300)],
    ['201 characters', 'k'.repeat(201)],
    ['a space inside', 'my key'],
    ['a non-ASCII character', 'ключ-1'],
  ]
  for (const [name, value] of invalid) {
    await t.test(name, async (t) => {
      const response = await app.request({
        method: 'POST',
        url: '/v1/cases',
        key: polandCaseworker,
        headers: { 'idempotency-key': value },
        payload: newCase,
      })
      const problem = assertProblem(t, response, 400, 'urn:trm:problem:validation')
      t.ok(
        (problem.errors ?? []).some((error) => error.parameter?.toLowerCase() === 'idempotency-key'),
        'errors name the Idempotency-Key header',
      )
    })
  }
  t.same(await casesOpenedBy(app, POLAND), before, 'no case opened')

  const longest = 'k'.repeat(200)
  const accepted = await app.request({
    method: 'POST',
    url: '/v1/cases',
    key: polandCaseworker,
    headers: { 'idempotency-key': longest },
    payload: newCase,
  })
  t.equal(accepted.statusCode, 201, 'a key of 200 visible characters is accepted')
})

t.test('a replayed answer never returns data whose consent was withdrawn since', async (t) => {
  const app = await startTestApp(t)
  const { request } = app
  const created = await request({ method: 'POST', url: '/v1/cases', key: polandCaseworker, payload: newCase })
  const caseId = created.json().id as string
  const consent = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/consents`,
    key: polandCaseworker,
    payload: consentFor(['identity', 'health']),
  })
  await decideReturn(t, app, caseId)
  const sent = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/packets`,
    key: polandCaseworker,
    payload: { recipient_organisation_id: UKRAINE, purpose: 'return_assistance' },
  })
  t.equal(sent.statusCode, 201, 'the enquiry is sent')
  const packetId = sent.json().id as string
  const read = await request({ method: 'GET', url: `/v1/packets/${packetId}`, key: demoKeys.demoiomuacw1 })
  const acknowledge = () =>
    request({
      method: 'POST',
      url: `/v1/packets/${packetId}/acknowledge`,
      key: demoKeys.demoiomuacw1,
      headers: { 'if-match': String(read.headers.etag), 'idempotency-key': 'ack-1' },
      payload: { focal_point: { name: 'Iryna' }, alternate_contact: { name: 'Petro' } },
    })
  const first = await acknowledge()
  t.equal(first.statusCode, 200)
  t.ok(first.body.includes('post-traumatic'), 'the first answer carries the consented health data')
  t.notOk(first.body.includes('Kovalenko'), 'and, before acceptance, no identity')
  t.same(first.json().withheld, [
    { category: 'identity', reason: 'not_needed_for_purpose' },
    { category: 'legal', reason: 'not_needed_for_purpose' },
  ])

  const withdrawn = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/consents/${consent.json().id}/withdraw`,
    key: polandCaseworker,
    payload: {},
  })
  t.equal(withdrawn.statusCode, 200, 'the consent is withdrawn')
  const replay = await acknowledge()
  t.equal(replay.statusCode, 200)
  t.equal(replay.headers['idempotent-replayed'], 'true')
  t.same(replay.json().withdrawn_categories, ['health'])
  t.same(replay.json().included_categories, [], 'nothing is included any more')
  t.notOk(replay.body.includes('post-traumatic'), 'the replay carries none of the withdrawn health data')
  t.notOk(replay.body.includes('Kovalenko'), 'nor any identity')
})
