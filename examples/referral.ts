/**
 * A whole referral through the typed client that `openapi-fetch` makes of the committed contract
 * types (`openapi/dist/types.ts`): IOM Poland opens a case, records the person's consent and
 * return decision, and sends an enquiry; IOM Ukraine acknowledges it; both assess risks and needs;
 * IOM Ukraine accepts and the full referral follows; the journey is prepared, the person departs
 * and arrives; the person then withdraws the consent, which IOM Ukraine, now leading, records.
 *
 *   npm start                       # in another shell: the service with its demo data
 *   npx tsx examples/referral.ts    # BASE_URL, SENDER_KEY and RECIPIENT_KEY override the defaults
 */
import { pathToFileURL } from 'node:url'
import createClient from 'openapi-fetch'
import type { components, paths } from '../openapi/dist/types.js'

type Problem = components['schemas']['Problem']

export interface ReferralOptions {
  baseUrl: string
  /** A caseworker of the sending partner (IOM Poland in the demo data). */
  senderKey: string
  /** A caseworker of the receiving partner (IOM Ukraine in the demo data). */
  recipientKey: string
  recipientOrganisationId: string
  log?: (line: string) => void
}

/** Fails with the problem's type and detail: what a client shows its user. */
function check<T>(step: string, answer: { data?: T; error?: Problem }): T {
  if (answer.error || answer.data === undefined) {
    const problem = answer.error
    // The generated union lets a client branch on the problem type.
    switch (problem?.type) {
      case 'urn:trm:problem:preconditions-unmet':
        throw new Error(`${step}: unmet ${JSON.stringify(problem.unmet?.map((u) => u.code))}`)
      case 'urn:trm:problem:stale-version':
        throw new Error(`${step}: changed meanwhile, now ${problem.current_etag}`)
      default:
        throw new Error(`${step}: ${problem?.type} ${problem?.detail}`)
    }
  }
  return answer.data
}

