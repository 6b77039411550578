import t from 'tap'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { demoKeys, startTestApp } from './fixtures/app.js'
import { acceptReferral, openReferral, recipient, sender } from './fixtures/referral.js'

// GDPR Art. 15: the DPO exports everything held about the person of a case — sections, records,
// consents, every packet with who received it and when, every read of the audit trail — as JSON
// and as a readable document.

const ORG = demoOrganisationIds
const dpo = demoKeys.demoiompldpo as string
const ukraineDpo = demoKeys.demoiomuadpo as string

interface Access {
  audit_id: string
  action: string
  organisation_id: string
  organisation_name: string
  resource_id: string
}

t.test('the export of a case holds every packet, every recipient and every read of the audit', async (t) => {
  const app = await startTestApp(t)
  const { request } = app
  const referral = await openReferral(t, app) // IOM Ukraine reads the enquiry
  const fullId = await acceptReferral(t, app, referral)
  const { caseId, packetId: enquiryId } = referral

  // Reads by both sides after the referral.
  const reads = [
    {
      key: recipient,
      url: `/v1/packets/${fullId}`,
      organisationId: ORG.iomUkraine,
      action: 'getPacket',
      resourceId: fullId,
    },
    {
      key: recipient,
      url: `/v1/cases/${caseId}`,
      organisationId: ORG.iomUkraine,
      action: 'getCase',
      resourceId: caseId,
    },
    { key: sender, url: `/v1/cases/${caseId}`, organisationId: ORG.iomPoland, action: 'getCase', resourceId: caseId },
    {
      key: sender,
      url: `/v1/packets/${enquiryId}`,
      organisationId: ORG.iomPoland,
      action: 'getPacket',
      resourceId: enquiryId,
    },
  ]
  for (const read of reads) t.equal((await request({ method: 'GET', url: read.url, key: read.key })).statusCode, 200)

  t.equal(
    (await request({ method: 'GET', url: `/v1/cases/${caseId}/subject-access-export`, key: sender })).statusCode,
    403,
    'a caseworker may not export',
  )

  const exported = await request({
    method: 'GET',
    url: `/v1/cases/${caseId}/subject-access-export`,
    key: dpo,
    headers: { accept: 'application/json' },
  })
  t.equal(exported.statusCode, 200)
  t.match(exported.headers['content-type'], /^application\/json/)
  const body = exported.json()
  t.equal(body.complete, true, 'the sending partner holds all of it')
  t.match(body.case.sections, {
    identity: { given_name: 'Olena', family_name: 'Kovalenko' },
    health: { conditions: ['post-traumatic stress'] },
  })
  t.equal(body.consents.length, 1)
  t.same(body.consents[0].provisions[0].recipients, [ORG.iomUkraine], 'the consent and whom it names')
  t.ok(
    body.records.some((r: { kind: string }) => r.kind === 'return_decision'),
    'the records',
  )

  t.same(
    body.packets.map((p: { id: string; kind: string; recipient_organisation_id: string }) => [
      p.id,
      p.kind,
      p.recipient_organisation_id,
    ]),
    [
      [enquiryId, 'enquiry', ORG.iomUkraine],
      [fullId, 'referral', ORG.iomUkraine],
    ],
    'every packet, and who received it',
  )
  for (const packet of body.packets) {
    t.ok(packet.received_at, `packet ${packet.kind} says when IOM Ukraine first read it`)
    t.equal(packet.transfer.legal_basis, 'safeguards', 'and the legal basis it left the EU on')
  }
  t.match(body.recipients, [{ organisation_id: ORG.iomUkraine, name: 'IOM Ukraine (demo)', country: 'UA', packets: 2 }])

  const readsInExport: Access[] = body.reads
  for (const read of reads) {
    t.ok(
      readsInExport.some(
        (access) =>
          access.organisation_id === read.organisationId &&
          access.action === read.action &&
          access.resource_id === read.resourceId,
      ),
      `the read ${read.action} by ${read.organisationId} is in the export`,
    )
  }
  t.ok(
    readsInExport.some(
      (access) =>
        access.action === 'getPacket' && access.resource_id === enquiryId && access.organisation_id === ORG.iomUkraine,
    ),
    'with IOM Ukraine`s first read of the enquiry',
  )
  t.ok(
    readsInExport.every((access) => access.action.startsWith('get') || access.action.startsWith('list')),
    'reads are reads',
  )
  t.ok(
    body.changes.some((access: Access) => access.action === 'sendPacket') &&
      body.changes.some(
        (access: Access) => access.action === 'acceptPacket' && access.organisation_id === ORG.iomUkraine,
      ),
    'the changes: the enquiry sent, the acceptance',
  )

  // Every record of the audit trail, as the DPO reads it, is in the export: no more, no fewer.
  const auditTrail: { id: string; action: string; organisation_id: string }[] = []
  let cursor: string | null = null
  do {
    const page = await request({
      method: 'GET',
      url: `/v1/cases/${caseId}/audit?limit=100${cursor ? `&cursor=${cursor}` : ''}`,
      key: dpo,
    })
    t.equal(page.statusCode, 200)
    auditTrail.push(...page.json().items)
    cursor = page.json().next_cursor
  } while (cursor)
  t.same(
    [...readsInExport, ...body.changes].map((access: Access) => access.audit_id).sort(),
    auditTrail
      .filter((row) => row.action !== 'exportSubjectAccess')
      .map((row) => row.id)
      .sort(),
    'the export holds the whole audit trail of the case',
  )
  t.ok(
    auditTrail.some((row) => row.action === 'exportSubjectAccess' && row.organisation_id === ORG.iomPoland),
    'the export itself is audited',
  )

  const html = await request({
    method: 'GET',
    url: `/v1/cases/${caseId}/subject-access-export`,
    key: dpo,
    headers: { accept: 'text/html' },
  })
  t.equal(html.statusCode, 200)
  t.match(html.headers['content-type'], /^text\/html/)
  t.match(html.body, body.case.reference)
  t.match(html.body, 'Kovalenko', 'the person`s data')
  t.match(html.body, 'IOM Ukraine (demo)', 'who received it')
  t.match(html.body, 'Art. 46(3)(b)', 'on which basis')
  t.notMatch(html.body, /<script/i)

  const pdf = await request({
    method: 'GET',
    url: `/v1/cases/${caseId}/subject-access-export`,
    key: dpo,
    headers: { accept: 'application/pdf' },
  })
  t.equal(pdf.statusCode, 406, 'a format it cannot produce')
  t.equal(pdf.json().type, 'urn:trm:problem:not-acceptable')

  const ukraine = await request({ method: 'GET', url: `/v1/cases/${caseId}/subject-access-export`, key: ukraineDpo })
  t.equal(ukraine.statusCode, 200, 'the receiving partner`s DPO exports what it holds')
  t.equal(ukraine.json().complete, false)
  t.ok(
    (ukraine.json().reads as Access[]).every((access) => access.organisation_id === ORG.iomUkraine),
    'with only its own organisation`s part of the audit trail',
  )
})

t.test('the readable export escapes what the person said', async (t) => {
  const app = await startTestApp(t)
  const opened = await app.request({
    method: 'POST',
    url: '/v1/cases',
    key: sender,
    payload: {
      profile: { country_of_return: 'UA', vulnerabilities: [] },
      sections: { psychosocial: { assessment_summary: '<script>alert("x")</script> & <b>fear</b>' } },
    },
  })
  const html = await app.request({
    method: 'GET',
    url: `/v1/cases/${opened.json().id}/subject-access-export`,
    key: dpo,
    headers: { accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' },
  })
  t.equal(html.statusCode, 200)
  t.match(html.headers['content-type'], /^text\/html/, 'a browser gets the document')
  t.notMatch(html.body, '<script>')
  t.match(html.body, '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;fear&lt;/b&gt;')
  t.match(html.headers['content-security-policy'], "default-src 'none'")
})
