import { createHash } from 'node:crypto'
import canonicalize from 'canonicalize'
import type { components } from '../../openapi/dist/types.js'
import type { CaseProfile, CaseRecord, CaseSections, Consent, DataCategory, Purpose } from '../db/schema.js'
import { type Localisable, withMessage } from '../i18n/catalogue.js'
import { consentStatus, coverage, dataCategories, sectionCategories, type WithheldReason } from './consent-scope.js'

// What an organisation may see of a case: the one policy that every read of case data goes through
// (case, list, records, timeline, consents, packets, audit) and that composes every packet. Pure:
// callers hand it the rows they already hold.

type Schemas = components['schemas']
type PacketKind = Schemas['PacketKind']

/** Identity and contact data reach a receiving partner only once it accepted the person. */
const identifying: readonly DataCategory[] = ['identity', 'contact']

/** The categories each kind of packet may carry, whatever the consent: an enquiry carries the minimum to decide. */
const carriedBy: Record<PacketKind, readonly DataCategory[]> = {
  enquiry: ['health', 'psychosocial', 'reintegration'],
  information: dataCategories.filter((category) => !identifying.includes(category)),
  referral: dataCategories,
  update: dataCategories,
}

/** The profile a party other than the sending partner and the lead sees, while consent names it. */
const sharedProfileFields = ['age_band', 'sex', 'vulnerabilities', 'languages', 'country_of_return'] as const

export type ProfileView = Schemas['CaseProfileView']

export interface CaseParties {
  sending_organisation_id: string
  lead_organisation_id: string
  /** The receiving partner that accepted the person, if any. */
  receiving_organisation_id: string | null
}

export interface Viewer {
  organisationId: string
  /** Its part in the case: `invited` for a party the sending or receiving partner brought in. */
  role: 'sending' | 'receiving' | 'invited'
}

/** An attachment as the policy needs it: its category and who uploaded it. */
type DisclosableAttachment = { id: string; category: DataCategory; uploaded_by_organisation_id: string }

/** A packet of the case as the policy needs it to let its recipient read the attachments it carried. */
export type ReceivedPacket = SentPacket & { recipient_organisation_id: string; attachment_ids: readonly string[] }

/** A record as the policy needs it: its category and who made it. */
type DisclosableRecord = Pick<CaseRecord, 'category' | 'recorded_by_organisation_id'>

export interface CaseDisclosure {
  /** The sending partner: it holds every piece of the case it collected. */
  readonly holder: boolean
  readable(category: DataCategory): boolean
  /** Why a category is not readable; undefined when it is. */
  withheldReason(category: DataCategory): WithheldReason | undefined
  profile(profile: CaseProfile): ProfileView
  sections(sections: CaseSections): CaseSections
  records<R extends DisclosableRecord>(records: readonly R[]): R[]
  /** Proceedings are the consent category `proceedings`: readable as such, and always by their author. */
  proceedings<P extends { created_by_organisation_id: string }>(proceedings: readonly P[]): P[]
  /**
   * The attachments the viewer may read, given the packets of the case it received: the sending
   * partner all, an uploader its own, anyone else what travelled to it under consent that still holds.
   */
  attachments<A extends DisclosableAttachment>(attachments: readonly A[], received: readonly ReceivedPacket[]): A[]
  consent<C extends ConsentView>(consent: C): C
  /**
   * Whether the viewer may issue the person a receipt of this consent: only the organisation that
   * holds the consent — the sending partner, or the one that recorded it. A receipt is for the
   * person, not for the partners the consent names.
   */
  consentReceipt(consent: Pick<Consent, 'recorded_by_organisation_id'>): boolean
  /** A refusal as the viewer may read it: what a record says stays hidden where its category does. */
  unmet<U extends RefusalDetail>(unmet: readonly U[]): U[]
  /** Notes and reasons of the timeline stay with the two sides of the case. */
  timelineNotes: boolean
  /**
   * The way the case came through its procedure, as any party may see it (the picture of the
   * case): which action led from which step to which, and when; never who, nor a note or reason.
   */
  path<T extends PathStep>(transitions: readonly T[]): PathStep[]
  /** Whether the viewer sees every audit record of the case, or only its own organisation's. */
  allAudit: boolean
}

/** A transition of the case's timeline, reduced to its steps and its time. */
export interface PathStep {
  action: string
  from_step: string | null
  to_step: string
  at: Date
}