export async function runReferral(options: ReferralOptions) {
  const log = options.log ?? console.log
  const sender = createClient<paths>({
    baseUrl: options.baseUrl,
    headers: { authorization: `Bearer ${options.senderKey}` },
  })
  const recipient = createClient<paths>({
    baseUrl: options.baseUrl,
    headers: { authorization: `Bearer ${options.recipientKey}` },
  })

  const opened = check(
    'open the case',
    await sender.POST('/v1/cases', {
      body: {
        profile: { age_band: '25_34', sex: 'female', nationality: 'UA', country_of_return: 'UA', vulnerabilities: [] },
        sections: { identity: { given_name: 'Olena', family_name: 'Kovalenko' } },
      },
    }),
  )
  const caseId = opened.id
  log(`opened ${opened.reference} at step ${opened.step}`)
  const path = { params: { path: { caseId } } }

  const consent = check(
    'record consent',
    await sender.POST('/v1/cases/{caseId}/consents', {
      ...path,
      body: {
        given_at: new Date(Date.now() - 60_000).toISOString(),
        method: 'written',
        language: 'uk',
        interpreter: { used: false },
        guardian: null,
        provisions: [
          {
            categories: ['identity', 'health'],
            recipients: [options.recipientOrganisationId],
            purposes: ['return_assistance'],
          },
        ],
        expires_at: null,
        informed_of_transfer_risks: false,
      },
    }),
  )
  log(`consent ${consent.id} recorded`)

  const record = async (client: typeof sender, body: components['schemas']['NewCaseRecord']) =>
    check(`record ${body.kind}`, await client.POST('/v1/cases/{caseId}/records', { ...path, body }))
  /** Takes an action with the case's ETag, read from the case in the list. */
  const transition = async (client: typeof sender, action: string) => {
    const listed = check('list cases', await client.GET('/v1/cases', { params: { query: { limit: 200 } } }))
    const etag = listed.items.find((item) => item.id === caseId)?.etag ?? ''
    const moved = check(
      action,
      await client.POST('/v1/cases/{caseId}/transitions', {
        params: { path: { caseId }, header: { 'If-Match': etag } },
        body: { action },
      }),
    )
    log(`${action}: now at ${moved.step}`)
  }
  /** Answers a packet with its ETag, read from the inbox. */
  const answer = async (packetId: string, action: 'acknowledge' | 'accept', body: object) => {
    const inbox = check('inbox', await recipient.GET('/v1/packets', { params: { query: { direction: 'inbound' } } }))
    const etag = inbox.items.find((item) => item.id === packetId)?.etag ?? ''
    const params = { path: { packetId }, header: { 'If-Match': etag } }
    const answered =
      action === 'acknowledge'
        ? await recipient.POST('/v1/packets/{packetId}/acknowledge', { params, body: body as never })
        : await recipient.POST('/v1/packets/{packetId}/accept', { params, body: body as never })
    log(`${action}: the ${check(action, answered).kind} is ${check(action, answered).status}`)
  }

  await record(sender, { kind: 'return_decision', data: { voluntary: true, informed: true, summary: 'Decided.' } })
  await transition(sender, 'decide_return')
  const enquiry = check(
    'send the enquiry',
    await sender.POST('/v1/cases/{caseId}/packets', {
      ...path,
      body: { recipient_organisation_id: options.recipientOrganisationId, purpose: 'return_assistance' },
    }),
  )
  log(`enquiry ${enquiry.id} sent, holding ${enquiry.included_categories.join(', ') || 'no personal data'}`)
  await answer(enquiry.id, 'acknowledge', {
    focal_point: { name: 'Oksana Petrenko', email: 'o.petrenko@example.org' },
    alternate_contact: { name: 'Andrii Shevchenko', phone: '+380 44 000 0000' },
  })
  const riskAndNeeds = { level: 'low', mitigations: [], needs: ['medical follow-up'] }
  await record(sender, { kind: 'assessment', assessment: 'risk_and_needs', data: riskAndNeeds })
  await record(recipient, { kind: 'assessment', assessment: 'risk_and_needs', data: riskAndNeeds })
  await answer(enquiry.id, 'accept', {})
  const inbox = check('inbox', await recipient.GET('/v1/packets', { params: { query: { direction: 'inbound' } } }))
  const full = inbox.items.find((item) => item.case_id === caseId && item.kind === 'referral')
  log(`the full referral followed: ${full?.included_categories.join(', ')}`)

  await record(sender, {
    kind: 'travel_documents',
    data: { document_type: 'travel_document', valid_until: '2027-06-30' },
  })
  await record(sender, { kind: 'escort', data: { escort_by: 'IOM operations assistant' } })
  await record(sender, {
    kind: 'reception',
    data: { where: 'Kyiv Boryspil airport', when: '2027-01-20T10:00:00Z', by_whom: 'IOM Ukraine caseworker' },
  })
  await record(sender, { kind: 'reintegration_plan_draft', data: { assistance: ['health', 'accommodation'] } })
  await record(sender, { kind: 'assessment', assessment: 'fit_to_travel', data: { fit: true } })
  await transition(sender, 'confirm_ready')
  await transition(sender, 'confirm_departure')
  await transition(recipient, 'confirm_arrival')

  // After arrival IOM Ukraine leads the case: the person tells it they withdraw their consent.
  const withdrawn = check(
    'withdraw the consent',
    await recipient.POST('/v1/cases/{caseId}/consents/{consentId}/withdraw', {
      params: { path: { caseId, consentId: consent.id } },
      body: { reason: 'The person asked to stop sharing their data.' },
    }),
  )
  log(`consent withdrawn at ${withdrawn.withdrawn_at}`)
  const final = check('read the case', await sender.GET('/v1/cases/{caseId}', path))
  log(`the case is at ${final.step}, led by ${final.lead_organisation_id}`)
  return { caseId, consentId: consent.id, packetIds: [enquiry.id, full?.id], step: final.step }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runReferral({
    baseUrl: process.env.BASE_URL ?? 'http://127.0.0.1:3000',
    senderKey: process.env.SENDER_KEY ?? 'trm_demoiomplcw1_demo-only-demoiomplcw1-not-secret',
    recipientKey: process.env.RECIPIENT_KEY ?? 'trm_demoiomuacw1_demo-only-demoiomuacw1-not-secret',
    recipientOrganisationId: process.env.RECIPIENT_ORGANISATION_ID ?? '00000000-0000-4000-8000-000000000201',
  })
}
