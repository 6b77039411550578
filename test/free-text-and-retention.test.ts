/**
 * The free text of consents and packets (a guardian's and an interpreter's names, a child's views, a
 * withdrawal reason; a packet's note, questions and decline reason) is sealed with the case's key
 * like its sections; and the retention job's erasures are audited. Read as an administrator with SQL
 * would read the rows, and through HTTP as partners would.
 */
import { randomBytes } from 'node:crypto'
import { sql } from 'kysely'
import t, { type Test } from 'tap'
import { prepareDataAtRest } from '../src/app.js'
import { retentionJob } from '../src/cases/erasure.js'
import { loadConfig } from '../src/config.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { loadSops } from '../src/sops/registry.js'
import { demoKeys, startTestApp, type TestApp, testErasedKeysFile, testMasterKey } from './fixtures/app.js'
import { TestClock } from './fixtures/clock.js'
import {
  answerPacket,
  consentForUkraine,
  newCase,
  openReferral,
  recipient,
  record,
  sender,
  transition,
} from './fixtures/referral.js'

const dpo = demoKeys.demoiompldpo as string
const supervisor = demoKeys.demoiomplsv1 as string

function canary(what: string): string {
  return `canary-${what}-${randomBytes(6).toString('hex')}`
}

/** The rows of consents and packets, as `select` shows them to an administrator. */
async function rawRows(app: TestApp): Promise<string> {
  const texts: string[] = []
  for (const table of ['consents', 'packets']) {
    const { rows } = await sql<{ row: string }>`select t::text as row from ${sql.table(table)} as t`.execute(
      app.database.db,
    )
    texts.push(...rows.map((row) => row.row))
  }
  return texts.join('\n')
}

function absent(t: Test, text: string, words: Record<string, string>, where: string) {
  for (const [what, word] of Object.entries(words)) t.notOk(text.includes(word), `the ${what} is not in ${where}`)
}

const free = {
  guardian: canary('guardian'),
  interpreter: canary('interpreter'),
  childViews: canary('views'),
  note: canary('note'),
  question: canary('question'),
  declineReason: canary('decline'),
  withdrawalReason: canary('withdrawal'),
}

t.test('the free text of consents and packets is sealed, reads back, and is gone with the key', async (t) => {
  const app = await startTestApp(t)
  const { request } = app
  const opened = await request({ method: 'POST', url: '/v1/cases', key: sender, payload: newCase })
  const caseId = opened.json().id as string
  const consent = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/consents`,
    key: sender,
    payload: {
      ...consentForUkraine(),
      interpreter: { used: true, name: free.interpreter },
      guardian: { name: free.guardian, relationship: 'legal_representative' },
      child_views: free.childViews,
    },
  })
  t.equal(consent.statusCode, 201, 'IOM Poland records the consent, with a guardian, an interpreter and views')
  const consentId = consent.json().id as string
  t.equal((await record(app, caseId, sender, 'return_decision')).statusCode, 201)
  t.equal((await transition(app, caseId, sender, 'decide_return')).statusCode, 200)
  const sent = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/packets`,
    key: sender,
    payload: {
      recipient_organisation_id: demoOrganisationIds.iomUkraine,
      purpose: 'return_assistance',
      note: free.note,
    },
  })
  t.equal(sent.statusCode, 201, 'and sends the enquiry with a note')
  const packetId = sent.json().id as string
  t.equal((await request({ method: 'GET', url: `/v1/packets/${packetId}`, key: recipient })).statusCode, 200)
  const acknowledgement = { focal_point: { name: 'Oksana Petrenko' }, alternate_contact: { name: 'Andrii Shevchenko' } }
  t.equal((await answerPacket(app, packetId, recipient, 'acknowledge', acknowledgement)).statusCode, 200)
  const asked = await answerPacket(app, packetId, recipient, 'request-information', { questions: [free.question] })
  t.equal(asked.statusCode, 200, 'IOM Ukraine asks a question')
  const declined = await answerPacket(app, packetId, recipient, 'decline', {
    reason_code: 'no_capacity',
    reason_text: free.declineReason,
  })
  t.equal(declined.statusCode, 200, 'and declines, with a reason')
  const withdrawn = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/consents/${consentId}/withdraw`,
    key: sender,
    payload: { reason: free.withdrawalReason },
  })
  t.equal(withdrawn.statusCode, 200, 'the person withdraws her consent, giving a reason')

  const readConsent = await request({ method: 'GET', url: `/v1/cases/${caseId}/consents/${consentId}`, key: sender })
  t.match(
    readConsent.json(),
    {
      guardian: { name: free.guardian },
      interpreter: { used: true, name: free.interpreter },
      child_views: free.childViews,
      withdrawal_reason: free.withdrawalReason,
    },
    'the consent reads back',
  )
  const readPacket = await request({ method: 'GET', url: `/v1/packets/${packetId}`, key: sender })
  t.match(
    readPacket.json(),
    {
      note: free.note,
      questions: [free.question],
      decision: { outcome: 'declined', reason_code: 'no_capacity', reason_text: free.declineReason },
    },
    'and so does the packet',
  )
  const inbox = await request({ method: 'GET', url: '/v1/packets?direction=inbound', key: recipient })
  t.match(
    inbox.json().items.find((item: { id: string }) => item.id === packetId),
    { note: free.note, decision: { reason_text: free.declineReason } },
    'and the inbox of IOM Ukraine',
  )
  absent(t, await rawRows(app), free, 'the stored rows')
  const { rows } = await sql<{
    alg: string
  }>`select guardian->>'alg' as alg from consents where id = ${consentId}`.execute(app.database.db)
  t.equal(rows[0]?.alg, 'A256GCM', 'the algorithm is stored beside the sealed value')

  const erased = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/erasure`,
    key: dpo,
    payload: { reason: 'data_subject_request' },
  })
  t.equal(erased.statusCode, 200, 'the case is erased')
  const gone = await request({ method: 'GET', url: `/v1/cases/${caseId}/consents/${consentId}`, key: sender })
  t.equal(gone.statusCode, 410, 'its consents are gone')
  const list = await request({ method: 'GET', url: '/v1/packets?direction=outbound', key: sender })
  const summary = list.json().items.find((item: { id: string }) => item.id === packetId)
  t.match(summary, { note: null, questions: null, decision: null }, 'its packets keep no free text')
  absent(t, await rawRows(app), free, 'the rows after the erasure')
})

