import type { Kysely, Transaction } from 'kysely'
import type { components } from '../../openapi/dist/types.js'
import type { Case, CaseParty, DB } from '../db/schema.js'
import type { CaseDisclosure } from '../disclosure/policy.js'
import type { Caller } from '../http/authentication.js'
import { etag, type KeyClaim } from '../http/mutation.js'
import { notFound, ProblemError } from '../http/problem.js'
import { type Language, label } from '../i18n/catalogue.js'
import { type CaseView, findCaseForParty, findCaseViewForParty } from './queries.js'

/**
 * The case, if the caller's organisation is a party; anyone else learns nothing, not even that it
 * exists. A party learns that an erased case is gone (410), and nothing more.
 */
export async function caseOfParty(
  db: Kysely<DB> | Transaction<DB>,
  caller: Caller,
  caseId: string,
  options: { lock?: boolean; claim?: KeyClaim; erased?: 'refuse' | 'allow' } = {},
): Promise<Case> {
  const found = await findCaseForParty(db, caseId, caller.organisation.id, options)
  if (!found) throw notFound('case', caseId)
  if (found.erased_at !== null && options.erased !== 'allow') throw caseErased(found)
  return found
}

/** The case with its parties, consents and obligations, on the same terms as `caseOfParty`, in one statement. */
export async function caseViewOfParty(
  db: Kysely<DB> | Transaction<DB>,
  caller: Caller,
  caseId: string,
): Promise<CaseView> {
  const view = await findCaseViewForParty(db, caseId, caller.organisation.id)
  if (!view) throw notFound('case', caseId)
  if (view.found.erased_at !== null) throw caseErased(view.found)
  return view
}

export function caseErased(found: Pick<Case, 'reference' | 'erased_at'>): ProblemError {
  return new ProblemError(410, `The case ${found.reference} was erased; its data no longer exists.`, {
    code: 'case-erased',
    extras: { erased_at: found.erased_at?.toISOString() },
  })
}

/** Only the organisation responsible for the person now may change the case or its consents. */
export function requireLead(found: Case, caller: Caller): void {
  if (found.lead_organisation_id !== caller.organisation.id) {
    throw new ProblemError(403, 'Only the organisation that leads the case may do this.', { code: 'not-lead' })
  }
}

type Schemas = components['schemas']

export function presentCaseSummary(
  row: Omit<Case, 'sections' | 'data_key' | 'data_key_id'>,
  parties: CaseParty[],
  disclosure: CaseDisclosure,
  now: Date,
  language: Language,
): Schemas['CaseSummary'] {
  return {
    id: row.id,
    reference: row.reference,
    sop: { id: row.sop_id, version: row.sop_version },
    step: row.step,
    step_title: label(language, `step.${row.step}`),
    step_due_at: row.step_due_at?.toISOString() ?? null,
    overdue: row.step_due_at !== null && row.step_due_at < now,
    profile: disclosure.profile(row.profile),
    lead_organisation_id: row.lead_organisation_id,
    sending_organisation_id: row.sending_organisation_id,
    receiving_organisation_id: row.receiving_organisation_id,
    parties: parties.map((party) => ({
      organisation_id: party.organisation_id,
      role: party.role,
      since: party.since.toISOString(),
    })),
    version: row.version,
    etag: etag(row.version),
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    ...(row.erased_at !== null && row.erasure_reason !== null
      ? { erasure: { erased_at: row.erased_at.toISOString(), reason: row.erasure_reason } }
      : {}),
  }
}

export function presentCase(
  row: Case,
  parties: CaseParty[],
  disclosure: CaseDisclosure,
  schedule: Schemas['ScheduledObligation'][],
  now: Date,
  language: Language,
): Schemas['Case'] {
  return {
    ...presentCaseSummary(row, parties, disclosure, now, language),
    sections: disclosure.sections(row.sections),
    schedule,
  }
}
