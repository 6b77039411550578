import type { Transaction } from 'kysely'
import type { Case, Consent, DataCategory, DB } from '../db/schema.js'
import { consentCovers, dataCategories } from '../disclosure/consent-scope.js'
import { recordEvent } from '../events/outbox.js'
import { addDuration } from '../sops/deadline.js'
import { partyIds, sealWithdrawalReason } from './queries.js'

/** How long an organisation holding withdrawn data has to confirm that it deleted or restricted its copies. */
export const WITHDRAWAL_ACKNOWLEDGEMENT_DEADLINE = 'PT72H'

export interface Withdrawal {
  principalId: string
  reason: string | null
  at: Date
}

/**
 * Withdraws consents of a case at once, and tells every organisation that received data under
 * them what to delete: a notice it must acknowledge, and an event. The other parties learn of the
 * withdrawal through an event of their own. Consents already withdrawn are left as they are.
 */
export async function withdrawConsents(
  trx: Transaction<DB>,
  found: Case,
  consents: readonly Consent[],
  withdrawal: Withdrawal,
): Promise<void> {
  for (const consent of consents.filter((c) => c.withdrawn_at === null)) {
    await trx
      .updateTable('consents')
      .set({
        withdrawn_at: withdrawal.at,
        withdrawn_by_principal_id: withdrawal.principalId,
        withdrawal_reason:
          withdrawal.reason === null ? null : sealWithdrawalReason(found, consent.id, withdrawal.reason),
      })
      .where('id', '=', consent.id)
      .execute()
    await noticeHolders(trx, found, consent, 'withdrawn', withdrawal.at)
  }
}

/**
 * Tells every organisation that may hold data under a consent that has ended (withdrawn or
 * expired) what to delete: a notice it must acknowledge, and an event. The other parties learn of
 * it through an event of their own.
 */
export async function noticeHolders(
  trx: Transaction<DB>,
  found: Case,
  consent: Consent,
  cause: 'withdrawn' | 'expired',
  at: Date,
): Promise<void> {
  const parties = await partyIds(trx, found.id)
  const holders = await holdersOf(trx, found, consent, parties)
  const acknowledgeBy = addDuration(at, WITHDRAWAL_ACKNOWLEDGEMENT_DEADLINE)
  const type = cause === 'withdrawn' ? 'consent.withdrawn' : 'consent.expired'
  const data = { case_reference: found.reference, consent_id: consent.id }
  for (const [organisationId, categories] of holders) {
    const notice = await trx
      .insertInto('withdrawal_notices')
      .values({
        consent_id: consent.id,
        case_id: found.id,
        cause,
        organisation_id: organisationId,
        categories,
        withdrawn_at: at,
        acknowledge_by: acknowledgeBy,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    await recordEvent(
      trx,
      {
        type,
        caseId: found.id,
        data: { ...data, notice_id: notice.id, categories, acknowledge_by: acknowledgeBy.toISOString() },
      },
      [organisationId],
    )
  }
  const others = parties.filter((id) => !holders.has(id))
  if (others.length > 0) await recordEvent(trx, { type, caseId: found.id, data }, others)
}

/**
 * The organisations other than the sender that may hold data under a consent, with the categories
 * they may hold: recipients who read a packet that relied on it, and parties it let read sections.
 */
async function holdersOf(
  trx: Transaction<DB>,
  found: Case,
  consent: Consent,
  parties: readonly string[],
): Promise<Map<string, DataCategory[]>> {
  const held = new Map<string, Set<DataCategory>>()
  const hold = (organisationId: string, categories: Iterable<DataCategory>) => {
    if (organisationId === found.sending_organisation_id) return
    const set = held.get(organisationId) ?? new Set()
    for (const category of categories) set.add(category)
    if (set.size > 0) held.set(organisationId, set)
  }
  const packets = await trx
    .selectFrom('packets')
    .select(['recipient_organisation_id', 'consents_by_category', 'history'])
    .where('case_id', '=', found.id)
    .execute()
  for (const packet of packets) {
    if (!packet.history.some((step) => step.status === 'received' || step.status === 'acknowledged')) continue
    const relied = Object.entries(packet.consents_by_category)
      .filter(([, consentIds]) => consentIds?.includes(consent.id))
      .map(([category]) => category as DataCategory)
    hold(packet.recipient_organisation_id, relied)
  }
  const everyPurpose = consent.provisions.flatMap((provision) => provision.purposes)
  for (const party of parties) {
    hold(
      party,
      dataCategories.filter((category) => consentCovers(consent, category, party, everyPurpose)),
    )
  }
  return new Map(
    [...held].map(([organisationId, categories]) => [
      organisationId,
      dataCategories.filter((category) => categories.has(category)),
    ]),
  )
}
