import type { Kysely, Transaction } from 'kysely'
import type { Case, DB } from '../db/schema.js'
import type { Side } from '../sops/definition.js'
import type { CaseFacts } from '../sops/engine.js'
import { consentStatus } from './consent-coverage.js'
import { consentsOfCase } from './queries.js'

/** The receiving partner of the case: the one that accepted, or else the recipient of the newest referral. */
export async function counterpartOf(trx: Kysely<DB> | Transaction<DB>, found: Case): Promise<string | null> {
  if (found.receiving_organisation_id) return found.receiving_organisation_id
  const newest = await trx
    .selectFrom('packets')
    .select('recipient_organisation_id')
    .where('case_id', '=', found.id)
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst()
  return newest?.recipient_organisation_id ?? null
}

/** Everything the procedure's guards read about a case, gathered in the transaction of the change. */
export async function gatherFacts(trx: Transaction<DB>, found: Case, now: Date): Promise<CaseFacts> {
  const counterpartId = await counterpartOf(trx, found)
  const packet = counterpartId
    ? await trx
        .selectFrom('packets')
        .select('history')
        .where('case_id', '=', found.id)
        .where('recipient_organisation_id', '=', counterpartId)
        .orderBy('version', 'desc')
        .limit(1)
        .executeTakeFirst()
    : undefined
  const records = await trx
    .selectFrom('case_records')
    .select(['kind', 'assessment', 'side'])
    .where('case_id', '=', found.id)
    .execute()
  const consents = (await consentsOfCase(trx, found.id)).filter((c) => consentStatus(c, now) === 'active')
  return {
    step: found.step,
    previousStep: found.previous_step,
    leadSide: found.lead_organisation_id === found.sending_organisation_id ? 'sending' : 'receiving',
    consents: consents.map((consent) => ({ guardian: consent.guardian !== null, provisions: consent.provisions })),
    counterpartId,
    packetStatuses: new Set((packet?.history ?? []).map((step) => step.status)),
    assessments: records.flatMap((r) =>
      r.kind === 'assessment' && r.assessment ? [{ kind: r.assessment, side: r.side }] : [],
    ),
    records: new Set(
      records.flatMap((r) => (r.kind === 'assessment' || r.kind === 'monitoring_visit' ? [] : [r.kind])),
    ),
  }
}

/** Which side of the case an organisation acts for: the sender, the current receiving partner, or neither. */
export function sideOf(found: Case, facts: CaseFacts, organisationId: string): Side | null {
  if (organisationId === found.sending_organisation_id) return 'sending'
  if (organisationId === facts.counterpartId) return 'receiving'
  return null
}
