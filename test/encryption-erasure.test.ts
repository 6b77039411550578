/**
 * Personal data at rest: sealed with a data key of each case, which erasure destroys. The
 * database is read as an administrator with SQL (or a dump of it) would read it; the service
 * through HTTP, as a partner would.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import { PGlite } from '@electric-sql/pglite'
import { exportJWK, generateKeyPair } from 'jose'
import { sql } from 'kysely'
import t, { type Test } from 'tap'
import { buildApp, prepareDataAtRest } from '../src/app.js'
import { rewrapCaseKeys } from '../src/cases/data-at-rest.js'
import { retentionJob } from '../src/cases/erasure.js'
import { loadConfig } from '../src/config.js'
import { installKeyring, newKeyEntry, parseKeyring } from '../src/crypto/keyring.js'
import { pgliteDatabase } from '../src/db/embedded.js'
import { readMigrations } from '../src/db/migrate.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { loadSops } from '../src/sops/registry.js'
import { resealSecrets, secretsOf } from '../src/webhooks/queries.js'
import {
  demoKeys,
  startTestApp,
  type TestApp,
  testDatabaseUrl,
  testErasedKeysFile,
  testMasterKey,
} from './fixtures/app.js'
import { pdf, upload } from './fixtures/attachments.js'
import { auditSealer } from './fixtures/audit-sealer.js'
import { TestClock } from './fixtures/clock.js'
import { feedUntil } from './fixtures/feed.js'
import { acceptReferral, consentForUkraine, recipient, record, sender, transition } from './fixtures/referral.js'

const dpo = demoKeys.demoiompldpo as string
const supervisor = demoKeys.demoiomplsv1 as string

/** Words that appear nowhere else: each must be in what the service answers, and nowhere at rest. */
function canaries() {
  const word = (what: string) => `canary-${what}-${randomBytes(6).toString('hex')}`
  return { section: word('section'), health: word('health'), record: word('record'), attachment: word('attachment') }
}

type Canaries = ReturnType<typeof canaries>

/**
 * IOM Poland opens a case with a canary in a section, in a health condition (which the enquiry
 * carries to IOM Ukraine) and in a record, and IOM Ukraine reads the enquiry and accepts.
 */
