import { createHash } from 'node:crypto'
import canonicalize from 'canonicalize'
import type { components } from '../../openapi/dist/types.js'
import { consentStatus, consentsCovering, dataCategories } from '../cases/consent-coverage.js'
import type { CaseProfile, CaseSections, Consent, DataCategory, Purpose } from '../db/schema.js'

type Schemas = components['schemas']

export interface ComposedPacket {
  content: Schemas['PacketContent']
  included: DataCategory[]
  withheld: Schemas['WithheldCategory'][]
  consentsByCategory: Partial<Record<DataCategory, string[]>>
  contentHash: string
}

/**
 * The packet a case yields for a recipient and purpose: every section that holds data and that an
 * active consent covers goes in; every other section that holds data is withheld, with the reason.
 */
export function composePacket(
  source: { profile: CaseProfile; sections: CaseSections },
  consents: readonly Consent[],
  recipientId: string,
  purpose: Purpose,
  now: Date,
): ComposedPacket {
  const sections: CaseSections = {}
  const included: DataCategory[] = []
  const withheld: Schemas['WithheldCategory'][] = []
  const consentsByCategory: Partial<Record<DataCategory, string[]>> = {}
  for (const category of dataCategories) {
    const section = source.sections[category]
    if (section === undefined) continue
    const covering = consentsCovering(consents, category, recipientId, purpose, now)
    if (covering.length === 0) {
      withheld.push({ category, reason: 'no_consent' })
      continue
    }
    Object.assign(sections, { [category]: section })
    included.push(category)
    consentsByCategory[category] = covering
  }
  const content = { profile: source.profile, sections }
  return { content, included, withheld, consentsByCategory, contentHash: contentHash(content) }
}

/** SHA-256 (hex) of the content as canonical JSON (RFC 8785), so either side can verify it. */
export function contentHash(content: unknown): string {
  return createHash('sha256')
    .update(canonicalize(content) ?? '')
    .digest('hex')
}

/** The categories of a sent packet that its recipient may no longer read: no consent that covered them is still active. */
export function withdrawnCategories(
  included: readonly DataCategory[],
  consentsByCategory: Partial<Record<DataCategory, string[]>>,
  consents: readonly Consent[],
  now: Date,
): DataCategory[] {
  const active = new Set(consents.filter((consent) => consentStatus(consent, now) === 'active').map((c) => c.id))
  return included.filter((category) => !(consentsByCategory[category] ?? []).some((id) => active.has(id)))
}