interface RefusalDetail extends Localisable {
  code: string
  category?: DataCategory
  record_id?: string
  actual?: unknown
}

interface ConsentView {
  guardian: Schemas['Consent']['guardian']
  child_views: string | null
  interpreter: Schemas['Interpreter']
}

/**
 * What an organisation may see of a case now: everything for the sending partner; for any other
 * party, the categories an active consent covers for it and for the purposes of the case's current
 * step (none at a final step), never identity or contact data before it accepted the person (an
 * invited party is let in on purpose), and a minimum profile.
 */
export function discloseCase(
  parties: CaseParties,
  consents: readonly Consent[],
  viewer: Viewer,
  purposes: readonly Purpose[],
  now: Date,
): CaseDisclosure {
  const holder = viewer.organisationId === parties.sending_organisation_id
  const lead = viewer.organisationId === parties.lead_organisation_id
  const accepted = viewer.organisationId === parties.receiving_organisation_id || viewer.role === 'invited'
  const reasons = new Map<DataCategory, WithheldReason | undefined>(
    dataCategories.map((category) => {
      if (holder) return [category, undefined]
      if ((identifying.includes(category) && !accepted) || purposes.length === 0)
        return [category, 'not_needed_for_purpose']
      return [category, coverage(consents, category, viewer.organisationId, purposes, now).reason]
    }),
  )
  const readable = (category: DataCategory) => reasons.get(category) === undefined
  const named = consents.some(
    (consent) =>
      consentStatus(consent, now) === 'active' &&
      consent.provisions.some(
        (p) => p.recipients.includes(viewer.organisationId) && p.purposes.some((purpose) => purposes.includes(purpose)),
      ),
  )
  return {
    holder,
    readable,
    withheldReason: (category) => reasons.get(category),
    profile(profile) {
      if (holder || lead) return profile
      if (!named) return { country_of_return: profile.country_of_return }
      return Object.fromEntries(
        sharedProfileFields.flatMap((field) => (field in profile ? [[field, profile[field]]] : [])),
      )
    },
    sections: (sections) => pick(sections, readable),
    records: (records) =>
      records.filter(
        (record) => readable(record.category) || record.recorded_by_organisation_id === viewer.organisationId,
      ),
    proceedings: (proceedings) =>
      proceedings.filter(
        (proceeding) => readable('proceedings') || proceeding.created_by_organisation_id === viewer.organisationId,
      ),
    attachments: (attachments, received) =>
      discloseAttachments(
        attachments,
        received,
        consents,
        { organisationId: viewer.organisationId, holder },
        purposes,
        now,
      ),
    consent(consent) {
      if (holder) return consent
      return { ...consent, guardian: null, child_views: null, interpreter: { used: consent.interpreter.used } }
    },
    consentReceipt: (consent) => holder || consent.recorded_by_organisation_id === viewer.organisationId,
    unmet: (unmet) =>
      unmet.map((item) => {
        if (item.category === undefined || readable(item.category)) return item
        const { record_id: _, actual: __, ...rest } = item
        return withMessage(rest, {
          key: 'unmet.hidden_record',
          params: { category: { code: item.category, vocabulary: 'category', lower: true } },
        }) as typeof item
      }),
    timelineNotes: viewer.role !== 'invited',
    path: (transitions) =>
      transitions.map(({ action, from_step, to_step, at }) => ({ action, from_step, to_step, at })),
    allAudit: holder || lead,
  }
}

function pick(sections: CaseSections, keep: (category: DataCategory) => boolean): CaseSections {
  const kept: CaseSections = {}
  for (const category of sectionCategories) {
    const section = sections[category]
    if (section !== undefined && keep(category)) Object.assign(kept, { [category]: section })
  }
  return kept
}

export type PacketContent = Schemas['PacketContent']
export type PresentedRecord = Schemas['CaseRecord']
export type PacketAttachment = Schemas['PacketAttachment']

export interface ComposedPacket {
  content: PacketContent
  included: DataCategory[]
  withheld: Schemas['WithheldCategory'][]
  consentsByCategory: Partial<Record<DataCategory, string[]>>
  contentHash: string
  /** The attachments asked for that the packet may not carry, each with the reason its category is withheld. */
  refusedAttachments: { id: string; category: DataCategory; reason: WithheldReason }[]
}

