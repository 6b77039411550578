import type { LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { demoKeys, startTestApp, type TestApp, testDatabaseUrl } from './fixtures/app.js'
import {
  acknowledgement,
  answerPacket,
  consentForUkraine,
  newCase,
  openReferral,
  recipient,
  record,
  transition,
} from './fixtures/referral.js'

// Concurrent duplicates and conflicting writes. Only meaningful on PostgreSQL: embedded PGlite runs
// one transaction at a time, so requests there never overlap inside the database.
const skip = testDatabaseUrl
  ? false
  : 'needs PostgreSQL (set TEST_DATABASE_URL): PGlite runs one transaction at a time, so nothing runs concurrently'

const POLAND = demoOrganisationIds.iomPoland // IOM Poland (demo)
const UKRAINE = demoOrganisationIds.iomUkraine // IOM Ukraine (demo)
const caseworker = demoKeys.demoiomplcw1 as string

/** Starts all requests before awaiting any, so they overlap on the server and in the database. */
function inParallel(count: number, send: (index: number) => Promise<LightMyRequestResponse>) {
  return Promise.all(Array.from({ length: count }, (_, index) => send(index)))
}

function tally(responses: LightMyRequestResponse[]): Record<number, number> {
  const counts: Record<number, number> = {}
  for (const response of responses) counts[response.statusCode] = (counts[response.statusCode] ?? 0) + 1
  return counts
}

async function openCase(t: Test, app: TestApp): Promise<string> {
  const response = await app.request({ method: 'POST', url: '/v1/cases', key: caseworker, payload: newCase })
  t.equal(response.statusCode, 201, 'case opened')
  return (response.json() as { id: string }).id
}

/** A case with the consent recorded and the return decided: the step from which the enquiry goes. */
async function readyToRefer(t: Test, app: TestApp): Promise<string> {
  const caseId = await openCase(t, app)
  const consent = await app.request({
    method: 'POST',
    url: `/v1/cases/${caseId}/consents`,
    key: caseworker,
    payload: consentForUkraine(),
  })
  t.equal(consent.statusCode, 201, 'consent recorded')
  t.equal((await record(app, caseId, caseworker, 'return_decision')).statusCode, 201, 'return decision recorded')
  t.equal((await transition(app, caseId, caseworker, 'decide_return')).statusCode, 200, 'and taken')
  return caseId
}

/** The actions the case's procedure took, in order. */
async function transitionsOf(app: TestApp, caseId: string): Promise<string[]> {
  const rows = await app.database.db
    .selectFrom('case_transitions')
    .select('action')
    .where('case_id', '=', caseId)
    .orderBy('id')
    .execute()
  return rows.map((row) => row.action)
}

t.test('50 concurrent sends with one Idempotency-Key send one packet', { skip }, async (t) => {
  const app = await startTestApp(t)
  const caseId = await readyToRefer(t, app)

  const responses = await inParallel(50, () =>
    app.request({
      method: 'POST',
      url: `/v1/cases/${caseId}/packets`,
      key: caseworker,
      headers: { 'idempotency-key': 'one-send-under-load' },
      payload: { recipient_organisation_id: UKRAINE, purpose: 'return_assistance' },
    }),
  )
  t.same(tally(responses), { 201: 50 }, 'all 50 answer 201')
  const ids = new Set(responses.map((response) => (response.json() as { id?: string }).id))
  t.equal(ids.size, 1, 'all with the same packet')
  const [packetId] = [...ids]
  const replayed = responses.filter((response) => response.headers['idempotent-replayed'] === 'true')
  t.equal(replayed.length, 49, '49 are marked as replays')
  const locations = new Set(responses.map((response) => response.headers.location))
  t.same([...locations], [`/v1/packets/${packetId}`], 'all with the same Location')

  const stored = await app.database.db
    .selectFrom('packets')
    .select(['id', 'kind', 'status', 'version'])
    .where('case_id', '=', caseId)
    .execute()
  t.same(
    stored,
    [{ id: packetId, kind: 'enquiry', status: 'sent', version: 1 }],
    'the database holds exactly one packet for the case',
  )
  t.same(
    await transitionsOf(app, caseId),
    ['open', 'decide_return', 'send_referral'],
    'the procedure took the enquiry once',
  )
  const audited = await app.database.db
    .selectFrom('audit_records')
    .select('resource_type')
    .where('case_id', '=', caseId)
    .where('action', '=', 'sendPacket')
    .orderBy('id')
    .execute()
  t.same(
    audited.map((row) => row.resource_type),
    ['packet', 'case'],
    'one send in the audit trail: the packet, and the step it moved the case to',
  )
})

t.test('20 concurrent enquiries without a key: one is sent, the others find the step moved on', { skip }, async (t) => {
  const app = await startTestApp(t)
  const caseId = await readyToRefer(t, app)

  const responses = await inParallel(20, () =>
    app.request({
      method: 'POST',
      url: `/v1/cases/${caseId}/packets`,
      key: caseworker,
      payload: { recipient_organisation_id: UKRAINE, purpose: 'return_assistance' },
    }),
  )
  t.same(tally(responses), { 201: 1, 409: 19 }, 'exactly one 201 and 19 × 409')
  for (const late of responses.filter((response) => response.statusCode === 409)) {
    t.match(
      late.json(),
      { type: 'urn:trm:problem:action-not-open', unmet: [{ code: 'step' }] },
      'a late send learns that the enquiry went already',
    )
  }
  const sent = responses.find((response) => response.statusCode === 201)?.json() as { id: string }
  const stored = await app.database.db.selectFrom('packets').select('id').where('case_id', '=', caseId).execute()
  t.same(stored, [{ id: sent.id }], 'one enquiry, nothing superseded')
  t.same(await transitionsOf(app, caseId), ['open', 'decide_return', 'send_referral'], 'one send_referral')
})

t.test(
  '20 concurrent first reads by the recipient: one takes delivery, every one answers it received',
  { skip },
  async (t) => {
    const app = await startTestApp(t)
    const caseId = await readyToRefer(t, app)
    const sent = await app.request({
      method: 'POST',
      url: `/v1/cases/${caseId}/packets`,
      key: caseworker,
      payload: { recipient_organisation_id: UKRAINE, purpose: 'return_assistance' },
    })
    t.equal(sent.statusCode, 201, 'the enquiry is sent')
    const packetId = (sent.json() as { id: string }).id

    const responses = await inParallel(20, () =>
      app.request({ method: 'GET', url: `/v1/packets/${packetId}`, key: recipient }),
    )
    t.same(tally(responses), { 200: 20 }, '20 × 200')
    const answers = responses.map((response) => response.json() as { status: string; history: { status: string }[] })
    t.ok(
      answers.every((answer) => answer.status === 'received'),
      'each reader sees it received, the one that took delivery and the ones that found it taken',
    )
    const stored = await app.database.db
      .selectFrom('packets')
      .select(['status', 'revision', 'history'])
      .where('id', '=', packetId)
      .executeTakeFirstOrThrow()
    t.same(
      { status: stored.status, revision: stored.revision, steps: stored.history.map((step) => step.status) },
      { status: 'received', revision: 2, steps: ['sent', 'received'] },
      'one delivery: one step in its history, one new revision',
    )
    const events = await app.database.db
      .selectFrom('events')
      .select('type')
      .where('case_id', '=', caseId)
      .where('type', '=', 'packet.received')
      .execute()
    t.equal(events.length, 1, 'one packet.received event')
    const records = await app.database.db
      .selectFrom('audit_records')
      .select('request_id')
      .where('resource_id', '=', packetId)
      .where('action', '=', 'getPacket')
      .execute()
    t.equal(records.length, 20, 'each read has its audit record: the delivery with its change, the others as reads')
  },
)

t.test('accept and decline raced with the same If-Match: one answer wins', { skip }, async (t) => {
  const app = await startTestApp(t)
  const referral = await openReferral(t, app)
  const { caseId, packetId } = referral
  t.equal(
    (await answerPacket(app, packetId, recipient, 'acknowledge', acknowledgement)).statusCode,
    200,
    'acknowledged',
  )
  t.equal((await record(app, caseId, caseworker, 'assessment', 'risk_and_needs')).statusCode, 201)
  t.equal((await record(app, caseId, recipient, 'assessment', 'risk_and_needs')).statusCode, 201)
  const read = await app.request({ method: 'GET', url: `/v1/packets/${packetId}`, key: recipient })
  const etag = String(read.headers.etag)

  const responses = await inParallel(20, (index) =>
    app.request({
      method: 'POST',
      url: `/v1/packets/${packetId}/${index % 2 === 0 ? 'accept' : 'decline'}`,
      key: recipient,
      headers: { 'if-match': etag },
      payload: index % 2 === 0 ? {} : { reason_code: 'no_capacity', reason_text: 'Full until February.' },
    }),
  )
  t.same(tally(responses), { 200: 1, 412: 19 }, 'exactly one 200 and 19 × 412')
  const winner = responses.find((response) => response.statusCode === 200)?.json() as { status: string }
  const accepted = winner.status === 'accepted'
  t.ok(['accepted', 'declined'].includes(winner.status), `the winner ${winner.status} the enquiry`)

  const stored = await app.database.db
    .selectFrom('packets')
    .select(['kind', 'status'])
    .where('case_id', '=', caseId)
    .orderBy('seq')
    .execute()
  t.same(
    stored,
    accepted
      ? [
          { kind: 'enquiry', status: 'accepted' },
          { kind: 'referral', status: 'sent' },
        ]
      : [{ kind: 'enquiry', status: 'declined' }],
    accepted ? 'one full referral followed' : 'no full referral went',
  )
  const step = await app.database.db.selectFrom('cases').select('step').where('id', '=', caseId).executeTakeFirst()
  t.equal(step?.step, accepted ? 'accepted' : 'declined', 'the case is where the winning answer took it')
  t.same(
    await transitionsOf(app, caseId),
    [
      'open',
      'decide_return',
      'send_referral',
      'acknowledge_referral',
      accepted ? 'accept_referral' : 'decline_referral',
    ],
    'one answer in the procedure',
  )
})

t.test('20 concurrent updates with the same If-Match: one wins, the rest are 412', { skip }, async (t) => {
  const app = await startTestApp(t)
  const caseId = await openCase(t, app)
  const read = await app.request({ method: 'GET', url: `/v1/cases/${caseId}`, key: caseworker })
  t.equal(read.statusCode, 200)
  const etag = String(read.headers.etag)
  const version = (read.json() as { version: number }).version
  t.equal(etag, `"${version}"`)

  const responses = await inParallel(20, (index) =>
    app.request({
      method: 'PATCH',
      url: `/v1/cases/${caseId}`,
      key: caseworker,
      headers: { 'if-match': etag },
      payload: { sections: { contact: { phone: `+380 44 000 ${String(index).padStart(4, '0')}` } } },
    }),
  )
  t.same(tally(responses), { 200: 1, 412: 19 }, 'exactly one 200 and 19 × 412')
  const winner = responses.find((response) => response.statusCode === 200)
  const newEtag = `"${version + 1}"`
  t.equal(winner?.headers.etag, newEtag, 'the winner gets the next version')
  for (const loser of responses.filter((response) => response.statusCode === 412)) {
    t.match(
      loser.json(),
      { type: 'urn:trm:problem:stale-version', current_etag: newEtag },
      'a loser learns the current ETag',
    )
  }

  const after = await app.request({ method: 'GET', url: `/v1/cases/${caseId}`, key: caseworker })
  const current = after.json() as { version: number; sections: { contact?: { phone: string } } }
  t.equal(current.version, version + 1, 'the version went up by exactly one')
  t.same(
    current.sections.contact,
    (winner?.json() as { sections: { contact?: unknown } } | undefined)?.sections.contact,
    'the case holds the winner’s change',
  )
  const audited = await app.database.db
    .selectFrom('audit_records')
    .select('id')
    .where('case_id', '=', caseId)
    .where('action', '=', 'updateCase')
    .execute()
  t.equal(audited.length, 1, 'one update in the audit trail')
})

t.test('20 concurrent case openings with one Idempotency-Key open one case', { skip }, async (t) => {
  const app = await startTestApp(t)
  const before = await app.database.db
    .selectFrom('cases')
    .select('id')
    .where('sending_organisation_id', '=', POLAND)
    .execute()

  const responses = await inParallel(20, () =>
    app.request({
      method: 'POST',
      url: '/v1/cases',
      key: caseworker,
      headers: { 'idempotency-key': 'open-once-under-load' },
      payload: newCase,
    }),
  )
  t.same(tally(responses), { 201: 20 }, 'all 20 answer 201')
  const ids = new Set(responses.map((response) => (response.json() as { id?: string }).id))
  t.equal(ids.size, 1, 'all with the same case')
  t.equal(
    responses.filter((response) => response.headers['idempotent-replayed'] === 'true').length,
    19,
    '19 are marked as replays',
  )

  const after = await app.database.db
    .selectFrom('cases')
    .select('id')
    .where('sending_organisation_id', '=', POLAND)
    .execute()
  t.same(
    after.map((row) => row.id).filter((id) => !before.some((row) => row.id === id)),
    [...ids],
    'exactly one case was opened',
  )
})
