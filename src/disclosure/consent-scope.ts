import type { Consent, DataCategory, Purpose } from '../db/schema.js'

/** The data categories in their canonical order. */
export const dataCategories: readonly DataCategory[] = [
  'identity',
  'contact',
  'health',
  'psychosocial',
  'family',
  'legal',
  'travel',
  'reintegration',
  'proceedings',
]

/** The categories a case holds in its sections; `proceedings` has its own resources instead. */
export type SectionCategory = Exclude<DataCategory, 'proceedings'>
export const sectionCategories = dataCategories.filter(
  (category): category is SectionCategory => category !== 'proceedings',
)

export type ConsentStatus = 'active' | 'expired' | 'withdrawn'

/** Why a category does not go to an organisation. */
export type WithheldReason = 'no_consent' | 'withdrawn' | 'expired' | 'not_needed_for_purpose'

type ConsentTerms = Pick<Consent, 'id' | 'provisions' | 'withdrawn_at' | 'expires_at'>

export function consentStatus(consent: Pick<Consent, 'withdrawn_at' | 'expires_at'>, now: Date): ConsentStatus {
  if (consent.withdrawn_at !== null && consent.withdrawn_at <= now) return 'withdrawn'
  if (consent.expires_at !== null && consent.expires_at <= now) return 'expired'
  return 'active'
}

/** Whether a consent's terms, whatever its status, let this category go to this recipient for one of these purposes. */
export function consentCovers(
  consent: {
    provisions: readonly {
      categories: readonly DataCategory[]
      recipients: readonly string[]
      purposes: readonly Purpose[]
    }[]
  },
  category: DataCategory,
  recipientId: string,
  purposes: readonly Purpose[],
): boolean {
  return consent.provisions.some(
    (provision) =>
      provision.categories.includes(category) &&
      provision.recipients.includes(recipientId) &&
      // Consent to statistics lets no personal data go, whatever purpose a packet names.
      provision.purposes.some((purpose) => purpose !== 'statistics' && purposes.includes(purpose)),
  )
}

export interface Coverage {
  /** The active consents that cover the category; empty when none does. */
  consentIds: string[]
  /** Why the category is withheld, when no active consent covers it. */
  reason?: Exclude<WithheldReason, 'not_needed_for_purpose'>
}

/**
 * The one rule of consent: a category goes to a recipient for a purpose only while a consent covers
 * recipient × purpose × category and is neither withdrawn nor expired. When none does, the reason
 * says whether one did (withdrawn, expired) or never did.
 */
export function coverage(
  consents: readonly ConsentTerms[],
  category: DataCategory,
  recipientId: string,
  purposes: readonly Purpose[],
  now: Date,
): Coverage {
  const covering = consents.filter((consent) => consentCovers(consent, category, recipientId, purposes))
  const consentIds = covering.filter((consent) => consentStatus(consent, now) === 'active').map((c) => c.id)
  if (consentIds.length > 0) return { consentIds }
  const statuses = new Set(covering.map((consent) => consentStatus(consent, now)))
  return {
    consentIds,
    reason: statuses.has('withdrawn') ? 'withdrawn' : statuses.has('expired') ? 'expired' : 'no_consent',
  }
}