/**
 * The packet a case yields for a recipient and purpose: each category that holds data (a section, a
 * record, or an attachment the sender names) goes in when its kind of packet carries it and an
 * active consent covers it; every other category that holds data is withheld, with the reason. An
 * attachment of a withheld category is refused, never dropped in silence.
 */
export function composePacket(
  source: {
    profile: CaseProfile
    sections: CaseSections
    records: readonly PresentedRecord[]
    attachments?: readonly PacketAttachment[]
  },
  consents: readonly Consent[],
  recipientId: string,
  purpose: Purpose,
  kind: PacketKind,
  now: Date,
): ComposedPacket {
  const included: DataCategory[] = []
  const withheld: Schemas['WithheldCategory'][] = []
  const consentsByCategory: Partial<Record<DataCategory, string[]>> = {}
  const held = new Set<DataCategory>([
    ...sectionCategories.filter((category) => source.sections[category] !== undefined),
    ...source.records.map((record) => record.category),
    ...(source.attachments ?? []).map((attachment) => attachment.category),
  ])
  for (const category of dataCategories.filter((c) => held.has(c))) {
    if (!carriedBy[kind].includes(category)) {
      withheld.push({ category, reason: 'not_needed_for_purpose' })
      continue
    }
    const covered = coverage(consents, category, recipientId, [purpose], now)
    if (covered.reason) {
      withheld.push({ category, reason: covered.reason })
      continue
    }
    included.push(category)
    consentsByCategory[category] = covered.consentIds
  }
  const attachments = source.attachments ?? []
  const carried = attachments.filter((attachment) => included.includes(attachment.category))
  const content: PacketContent = {
    profile: kind === 'enquiry' ? sharedProfile(source.profile) : source.profile,
    sections: pick(source.sections, (category) => included.includes(category)),
    records: source.records.filter((record) => included.includes(record.category)),
    // Only a packet that carries attachments names them: the content, and its hash, of every other stay as they were.
    ...(carried.length > 0 ? { attachments: carried } : {}),
  }
  const refusedAttachments = attachments.flatMap((attachment) => {
    const reason = withheld.find((w) => w.category === attachment.category)?.reason
    return reason ? [{ id: attachment.id, category: attachment.category, reason }] : []
  })
  return { content, included, withheld, consentsByCategory, contentHash: contentHash(content), refusedAttachments }
}

function sharedProfile(profile: CaseProfile): ProfileView {
  return Object.fromEntries(sharedProfileFields.flatMap((field) => (field in profile ? [[field, profile[field]]] : [])))
}

/** SHA-256 (hex) of the content as canonical JSON (RFC 8785), so either side can verify it. */
export function contentHash(content: unknown): string {
  return createHash('sha256')
    .update(canonicalize(content) ?? '')
    .digest('hex')
}

export interface PacketView {
  content: PacketContent
  included: DataCategory[]
  withheld: Schemas['WithheldCategory'][]
  /** The categories the recipient may no longer read, and must delete. */
  gone: DataCategory[]
}

/**
 * A sent packet as an organisation may read it now. Its sender sees what it sent. Its recipient
 * loses a category as soon as no consent that covered it is still active (withdrawn or expired:
 * it must delete its copies), and reads a category only while an active consent covers it for a
 * purpose of the case's current step, as for every read of the case.
 */
export function disclosePacket(
  packet: SentPacket & { content: PacketContent; withheld: Schemas['WithheldCategory'][] },
  consents: readonly Consent[],
  organisationId: string,
  purposes: readonly Purpose[],
  now: Date,
): PacketView {
  const lost = lostCategories(packet, consents, organisationId, purposes, now)
  const categories = categoriesOf(packet, lost, organisationId)
  if (organisationId === packet.sender_organisation_id || lost.size === 0) {
    return { content: packet.content, ...categories }
  }
  const keep = (category: DataCategory) => !lost.has(category)
  return {
    ...categories,
    content: {
      profile: packet.content.profile,
      sections: pick(packet.content.sections, keep),
      records: packet.content.records.filter((record) => keep(record.category)),
      ...(packet.content.attachments
        ? { attachments: packet.content.attachments.filter((attachment) => keep(attachment.category)) }
        : {}),
    },
  }
}

/** What a packet's summary says of its categories: `disclosePacket` without the content. */
export type CategoriesView = Omit<PacketView, 'content'>

