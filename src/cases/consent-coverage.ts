import type { CaseSections, Consent, DataCategory, Purpose } from '../db/schema.js'

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
]

export type ConsentStatus = 'active' | 'expired' | 'withdrawn'

export function consentStatus(consent: Pick<Consent, 'withdrawn_at' | 'expires_at'>, now: Date): ConsentStatus {
  if (consent.withdrawn_at !== null && consent.withdrawn_at <= now) return 'withdrawn'
  if (consent.expires_at !== null && consent.expires_at <= now) return 'expired'
  return 'active'
}

/** The active consents that let this category go to this recipient for this purpose. */
export function consentsCovering(
  consents: readonly Consent[],
  category: DataCategory,
  recipientId: string,
  purpose: Purpose,
  now: Date,
): string[] {
  return consents
    .filter((consent) => consentStatus(consent, now) === 'active')
    .filter((consent) =>
      consent.provisions.some(
        (provision) =>
          provision.categories.includes(category) &&
          provision.recipients.includes(recipientId) &&
          provision.purposes.includes(purpose),
      ),
    )
    .map((consent) => consent.id)
}

/**
 * The sections an organisation may read: all of them for the organisation that opened the case,
 * and for any other party only those an active consent lets it receive, for any purpose.
 */
export function sectionsVisibleTo(
  found: { sections: CaseSections; sending_organisation_id: string },
  consents: readonly Consent[],
  organisationId: string,
  now: Date,
): CaseSections {
  if (organisationId === found.sending_organisation_id) return found.sections
  const visible: CaseSections = {}
  for (const category of dataCategories) {
    const section = found.sections[category]
    const covered = consents.some(
      (consent) =>
        consentStatus(consent, now) === 'active' &&
        consent.provisions.some((p) => p.categories.includes(category) && p.recipients.includes(organisationId)),
    )
    if (section !== undefined && covered) Object.assign(visible, { [category]: section })
  }
  return visible
}
