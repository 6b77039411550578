import type { Kysely, Transaction } from 'kysely'
import Negotiator from 'negotiator'
import type { components } from '../../openapi/dist/types.js'
import type { ReadAudit } from '../audit/read-audit.js'
import { recordAudit } from '../audit/records.js'
import { caseOfParty } from '../cases/access.js'
import { runCaseChange } from '../cases/case-change.js'
import { withdrawConsents } from '../cases/consent-withdrawal.js'
import { isChild } from '../cases/profile.js'
import { consentsOfCase, partyIds } from '../cases/queries.js'
import type { Clock } from '../clock.js'
import type { Case, Consent, DB } from '../db/schema.js'
import { consentStatus } from '../disclosure/consent-scope.js'
import { discloseCase } from '../disclosure/policy.js'
import { recordEvent } from '../events/outbox.js'
import { type Caller, readingRoles, requireRole } from '../http/authentication.js'
import type { Handlers } from '../http/contract.js'
import type { Rendered } from '../http/mutation.js'
import { notFound, ProblemError } from '../http/problem.js'
import { negotiateLanguage } from '../i18n/catalogue.js'
import * as queries from './queries.js'
import { composeReceipt, receiptHtml, receiptLanguage } from './receipt.js'

export interface ConsentDependencies {
  db: Kysely<DB>
  clock: Clock
  readAudit: ReadAudit
}

export function consentHandlers({ db, clock, readAudit }: ConsentDependencies) {
  return {
    async listConsents(request) {
      const caller = requireRole(request, ...readingRoles)
      const found = await caseOfParty(db, caller, request.params.caseId)
      const consents = await consentsOfCase(db, found.id)
      await readAudit.record(request, { caseId: found.id, resourceType: 'case', resourceId: found.id })
      const now = clock.now()
      return { items: consents.map((row) => presentConsent(row, found, caller, now)) }
    },

    async getConsent(request) {
      const caller = requireRole(request, ...readingRoles)
      const found = await caseOfParty(db, caller, request.params.caseId)
      const consent = await queries.findConsent(db, found.id, request.params.consentId)
      if (!consent) throw notFound('consent', request.params.consentId)
      await readAudit.record(request, { caseId: found.id, resourceType: 'consent', resourceId: consent.id })
      return presentConsent(consent, found, caller, clock.now())
    },

    async getConsentReceipt(request, reply) {
      const caller = requireRole(request, 'caseworker', 'supervisor', 'dpo')
      const format = request.query.format ?? receiptFormat(request.headers.accept)
      const asked = request.query.lang
      const now = clock.now()
      const found = await caseOfParty(db, caller, request.params.caseId)
      const consent = await queries.findConsent(db, found.id, request.params.consentId)
      if (!consent) throw notFound('consent', request.params.consentId)
      const viewer = { organisationId: caller.organisation.id, role: 'invited' } as const
      if (!discloseCase(found, [], viewer, [], now).consentReceipt(consent)) {
        throw new ProblemError(403, 'Only the organisation that holds the consent gives the person its receipt.', {
          code: 'not-consent-holder',
        })
      }
      const named = [consent.recorded_by_organisation_id, ...consent.provisions.flatMap((p) => p.recipients)]
      const organisations = await db
        .selectFrom('organisations')
        .select(['id', 'name', 'country'])
        .where('id', 'in', [...new Set(named)])
        .execute()
      const language = receiptLanguage(
        asked,
        consent.language,
        found.profile.languages ?? [],
        negotiateLanguage(request.headers['accept-language']),
      )
      const receipt = composeReceipt(
        {
          consent,
          organisations: new Map(organisations.map(({ id, ...organisation }) => [id, organisation])),
          holderId: consent.recorded_by_organisation_id,
          issuedAt: now,
        },
        language,
      )
      await readAudit.record(request, {
        caseId: found.id,
        resourceType: 'consent',
        resourceId: consent.id,
        details: { receipt: format, language },
      })
      reply.header('content-language', language).header('vary', 'Accept, Accept-Language')
      if (format === 'pdf') {
        reply.type('application/pdf').header('content-disposition', `inline; filename="consent-${consent.id}.pdf"`)
        // Loaded on the first receipt asked for as a PDF: its fonts are memory no other request needs.
        const { receiptPdf } = await import('./receipt-pdf.js')
        return receiptPdf(receipt)
      }
      reply
        .type('text/html; charset=utf-8')
        .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
      return receiptHtml(receipt)
    },

    async recordConsent(request, reply) {
      const body = request.body
      return runCaseChange(
        db,
        request,
        reply,
        { lead: true },
        async (trx, found, caller) => {
          const now = clock.now()
          if (isChild(found.profile, now) && !body.guardian) {
            throw new ProblemError(
              422,
              'The person is a child: the guardian or legal representative must consent too.',
              { code: 'guardian-required' },
            )
          }
          if (new Date(body.given_at).getTime() > now.getTime() + 5 * 60_000) {
            throw new ProblemError(422, 'given_at lies in the future.', { code: 'invalid-consent' })
          }
          if (body.expires_at && new Date(body.expires_at) <= new Date(body.given_at)) {
            throw new ProblemError(422, 'expires_at must come after given_at.', { code: 'invalid-consent' })
          }
          const recipients = [...new Set(body.provisions.flatMap((provision) => provision.recipients))]
          const known = await trx.selectFrom('organisations').select('id').where('id', 'in', recipients).execute()
          const unknown = recipients.filter((id) => !known.some((row) => row.id === id))
          if (unknown.length > 0) {
            throw new ProblemError(
              422,
              `No organisation ${unknown.join(', ')}: consent can only name registered partners.`,
              { code: 'unknown-recipient' },
            )
          }
          const consent = await queries.insertConsent(trx, found, {
            caseId: found.id,
            consent: body,
            principalId: caller.principal.id,
            organisationId: caller.organisation.id,
          })
          await recordAudit(trx, request, {
            caseId: found.id,
            resourceType: 'consent',
            resourceId: consent.id,
            details: {
              provisions: body.provisions,
              informed_of_transfer_risks: body.informed_of_transfer_risks ?? false,
            },
          })
          await recordEvent(
            trx,
            {
              type: 'consent.recorded',
              caseId: found.id,
              data: { case_reference: found.reference, consent_id: consent.id },
            },
            await partyIds(trx, found.id),
          )
          return { status: 201, resourceId: consent.id, location: `/v1/cases/${found.id}/consents/${consent.id}` }
        },
        (trx, consentId, caller) => renderConsent(trx, caller, request.params.caseId, consentId, clock.now()),
      )
    },

    async withdrawConsent(request, reply) {
      return runCaseChange(
        db,
        request,
        reply,
        { lead: true },
        async (trx, found, caller) => {
          const consent = await queries.findConsent(trx, found.id, request.params.consentId, { lock: true })
          if (!consent) throw notFound('consent', request.params.consentId)
          if (consent.withdrawn_at === null) {
            await withdrawConsents(trx, found, [consent], {
              principalId: caller.principal.id,
              reason: request.body.reason ?? null,
              at: clock.now(),
            })
            await recordAudit(trx, request, { caseId: found.id, resourceType: 'consent', resourceId: consent.id })
          }
          return { status: 200, resourceId: consent.id }
        },
        (trx, consentId, caller) => renderConsent(trx, caller, request.params.caseId, consentId, clock.now()),
      )
    },
  } satisfies Partial<Handlers>
}