t.test('free text written in the clear before is sealed at start, and reads as before', async (t) => {
  const app = await startTestApp(t)
  const { request } = app
  const { caseId, consentId, packetId } = await openReferral(t, app)
  // As the rows stood before migration 0015: free text in the clear.
  const guardian = JSON.stringify({ name: free.guardian, relationship: 'parent' })
  await sql`update consents set child_views = ${free.childViews}, guardian = ${guardian}::jsonb,
      interpreter = '{"used": false}'::jsonb where id = ${consentId}`.execute(app.database.db)
  const questions = JSON.stringify([free.question])
  await sql`update packets set note = ${free.note}, questions = ${questions}::jsonb where id = ${packetId}`.execute(
    app.database.db,
  )
  const before = await rawRows(app)
  t.ok(before.includes(free.childViews) && before.includes(free.note), 'the canaries are in the clear before the start')
  const clear = await request({ method: 'GET', url: `/v1/cases/${caseId}/consents/${consentId}`, key: sender })
  t.equal(clear.json().child_views, free.childViews, 'text in the clear still reads')

  const config = { ...loadConfig({}), dataEncryptionKeys: testMasterKey, erasedKeysFile: testErasedKeysFile() }
  const prepared = await prepareDataAtRest(config, app.database)
  t.equal(prepared.sealedFreeText, 2, 'the start seals the consent and the packet')
  absent(t, await rawRows(app), { views: free.childViews, guardian: free.guardian, note: free.note }, 'the rows')
  const readConsent = await request({ method: 'GET', url: `/v1/cases/${caseId}/consents/${consentId}`, key: sender })
  t.match(
    readConsent.json(),
    { child_views: free.childViews, guardian: { name: free.guardian } },
    'and reads as before',
  )
  const readPacket = await request({ method: 'GET', url: `/v1/packets/${packetId}`, key: sender })
  t.match(readPacket.json(), { note: free.note, questions: [free.question] })
  t.equal((await prepareDataAtRest(config, app.database)).sealedFreeText, 0, 'a second start finds nothing to seal')
})

t.test(
  'an erasure by the retention job is audited: the service, for the controller, at the end of retention',
  async (t) => {
    const clock = new TestClock()
    const erasedKeysFile = testErasedKeysFile()
    const app = await startTestApp(t, { erasedKeysFile }, clock)
    const cases: string[] = []
    for (const _ of [1, 2]) {
      const opened = await app.request({ method: 'POST', url: '/v1/cases', key: sender, payload: newCase })
      cases.push(opened.json().id as string)
      const closed = await transition(app, opened.json().id, supervisor, 'withdraw', { reason: 'She chose to stay.' })
      t.equal(closed.statusCode, 200, 'the person withdraws: the case is closed')
    }
    const config = loadConfig({})
    const job = retentionJob(app.database.db, loadSops(), clock, config.retention, erasedKeysFile)
    const run = () => job.run({}, { retryCount: 0, signal: new AbortController().signal })
    clock.advance(5 * 365 + 2)
    t.equal(await run(), 2, 'the retention job erases both after five years')
    t.equal(await run(), 0, 'and nothing more on its next run')

    const { rows } = await sql<{
      case_id: string
      action: string
      request_id: string
      organisation_id: string
      resource_type: string
      details: Record<string, unknown>
      principal_name: string
      principal_kind: string
      principal_organisation_id: string
    }>`
    select a.case_id, a.action, a.request_id, a.organisation_id, a.resource_type, a.details,
      p.name as principal_name, p.kind as principal_kind, p.organisation_id as principal_organisation_id
    from audit_records a join principals p on p.id = a.principal_id
    where a.case_id in (${sql.join(cases)}) and a.action = 'erase-expired-cases' order by a.id`.execute(app.database.db)
    t.same(
      rows.map((row) => row.case_id),
      cases,
      'each erasure wrote one audit record',
    )
    for (const row of rows) {
      t.match(row, {
        resource_type: 'case',
        organisation_id: demoOrganisationIds.iomPoland,
        principal_name: 'Retention schedule',
        principal_kind: 'system',
        principal_organisation_id: demoOrganisationIds.iomPoland,
        details: { erasure_reason: 'end_of_retention', retention_period: 'P5Y' },
      })
      t.match(row.request_id, /^job:erase-expired-cases:/, 'naming the run of the job')
    }
    t.equal(rows[0]?.request_id, rows[1]?.request_id, 'one run, one id')
    const { rows: principals } = await sql<{ count: string | number }>`
    select count(*) as count from principals where name = 'Retention schedule'`.execute(app.database.db)
    t.equal(Number(principals[0]?.count), 1, 'the service acts as one principal of IOM Poland, made once')
    const { rows: keys } = await sql<{ count: string | number }>`
    select count(*) as count from api_keys k join principals p on p.id = k.principal_id
    where p.name = 'Retention schedule'`.execute(app.database.db)
    t.equal(Number(keys[0]?.count), 0, 'which holds no API key')
  },
)