async function referralWithCanaries(t: Test, app: TestApp, words: Canaries) {
  const { request } = app
  const opened = await request({
    method: 'POST',
    url: '/v1/cases',
    key: sender,
    payload: {
      profile: { age_band: '25_34', sex: 'female', nationality: 'UA', country_of_return: 'UA', vulnerabilities: [] },
      sections: {
        identity: { given_name: 'Olena', family_name: 'Kovalenko', notes: words.section },
        health: { conditions: [words.health] },
      },
    },
  })
  t.equal(opened.statusCode, 201, 'IOM Poland opens the case')
  const caseId = opened.json().id as string
  const consent = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/consents`,
    key: sender,
    payload: consentForUkraine(),
  })
  t.equal(consent.statusCode, 201, 'records the consent')
  const sheet = await upload(app, caseId, sender, { name: 'consent.pdf', bytes: pdf(words.attachment) }, 'identity')
  t.equal(sheet.statusCode, 201, 'uploads the signed consent sheet')
  const decision = { voluntary: true, informed: true, summary: words.record }
  t.equal((await record(app, caseId, sender, 'return_decision', undefined, decision)).statusCode, 201, 'a record')
  t.equal((await transition(app, caseId, sender, 'decide_return')).statusCode, 200, 'decides the return')
  const packet = await request({
    method: 'POST',
    url: `/v1/cases/${caseId}/packets`,
    key: sender,
    payload: { recipient_organisation_id: demoOrganisationIds.iomUkraine, purpose: 'return_assistance' },
  })
  t.equal(packet.statusCode, 201, 'and sends the enquiry')
  const packetId = packet.json().id as string
  t.equal((await request({ method: 'GET', url: `/v1/packets/${packetId}`, key: recipient })).statusCode, 200)
  const referralId = await acceptReferral(t, app, { caseId, consentId: consent.json().id, packetId })
  return { caseId, packetId, referralId, reference: opened.json().reference as string }
}

/** Every row of the tables that hold personal data, as text, as `select` shows them to an administrator. */
async function rawRows(app: TestApp): Promise<string> {
  const tables = [
    'cases',
    'case_records',
    'packets',
    'case_attachments',
    'webhook_secrets',
    'consents',
    'events',
    'audit_records',
  ]
  const texts: string[] = []
  for (const table of tables) {
    const { rows } = await sql<{ row: string }>`select t::text as row from ${sql.table(table)} as t`.execute(
      app.database.db,
    )
    texts.push(...rows.map((row) => row.row))
  }
  return texts.join('\n')
}

/**
 * The whole database as a backup holds it: `pg_dump` of the test's schema on PostgreSQL when the
 * tool is installed (else its rows as text), the data directory's bytes on PGlite.
 */
async function dump(app: TestApp): Promise<string> {
  const { jobBackend } = app.database
  if (jobBackend.kind === 'pglite') {
    const tar = await jobBackend.pglite.dumpDataDir('none')
    return Buffer.from(await tar.arrayBuffer()).toString('latin1')
  }
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(app.database.db)
  const schema = rows[0]?.schema ?? 'public'
  try {
    const { stdout } = await promisify(execFile)('pg_dump', [`--schema=${schema}`, testDatabaseUrl ?? ''], {
      maxBuffer: 256 * 1024 * 1024,
    })
    return stdout
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    return rawRows(app)
  }
}

/** Each canary is absent from `text`, as text and as the hex that bytes (an attachment's) show as in a dump. */
function absent(t: Test, text: string, words: string[], where: string) {
  for (const word of words) {
    const hex = Buffer.from(word).toString('hex')
    t.notOk(text.includes(word) || text.includes(hex), `${word.split('-')[1]} canary absent from ${where}`)
  }
}

async function newSigningKey(): Promise<string> {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
  return JSON.stringify(await exportJWK(privateKey))
}

t.test('a canary in every section, record, packet and webhook secret is sealed at rest and read back', async (t) => {
  const app = await startTestApp(t, { webhooks: { ...loadConfig({}).webhooks, allowPrivateTargets: true } })
  const words = canaries()
  const { caseId, packetId, referralId, reference } = await referralWithCanaries(t, app, words)
  const endpoint = await app.request({
    method: 'POST',
    url: '/v1/webhook-endpoints',
    key: sender,
    payload: { url: 'http://127.0.0.1:9/trm-events', event_types: ['case.opened'] },
  })
  t.equal(endpoint.statusCode, 201, 'IOM Poland registers a webhook endpoint')
  const secret = endpoint.json().secret as string
  t.match(secret, /^whsec_/, 'and is shown its signing secret once')

  const read = await app.request({ method: 'GET', url: `/v1/cases/${caseId}`, key: sender })
  t.equal(read.json().sections.identity.notes, words.section, 'the section reads back')
  t.same(read.json().sections.health.conditions, [words.health])
  const records = await app.request({ method: 'GET', url: `/v1/cases/${caseId}/records`, key: sender })
  t.ok(
    records.json().items.some((r: { data: { summary?: string } }) => r.data.summary === words.record),
    'the record reads back',
  )
  const enquiry = await app.request({ method: 'GET', url: `/v1/packets/${packetId}`, key: recipient })
  t.same(enquiry.json().content.sections.health.conditions, [words.health], 'the packet content reads back')
  const referral = await app.request({ method: 'GET', url: `/v1/packets/${referralId}`, key: recipient })
  t.equal(referral.json().content.sections.identity.notes, words.section, 'and the full referral')
  const sheet = (await app.request({ method: 'GET', url: `/v1/cases/${caseId}/attachments`, key: sender })).json()
    .items[0]
  const download = await app.request({
    method: 'GET',
    url: `/v1/cases/${caseId}/attachments/${sheet.id}`,
    key: sender,
  })
  t.ok(download.rawPayload.includes(Buffer.from(words.attachment)), 'the attachment reads back')
  const stored = await secretsOf(app.database.db, [endpoint.json().id])
  t.equal(stored.get(endpoint.json().id)?.[0]?.secret, secret, 'the webhook secret opens for signing')

  const backup = await dump(app)
  t.ok(backup.includes(reference), 'the dump holds the data in the clear that is not personal (positive control)')
  absent(t, backup, [...Object.values(words), secret], 'the dump')
  absent(t, await rawRows(app), [...Object.values(words), secret], 'the raw rows')

  const { rows } = await sql<{ alg: string; kid: string }>`
    select sections->>'alg' as alg, sections->>'kid' as kid from cases where id = ${caseId}`.execute(app.database.db)
  t.same(rows[0]?.alg, 'A256GCM', 'the algorithm is stored beside the value')
  t.ok(rows[0]?.kid, 'and the id of the key that sealed it')

  // A sealed value moved to another row does not open there: the additional data names the row.
  const other = await app.request({
    method: 'POST',
    url: '/v1/cases',
    key: sender,
    payload: { profile: read.json().profile, sections: {} },
  })
  await sql`update cases set sections = (select sections from cases where id = ${caseId}) where id = ${other.json().id}`.execute(
    app.database.db,
  )
  const swapped = await app.request({ method: 'GET', url: `/v1/cases/${other.json().id}`, key: sender })
  t.equal(swapped.statusCode, 500, 'sections copied to another case do not open there')
  t.notOk(swapped.body.includes(words.section), 'and nothing of them shows')
})

t.test('rotate-keys wraps every data key anew under the new master key; the old one can then go', async (t) => {
  const app = await startTestApp(t, { webhooks: { ...loadConfig({}).webhooks, allowPrivateTargets: true } })
  t.teardown(() => installKeyring(parseKeyring(testMasterKey)))
  const words = canaries()
  const { caseId, packetId } = await referralWithCanaries(t, app, words)
  const endpoint = await app.request({
    method: 'POST',
    url: '/v1/webhook-endpoints',
    key: sender,
    payload: { url: 'http://127.0.0.1:9/trm-events', event_types: ['case.opened'] },
  })
  const secret = endpoint.json().secret as string

  const next = newKeyEntry('test-2')
  installKeyring(parseKeyring(`${testMasterKey},${next}`, 'test-2'))
  t.ok((await rewrapCaseKeys(app.database.db, 'test-2')) >= 1, 'the case keys are rewrapped')
  t.equal(await resealSecrets(app.database.db), 1, 'the webhook secret is sealed anew')
  t.equal(await rewrapCaseKeys(app.database.db, 'test-2'), 0, 'a second run finds nothing left: idempotent')
  t.equal(await resealSecrets(app.database.db), 0)
  const { rows } = await sql<{
    kid: string
  }>`select distinct data_key->>'kid' as kid from cases where data_key is not null`.execute(app.database.db)
  t.same(
    rows.map((row) => row.kid),
    ['test-2'],
    'every data key is wrapped under the new master key',
  )

  installKeyring(parseKeyring(testMasterKey))
  const stale = await app.request({ method: 'GET', url: `/v1/cases/${caseId}`, key: sender })
  t.equal(stale.statusCode, 500, 'the old master key alone no longer opens the case: its key was wrapped anew')
  t.notOk(stale.body.includes(words.section))

  installKeyring(parseKeyring(next))
  const read = await app.request({ method: 'GET', url: `/v1/cases/${caseId}`, key: sender })
  t.equal(read.statusCode, 200, 'with the old master key retired, the case reads')
  t.equal(read.json().sections.identity.notes, words.section)
  const enquiry = await app.request({ method: 'GET', url: `/v1/packets/${packetId}`, key: recipient })
  t.same(enquiry.json().content.sections.health.conditions, [words.health], 'and so does the packet')
  const stored = await secretsOf(app.database.db, [endpoint.json().id])
  t.equal(stored.get(endpoint.json().id)?.[0]?.secret, secret, 'and the webhook secret')
})

t.test('erasing a case destroys its key, tells its recipients, keeps the tombstone and the audit trail', async (t) => {
  const clock = new TestClock()
  const signingKey = await newSigningKey()
  const erasedKeysFile = testErasedKeysFile()
  const app = await startTestApp(t, { auditSigningKey: signingKey, erasedKeysFile }, clock)
  const words = canaries()
  const { caseId, packetId, referralId, reference } = await referralWithCanaries(t, app, words)
  const before =
    app.database.jobBackend.kind === 'pglite' ? await app.database.jobBackend.pglite.dumpDataDir('none') : undefined
  const { rows: backupRows } = await sql<Record<string, unknown>>`
      select data_key_id, data_key::text as data_key, sections::text as sections from cases where id = ${caseId}`.execute(
    app.database.db,
  )

  const refused = await app.request({
    method: 'POST',
    url: `/v1/cases/${caseId}/erasure`,
    key: sender,
    payload: { reason: 'data_subject_request' },
  })
  t.equal(refused.statusCode, 403, 'a caseworker may not erase a case')
  const erased = await app.request({
    method: 'POST',
    url: `/v1/cases/${caseId}/erasure`,
    key: dpo,
    payload: { reason: 'data_subject_request' },
  })
  t.equal(erased.statusCode, 200, 'the DPO of IOM Poland erases it')
  t.match(erased.json(), {
    case_id: caseId,
    reference,
    reason: 'data_subject_request',
    notified_organisation_ids: [demoOrganisationIds.iomUkraine],
  })

  const gone = await app.request({ method: 'GET', url: `/v1/cases/${caseId}`, key: sender })
  t.equal(gone.statusCode, 410, 'the case answers 410 Gone')
  t.equal(gone.json().type, 'urn:trm:problem:case-erased')
  for (const url of [`/v1/packets/${packetId}`, `/v1/packets/${referralId}`]) {
    const packet = await app.request({ method: 'GET', url, key: recipient })
    t.equal(packet.statusCode, 410, `IOM Ukraine's packet ${url} is gone too`)
  }
  const records = await app.request({ method: 'GET', url: `/v1/cases/${caseId}/records`, key: sender })
  t.equal(records.statusCode, 410, 'and its records')
  const listed = await app.request({ method: 'GET', url: '/v1/cases', key: sender })
  const tombstone = listed.json().items.find((item: { id: string }) => item.id === caseId)
  t.match(tombstone, { reference, erasure: { reason: 'data_subject_request' } }, 'the list shows the tombstone')

  const { rows } = await sql<{ data_key: unknown; erased_at: Date | null }>`
      select data_key, erased_at from cases where id = ${caseId}`.execute(app.database.db)
  t.equal(rows[0]?.data_key, null, 'the data key is destroyed')
  absent(t, await rawRows(app), Object.values(words), 'the rows after the erasure')

  const notices = await app.request({ method: 'GET', url: '/v1/withdrawal-notices', key: recipient })
  const [notice, ...more] = notices.json().items
  t.same(more, [], 'IOM Ukraine, which received the packets, has one notice')
  t.match(notice, { cause: 'erased', consent_id: null, case_id: caseId, status: 'pending' })
  t.same(notice.categories, ['identity', 'health'], 'naming the categories it received')
  const isErasure = (e: { type: string; data: { notice_id?: string } }) =>
    e.type === 'case.erased' && e.data.notice_id === notice.id
  t.ok(
    (await feedUntil(app.request, recipient, (events) => events.some(isErasure))).some(isErasure),
    'and an event pointing to it',
  )
  const acknowledged = await app.request({
    method: 'POST',
    url: `/v1/withdrawal-notices/${notice.id}/acknowledge`,
    key: recipient,
    payload: { action: 'deleted' },
  })
  t.equal(acknowledged.statusCode, 200, 'which it acknowledges like a withdrawal')

  const again = await app.request({
    method: 'POST',
    url: `/v1/cases/${caseId}/erasure`,
    key: dpo,
    payload: { reason: 'end_of_retention' },
  })
  t.equal(again.statusCode, 200, 'erasing it again answers the tombstone')
  t.equal(again.json().reason, 'data_subject_request', 'unchanged')

  const sealer = await auditSealer(t, app, clock, { signingKey })
  await sealer.sealAll()
  const verification = await app.request({ method: 'GET', url: '/v1/audit/verification', key: dpo })
  t.equal(verification.json().valid, true, 'the audit chain still verifies')
  t.equal(verification.json().first_failure, null)

  // A backup from before the erasure still holds the wrapped key: the service starts on it with the
  // list of shredded keys and destroys it again before it answers.
  if (before) {
    const restored = pgliteDatabase(await PGlite.create({ loadDataDir: before }))
    t.teardown(() => restored.close().catch(() => {}))
    t.same(
      await prepareDataAtRest({ ...loadConfig({}), dataEncryptionKeys: testMasterKey, erasedKeysFile }, restored),
      {
        erasedAgain: 1,
        sealedCases: 0,
        sealedFreeText: 0,
        sealedSecrets: 0,
      },
    )
    const service = await buildApp({
      config: { ...loadConfig({}), logLevel: 'silent', erasedKeysFile },
      database: restored,
      migrations: await readMigrations(),
      clock,
    })
    t.teardown(() => service.close())
    const read = await service.inject({
      method: 'GET',
      url: `/v1/cases/${caseId}`,
      headers: { authorization: `Bearer ${sender}` },
    })
    t.equal(read.statusCode, 410, 'the restored case is erased again')
    const { rows: keys } = await sql<{ data_key: unknown }>`select data_key from cases where id = ${caseId}`.execute(
      restored.db,
    )
    t.equal(keys[0]?.data_key, null, 'its key destroyed again')
  } else {
    // On PostgreSQL the backup is the case's row as it stood before the erasure, written back.
    const row = backupRows[0] ?? {}
    await sql`update cases set data_key = ${row.data_key}::jsonb, sections = ${row.sections}::jsonb,
        erased_at = null, erasure_reason = null, erased_by_principal_id = null where id = ${caseId}`.execute(
      app.database.db,
    )
    const restoredRead = await app.request({ method: 'GET', url: `/v1/cases/${caseId}`, key: sender })
    t.equal(restoredRead.json().sections.identity.notes, words.section, 'the restored row reads, until the start')
    t.match(
      await prepareDataAtRest({ ...loadConfig({}), dataEncryptionKeys: testMasterKey, erasedKeysFile }, app.database),
      { erasedAgain: 1 },
    )
    const read = await app.request({ method: 'GET', url: `/v1/cases/${caseId}`, key: sender })
    t.equal(read.statusCode, 410, 'the restored case is erased again at start')
  }
})

