/**
 * Attachments: documents uploaded to a case, checked by their own bytes, sealed with the case's
 * data key, sent only in a packet under consent, taken away by withdrawal and by erasure, and
 * audited — all through HTTP, as partners would use them, and read back from the database as an
 * administrator with SQL would.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import canonicalize from 'canonicalize'
import { sql } from 'kysely'
import t from 'tap'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { demoKeys, startTestApp, type TestApp } from './fixtures/app.js'
import { formData, pdf, png, upload } from './fixtures/attachments.js'
import { acceptReferral, openReferral, recipient, sender } from './fixtures/referral.js'

const dpo = demoKeys.demoiompldpo as string
const shelter = demoKeys.demoshuacw01 as string
const morocco = demoKeys.demoiommacw1 as string

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex')
}

function canary(what: string): string {
  return `canary-${what}-${randomBytes(6).toString('hex')}`
}

/** The sealed columns of the attachments as stored: the bytes as they are, the description as its text. */
async function storedAttachments(app: TestApp, caseId: string) {
  const { rows } = await sql<{ id: string; content: Buffer | null; description: string }>`
    select id, content, description::text as description from case_attachments where case_id = ${caseId}`.execute(
    app.database.db,
  )
  // PGlite answers bytea as a Uint8Array, whose `includes` looks for one byte, not for a sequence.
  return rows.map((row) => ({ ...row, content: row.content && Buffer.from(row.content) }))
}