/** The categories of a packet an organisation may read now, as `disclosePacket` says, for a summary that shows no content. */
export function discloseCategories(
  packet: SentPacket & { withheld: Schemas['WithheldCategory'][] },
  consents: readonly Consent[],
  organisationId: string,
  purposes: readonly Purpose[],
  now: Date,
): CategoriesView {
  return categoriesOf(packet, lostCategories(packet, consents, organisationId, purposes, now), organisationId)
}

function categoriesOf(
  packet: SentPacket & { withheld: Schemas['WithheldCategory'][] },
  lost: Map<DataCategory, WithheldReason>,
  organisationId: string,
): CategoriesView {
  const gone = [...lost].flatMap(([category, reason]) => (reason === 'not_needed_for_purpose' ? [] : [category]))
  if (organisationId === packet.sender_organisation_id || lost.size === 0) {
    return { included: packet.included_categories, withheld: packet.withheld, gone }
  }
  return {
    included: packet.included_categories.filter((category) => !lost.has(category)),
    withheld: [...packet.withheld, ...[...lost].map(([category, reason]) => ({ category, reason }))],
    gone,
  }
}

/** What the policy reads of a sent packet to say what its recipient may still read of it. */
interface SentPacket {
  included_categories: DataCategory[]
  consents_by_category: Partial<Record<DataCategory, string[]>>
  sender_organisation_id: string
}

/**
 * The categories of a packet its recipient may no longer read, and why: the consents the packet
 * relied on are no longer active (withdrawn, expired), or none covers the category for a purpose
 * of the case's current step.
 */
function lostCategories(
  packet: SentPacket,
  consents: readonly Consent[],
  organisationId: string,
  purposes: readonly Purpose[],
  now: Date,
): Map<DataCategory, WithheldReason> {
  const byId = new Map(consents.map((consent) => [consent.id, consent]))
  const lost = new Map<DataCategory, WithheldReason>()
  for (const category of packet.included_categories) {
    const relied = (packet.consents_by_category[category] ?? []).flatMap((id) => byId.get(id) ?? [])
    const statuses = relied.map((consent) => consentStatus(consent, now))
    if (statuses.includes('active')) {
      if (coverage(consents, category, organisationId, purposes, now).reason)
        lost.set(category, 'not_needed_for_purpose')
      continue
    }
    lost.set(category, statuses.includes('withdrawn') || statuses.length === 0 ? 'withdrawn' : 'expired')
  }
  return lost
}

/**
 * The attachments of a case an organisation may read now. The sending partner holds every one, and
 * an uploader its own. Any other organisation reads one only when it travelled to it in a packet
 * whose category it may still read there — the same rule as for that packet's content: gone at once
 * when the consent the packet relied on is withdrawn or expires.
 */
function discloseAttachments<A extends DisclosableAttachment>(
  attachments: readonly A[],
  received: readonly ReceivedPacket[],
  consents: readonly Consent[],
  viewer: { organisationId: string; holder: boolean },
  purposes: readonly Purpose[],
  now: Date,
): A[] {
  if (viewer.holder) return [...attachments]
  const readable = new Set<string>()
  const categoryOf = new Map(attachments.map((attachment) => [attachment.id, attachment.category]))
  for (const packet of received) {
    if (packet.recipient_organisation_id !== viewer.organisationId) continue
    const lost = lostCategories(packet, consents, viewer.organisationId, purposes, now)
    for (const id of packet.attachment_ids) {
      const category = categoryOf.get(id)
      if (category && packet.included_categories.includes(category) && !lost.has(category)) readable.add(id)
    }
  }
  return attachments.filter(
    (attachment) => readable.has(attachment.id) || attachment.uploaded_by_organisation_id === viewer.organisationId,
  )
}

/**
 * A safety note shared without consent (a risk to life): its author always reads it; the recipient
 * only once a second supervisor approved it, and until it expires. Nothing else of the case moves.
 */
export function safetyNoteReadable(
  override: { organisation_id: string; recipient_organisation_id: string; approved_at: Date | null; expires_at: Date },
  organisationId: string,
  now: Date,
): boolean {
  if (organisationId === override.organisation_id) return true
  return (
    organisationId === override.recipient_organisation_id && override.approved_at !== null && override.expires_at > now
  )
}