t.test('the retention job erases a closed case once its period has passed', async (t) => {
  const clock = new TestClock()
  const erasedKeysFile = testErasedKeysFile()
  const app = await startTestApp(t, { erasedKeysFile }, clock)
  const opened = await app.request({
    method: 'POST',
    url: '/v1/cases',
    key: sender,
    payload: {
      profile: { age_band: '25_34', sex: 'female', nationality: 'UA', country_of_return: 'UA', vulnerabilities: [] },
      sections: { identity: { given_name: 'Olena' } },
    },
  })
  const caseId = opened.json().id as string
  const withdrawn = await transition(app, caseId, supervisor, 'withdraw', { reason: 'She chose to stay.' })
  t.equal(withdrawn.statusCode, 200, 'the person withdraws: the case is closed')
  const config = loadConfig({})
  t.equal(config.retention.bySop['adult-return'], 'P5Y', 'an adult case is kept five years')
  const job = retentionJob(app.database.db, loadSops(), clock, config.retention, erasedKeysFile)

  clock.advance(5 * 365)
  t.equal(await job.run({}, { retryCount: 0, signal: new AbortController().signal }), 0, 'not before five years')
  t.equal((await app.request({ method: 'GET', url: `/v1/cases/${caseId}`, key: sender })).statusCode, 200)
  clock.advance(2)
  t.equal(await job.run({}, { retryCount: 0, signal: new AbortController().signal }), 1, 'erased after them')
  const gone = await app.request({ method: 'GET', url: `/v1/cases/${caseId}`, key: sender })
  t.equal(gone.statusCode, 410)
  const listed = await app.request({ method: 'GET', url: '/v1/cases', key: sender })
  t.match(
    listed.json().items.find((item: { id: string }) => item.id === caseId),
    { erasure: { reason: 'end_of_retention' } },
    'the tombstone says why',
  )
})