t.test('an upload is checked by its bytes, its size and its category, and stored sealed', async (t) => {
  const app = await startTestApp(t, { attachmentMaxBytes: 4096 })
  const opened = await app.request({
    method: 'POST',
    url: '/v1/cases',
    key: sender,
    payload: {
      profile: { age_band: '25_34', sex: 'female', nationality: 'UA', country_of_return: 'UA', vulnerabilities: [] },
    },
  })
  const caseId = opened.json().id as string
  const words = { sheet: canary('sheet'), photo: canary('photo'), name: canary('name') }
  const sheet = pdf(words.sheet)

  const uploaded = await upload(app, caseId, sender, {
    name: `consent-${words.name}.pdf`,
    type: 'application/pdf',
    bytes: sheet,
  })
  t.equal(uploaded.statusCode, 201, 'IOM Poland uploads the signed consent sheet')
  t.match(uploaded.json(), {
    case_id: caseId,
    file_name: `consent-${words.name}.pdf`,
    media_type: 'application/pdf',
    size: sheet.length,
    category: 'legal',
    sha256: sha256(sheet),
    uploaded_by_organisation_id: demoOrganisationIds.iomPoland,
  })
  t.equal(uploaded.headers.location, `/v1/cases/${caseId}/attachments/${uploaded.json().id}`)
  const photo = png(words.photo)
  const passport = await upload(app, caseId, sender, { name: 'passport.png', bytes: photo }, 'identity')
  t.equal(passport.statusCode, 201, 'a PNG sent as application/octet-stream is taken by its bytes')
  t.equal(passport.json().media_type, 'image/png')

  const text = await upload(app, caseId, sender, {
    name: 'sheet.pdf',
    type: 'application/pdf',
    bytes: Buffer.from(`just text ${words.sheet}`),
  })
  t.equal(text.statusCode, 415, 'bytes that are no PDF, JPEG or PNG are refused, whatever the name says')
  t.equal(text.json().type, 'urn:trm:problem:attachment-type-refused')
  const mismatch = await upload(app, caseId, sender, { name: 'sheet.pdf', type: 'application/pdf', bytes: photo })
  t.equal(mismatch.statusCode, 422, 'a declared type that disagrees with the bytes is refused')
  t.match(mismatch.json(), {
    type: 'urn:trm:problem:attachment-type-mismatch',
    declared: 'application/pdf',
    detected: 'image/png',
  })
  const large = await upload(app, caseId, sender, { name: 'large.pdf', bytes: pdf('x'.repeat(5000)) })
  t.equal(large.statusCode, 413, 'a file over the limit is refused')
  t.match(large.json(), { type: 'urn:trm:problem:attachment-too-large', max_bytes: 4096 })
  const unknown = await upload(app, caseId, sender, { name: 'sheet.pdf', bytes: sheet }, 'horoscope')
  t.equal(unknown.statusCode, 400, 'a category outside the consent vocabulary is refused')
  t.match(unknown.json(), { type: 'urn:trm:problem:validation', errors: [{ pointer: '#/category' }] })
  const noFile = formData([{ name: 'category', value: 'legal' }])
  const missing = await app.request({
    method: 'POST',
    url: `/v1/cases/${caseId}/attachments`,
    key: sender,
    ...noFile,
  })
  t.equal(missing.statusCode, 400, 'an upload without a file is refused')
  t.match(missing.json(), { errors: [{ pointer: '#/file' }] })
  const json = await app.request({
    method: 'POST',
    url: `/v1/cases/${caseId}/attachments`,
    key: sender,
    payload: { category: 'legal', file: 'JVBERi0=' },
  })
  t.equal(json.statusCode, 415, 'an upload must be multipart/form-data')
  t.equal(json.json().type, 'urn:trm:problem:attachment-type-refused')
  const auditor = await upload(app, caseId, dpo, { name: 'sheet.pdf', bytes: sheet })
  t.equal(auditor.statusCode, 403, 'a DPO reads, it does not upload')

  const key = { 'idempotency-key': `upload-${randomBytes(4).toString('hex')}` }
  const first = await upload(app, caseId, sender, { name: 'again.pdf', bytes: sheet }, 'legal', key)
  const replay = await upload(app, caseId, sender, { name: 'again.pdf', bytes: sheet }, 'legal', key)
  t.equal(replay.headers['idempotent-replayed'], 'true', 'a retried upload replays the first')
  t.equal(replay.json().id, first.json().id)
  const other = await upload(app, caseId, sender, { name: 'again.pdf', bytes: photo }, 'legal', key)
  t.equal(other.statusCode, 422, 'the same key with other bytes is refused')

  const listed = await app.request({ method: 'GET', url: `/v1/cases/${caseId}/attachments`, key: sender })
  t.same(
    listed.json().items.map((item: { id: string }) => item.id),
    [uploaded.json().id, passport.json().id, first.json().id],
    'the list holds the three accepted uploads, oldest first',
  )
  const download = await app.request({
    method: 'GET',
    url: `/v1/cases/${caseId}/attachments/${uploaded.json().id}`,
    key: sender,
  })
  t.equal(download.statusCode, 200)
  t.same(download.rawPayload, sheet, 'the uploader downloads the same bytes')
  t.equal(download.headers['content-type'], 'application/pdf')
  t.equal(download.headers['repr-digest'], `sha-256=:${createHash('sha256').update(sheet).digest('base64')}:`)
  t.match(String(download.headers['content-disposition']), /^attachment; filename="consent-canary-name-/)

  const exported = await app.request({
    method: 'GET',
    url: `/v1/cases/${caseId}/subject-access-export`,
    key: dpo,
    headers: { accept: 'application/json' },
  })
  t.same(
    exported.json().attachments.map((item: { file_name: string }) => item.file_name),
    [`consent-${words.name}.pdf`, 'passport.png', 'again.pdf'],
    "the DPO's subject access export lists the person's documents",
  )
  const readable = await app.request({
    method: 'GET',
    url: `/v1/cases/${caseId}/subject-access-export`,
    key: dpo,
    headers: { accept: 'text/html' },
  })
  t.ok(readable.body.includes(`consent-${words.name}.pdf`), 'and so does its readable form')

  const stored = await storedAttachments(app, caseId)
  t.equal(stored.length, 3)
  t.ok(sheet.includes(Buffer.from(words.sheet)), 'the canary is in the plaintext (positive control)')
  for (const row of stored) {
    t.ok(row.content && row.content.length > 0, 'the bytes are stored')
    for (const word of Object.values(words)) {
      t.notOk(row.content?.includes(Buffer.from(word)), `the ${word.split('-')[1]} canary is not in the stored bytes`)
      t.notOk(row.description.includes(word), `nor in the stored description`)
    }
    t.notOk(row.description.includes(sha256(sheet)), 'nor is the hash of the bytes')
  }
  const { rows: audit } = await sql<{ action: string; resource_id: string; details: Record<string, unknown> }>`
    select action, resource_id, details from audit_records where case_id = ${caseId} and resource_type = 'attachment'
    order by id`.execute(app.database.db)
  t.same(
    audit.map((row) => row.action),
    ['uploadCaseAttachment', 'uploadCaseAttachment', 'uploadCaseAttachment', 'getCaseAttachment'],
    'every upload and the download are audited',
  )
  t.same(audit[0]?.details, { category: 'legal', media_type: 'application/pdf', size: sheet.length })
  t.notOk(JSON.stringify(audit).includes(words.name), 'the audit never holds the file name')
})

t.test('an attachment travels under consent; withdrawal and erasure take it away', async (t) => {
  const app = await startTestApp(t)
  const referral = await openReferral(t, app)
  await acceptReferral(t, app, referral)
  const { caseId, consentId } = referral
  const words = { passport: canary('passport'), sheet: canary('sheet') }
  const passportBytes = pdf(words.passport)
  const passport = await upload(app, caseId, sender, { name: 'passport.pdf', bytes: passportBytes }, 'identity')
  t.equal(passport.statusCode, 201, 'IOM Poland uploads a passport copy (identity, consented to IOM Ukraine)')
  const sheet = await upload(app, caseId, sender, { name: 'sheet.pdf', bytes: pdf(words.sheet) }, 'legal')
  t.equal(sheet.statusCode, 201, 'and the consent sheet (legal, consented to no one)')
  const passportId = passport.json().id as string
  const sheetId = sheet.json().id as string
  const invited = await app.request({
    method: 'POST',
    url: `/v1/cases/${caseId}/parties`,
    key: sender,
    payload: { organisation_id: demoOrganisationIds.kyivShelter },
  })
  t.equal(invited.statusCode, 201, 'the Kyiv shelter is invited to the case')

  const before = await app.request({ method: 'GET', url: `/v1/cases/${caseId}/attachments`, key: recipient })
  t.same(before.json().items, [], 'IOM Ukraine sees no attachment that has not travelled to it')
  const early = await app.request({
    method: 'GET',
    url: `/v1/cases/${caseId}/attachments/${passportId}`,
    key: recipient,
  })
  t.equal(early.statusCode, 404, 'nor can it download one')

  const send = (ids: string[]) =>
    app.request({
      method: 'POST',
      url: `/v1/cases/${caseId}/packets`,
      key: sender,
      payload: {
        recipient_organisation_id: demoOrganisationIds.iomUkraine,
        purpose: 'return_assistance',
        attachment_ids: ids,
      },
    })
  const refused = await send([passportId, sheetId])
  t.equal(refused.statusCode, 422, 'a packet may not carry an attachment no consent covers')
  t.match(refused.json(), {
    type: 'urn:trm:problem:attachment-not-consented',
    attachments: [{ id: sheetId, category: 'legal', reason: 'no_consent' }],
  })
  const stranger = await send([randomUUID()])
  t.equal(stranger.statusCode, 422, 'nor one that is not of this case')
  t.equal(stranger.json().type, 'urn:trm:problem:unknown-attachment')

  const sent = await send([passportId])
  t.equal(sent.statusCode, 201, 'the update carries the passport copy')
  const described = {
    id: passportId,
    file_name: 'passport.pdf',
    media_type: 'application/pdf',
    size: passportBytes.length,
    category: 'identity',
    sha256: sha256(passportBytes),
  }
  const packet = await app.request({ method: 'GET', url: `/v1/packets/${sent.json().id}`, key: recipient })
  t.same(packet.json().content.attachments, [described], 'the packet describes it, with its SHA-256')
  t.equal(
    packet.json().content_hash,
    createHash('sha256')
      .update(canonicalize(packet.json().content) ?? '')
      .digest('hex'),
    'and its content hash covers the description',
  )

  const listed = await app.request({ method: 'GET', url: `/v1/cases/${caseId}/attachments`, key: recipient })
  t.same(
    listed.json().items.map((item: { id: string }) => item.id),
    [passportId],
    'IOM Ukraine now lists the passport copy, and only it',
  )
  const download = await app.request({
    method: 'GET',
    url: `/v1/cases/${caseId}/attachments/${passportId}`,
    key: recipient,
  })
  t.equal(download.statusCode, 200, 'and downloads it')
  t.same(download.rawPayload, passportBytes, 'the same bytes')
  t.equal(sha256(download.rawPayload), described.sha256, 'with the SHA-256 the packet named')
  const notSent = await app.request({
    method: 'GET',
    url: `/v1/cases/${caseId}/attachments/${sheetId}`,
    key: recipient,
  })
  t.equal(notSent.statusCode, 404, 'the consent sheet did not travel: IOM Ukraine cannot download it')
  for (const [who, key] of [
    ['the invited shelter, which no consent names', shelter],
    ['IOM Morocco, no party to the case', morocco],
  ] as const) {
    const read = await app.request({
      method: 'GET',
      url: `/v1/cases/${caseId}/attachments/${passportId}`,
      key,
    })
    t.equal(read.statusCode, 404, `${who} cannot download it`)
  }
  const shelterList = await app.request({ method: 'GET', url: `/v1/cases/${caseId}/attachments`, key: shelter })
  t.same(shelterList.json().items, [], 'and the shelter lists nothing')

  const withdrawn = await app.request({
    method: 'POST',
    url: `/v1/cases/${caseId}/consents/${consentId}/withdraw`,
    key: sender,
    payload: { reason: 'The person withdrew her consent.' },
  })
  t.equal(withdrawn.statusCode, 200, 'the person withdraws her consent')
  const afterWithdrawal = await app.request({
    method: 'GET',
    url: `/v1/cases/${caseId}/attachments/${passportId}`,
    key: recipient,
  })
  t.equal(afterWithdrawal.statusCode, 404, 'IOM Ukraine can no longer download the passport copy')
  const emptied = await app.request({ method: 'GET', url: `/v1/cases/${caseId}/attachments`, key: recipient })
  t.same(emptied.json().items, [], 'nor list it')
  const packetAfter = await app.request({ method: 'GET', url: `/v1/packets/${sent.json().id}`, key: recipient })
  t.same(packetAfter.json().content.attachments, [], 'the packet no longer describes it to IOM Ukraine')
  const holder = await app.request({
    method: 'GET',
    url: `/v1/cases/${caseId}/attachments/${passportId}`,
    key: sender,
  })
  t.equal(holder.statusCode, 200, 'IOM Poland, which holds it, still reads it')

  const { rows: downloads } = await sql<{ organisation_id: string }>`
    select organisation_id from audit_records
    where case_id = ${caseId} and action = 'getCaseAttachment' and resource_id = ${passportId} order by id`.execute(
    app.database.db,
  )
  t.same(
    downloads.map((row) => row.organisation_id),
    [demoOrganisationIds.iomUkraine, demoOrganisationIds.iomPoland],
    'each download that answered is audited, with who downloaded',
  )

  const erased = await app.request({
    method: 'POST',
    url: `/v1/cases/${caseId}/erasure`,
    key: dpo,
    payload: { reason: 'data_subject_request' },
  })
  t.equal(erased.statusCode, 200, 'the DPO of IOM Poland erases the case')
  for (const url of [`/v1/cases/${caseId}/attachments/${passportId}`, `/v1/cases/${caseId}/attachments`]) {
    const gone = await app.request({ method: 'GET', url, key: sender })
    t.equal(gone.statusCode, 410, `${url} is gone`)
    t.equal(gone.json().type, 'urn:trm:problem:case-erased')
  }
  const reupload = await upload(app, caseId, sender, { name: 'late.pdf', bytes: pdf('late') })
  t.equal(reupload.statusCode, 410, 'and takes no new attachment')
  const stored = await storedAttachments(app, caseId)
  t.same(
    stored.map((row) => row.content),
    [null, null],
    'the sealed bytes are gone with the key',
  )
  for (const row of stored) {
    for (const word of Object.values(words)) t.notOk(row.description.includes(word), 'nothing readable remains')
  }
})

t.test('a malformed upload is a problem, never a 500', async (t) => {
  const app = await startTestApp(t)
  const opened = await app.request({
    method: 'POST',
    url: '/v1/cases',
    key: sender,
    payload: { profile: { country_of_return: 'UA', vulnerabilities: [] } },
  })
  const url = `/v1/cases/${opened.json().id}/attachments`
  const good = formData([
    { name: 'category', value: 'legal' },
    { name: 'file', file: { name: '../../etc/passwd.pdf', bytes: pdf('path') } },
  ])
  const probes: { what: string; headers: Record<string, string>; payload: Buffer | string }[] = [
    { what: 'no boundary', headers: { 'content-type': 'multipart/form-data' }, payload: good.payload },
    { what: 'a truncated body', headers: good.headers, payload: good.payload.subarray(0, good.payload.length - 40) },
    { what: 'an empty body', headers: good.headers, payload: '' },
    {
      what: 'two files',
      ...formData([
        { name: 'category', value: 'legal' },
        { name: 'file', file: { name: 'a.pdf', bytes: pdf('a') } },
        { name: 'other', file: { name: 'b.pdf', bytes: pdf('b') } },
      ]),
    },
    {
      what: 'an unknown field',
      ...formData([
        { name: 'category', value: 'legal' },
        { name: 'colour', value: 'blue' },
        { name: 'file', file: { name: 'a.pdf', bytes: pdf('a') } },
      ]),
    },
  ]
  for (const probe of probes) {
    const answer = await app.request({
      method: 'POST',
      url,
      key: sender,
      headers: probe.headers,
      payload: probe.payload,
    })
    t.ok(answer.statusCode >= 400 && answer.statusCode < 500, `${probe.what}: ${answer.statusCode}`, {
      body: answer.body,
    })
    t.match(String(answer.headers['content-type']), /^application\/problem\+json/, `${probe.what}: a problem`)
    t.comment(`${probe.what}: ${answer.statusCode} ${answer.json().type}`)
  }
  const uploaded = await app.request({ method: 'POST', url, key: sender, ...good })
  t.equal(uploaded.statusCode, 201)
  t.equal(uploaded.json().file_name, 'passwd.pdf', 'a path sent with the file name is dropped')
})