/** HTML or PDF, as `Accept` prefers (HTML when it names neither above the other); 406 when it accepts neither. */
function receiptFormat(accept: string | undefined): 'html' | 'pdf' {
  const type = new Negotiator({ headers: { accept: accept ?? '*/*' } }).mediaType(['text/html', 'application/pdf'])
  if (type === 'application/pdf') return 'pdf'
  if (type === 'text/html') return 'html'
  throw new ProblemError(406, 'A consent receipt is text/html or application/pdf.', { code: 'not-acceptable' })
}

async function renderConsent(
  trx: Transaction<DB>,
  caller: Caller,
  caseId: string,
  consentId: string,
  now: Date,
): Promise<Rendered<components['schemas']['Consent']>> {
  const found = await caseOfParty(trx, caller, caseId)
  const consent = await queries.findConsent(trx, found.id, consentId)
  if (!consent) throw notFound('consent', consentId)
  return { body: presentConsent(consent, found, caller, now) }
}

/** A consent as the caller may see it: the guardian's details and the child's views stay with the sending partner. */
export function presentConsent(row: Consent, found: Case, caller: Caller, now: Date): components['schemas']['Consent'] {
  const consent = {
    id: row.id,
    case_id: row.case_id,
    status: consentStatus(row, now),
    given_at: row.given_at.toISOString(),
    method: row.method,
    language: row.language,
    interpreter: row.interpreter,
    guardian: row.guardian,
    child_views: row.child_views,
    provisions: row.provisions,
    expires_at: row.expires_at?.toISOString() ?? null,
    recorded_at: row.recorded_at.toISOString(),
    recorded_by_principal_id: row.recorded_by_principal_id,
    recorded_by_organisation_id: row.recorded_by_organisation_id,
    withdrawn_at: row.withdrawn_at?.toISOString() ?? null,
    withdrawal_reason: row.withdrawal_reason,
    guardian_consented: row.guardian !== null,
    informed_of_transfer_risks: row.informed_of_transfer_risks,
  }
  return discloseCase(found, [], { organisationId: caller.organisation.id, role: 'invited' }, [], now).consent(consent)
}