t.test('rows written before encryption are sealed at the first start, and read as before', async (t) => {
  const app = await startTestApp(t)
  const words = canaries()
  const opened = await app.request({
    method: 'POST',
    url: '/v1/cases',
    key: sender,
    payload: {
      profile: { age_band: '25_34', sex: 'female', nationality: 'UA', country_of_return: 'UA', vulnerabilities: [] },
      sections: {},
    },
  })
  const caseId = opened.json().id as string
  // As migration 0013 leaves a case of before: its sections in the clear, no data key.
  const plaintext = JSON.stringify({ identity: { given_name: 'Olena', notes: words.section } })
  await sql`update cases set sections = ${plaintext}::jsonb, data_key = null, data_key_id = null where id = ${caseId}`.execute(
    app.database.db,
  )
  t.ok((await rawRows(app)).includes(words.section), 'the canary is in the clear before the start')

  const prepared = await prepareDataAtRest(
    { ...loadConfig({}), dataEncryptionKeys: testMasterKey, erasedKeysFile: testErasedKeysFile() },
    app.database,
  )
  t.equal(prepared.sealedCases, 1, 'the start seals the case')
  absent(t, await rawRows(app), [words.section], 'the rows once sealed')
  const read = await app.request({ method: 'GET', url: `/v1/cases/${caseId}`, key: sender })
  t.equal(read.json().sections.identity.notes, words.section, 'and it reads as before')
  t.equal(
    (
      await prepareDataAtRest(
        { ...loadConfig({}), dataEncryptionKeys: testMasterKey, erasedKeysFile: testErasedKeysFile() },
        app.database,
      )
    ).sealedCases,
    0,
    'a second start finds nothing left to seal',
  )
})
