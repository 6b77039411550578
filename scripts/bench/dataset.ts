// The benchmark's data set as a pure function of the case number n (1…N): the seeding SQL and the
// load generator both derive every id from n, so neither has to ask the database which case is whose.
import { createHash } from 'node:crypto'
import { demoOrganisationIds, demoOrganisations } from '../../src/demo/demo-data.js'

export interface Party {
  organisationId: string
  /** The caseworker principal that acts for the organisation in the seeded history. */
  principalId: string
}

function caseworkerOf(organisationId: string): Party {
  const organisation = demoOrganisations.find((candidate) => candidate.id === organisationId)
  const principal = organisation?.principals.find((candidate) => candidate.roles.includes('caseworker'))
  if (!principal) throw new Error(`the demo organisation ${organisationId} has no caseworker`)
  return { organisationId, principalId: principal.id }
}

/** Sending partners, one entry per tenth of the cases: IOM Poland opens half of them. */
export const senderSlots: readonly Party[] = [
  ...Array(5).fill(demoOrganisationIds.iomPoland),
  ...Array(3).fill(demoOrganisationIds.borderGuardPoland),
  ...Array(2).fill(demoOrganisationIds.ngoWarsaw),
].map(caseworkerOf)

/** Receiving partners, one entry per fifth of the cases, with the country the person returns to. */
export const receiverSlots: readonly (Party & { country: string; language: string })[] = [
  { ...caseworkerOf(demoOrganisationIds.iomUkraine), country: 'UA', language: 'uk' },
  { ...caseworkerOf(demoOrganisationIds.iomUkraine), country: 'UA', language: 'uk' },
  { ...caseworkerOf(demoOrganisationIds.kyivShelter), country: 'UA', language: 'uk' },
  { ...caseworkerOf(demoOrganisationIds.iomAlbania), country: 'AL', language: 'sq' },
  { ...caseworkerOf(demoOrganisationIds.iomMorocco), country: 'MA', language: 'ar' },
]

/** These SQL expressions and the functions below must agree: both pick the slot from n the same way. */
export const senderSlotSql = '1 + n % 10'
export const receiverSlotSql = '1 + (n / 10) % 5'

export function senderOf(n: number): Party {
  return senderSlots[n % 10] as Party
}

export function receiverOf(n: number): Party {
  return receiverSlots[Math.floor(n / 10) % 5] as Party
}

/** PostgreSQL's `md5(text)::uuid`, so that TypeScript computes the same ids as the seeding SQL. */
export function md5Uuid(text: string): string {
  const hex = createHash('md5').update(text).digest('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

export const caseId = (n: number) => md5Uuid(`case-${n}`)
export const consentId = (n: number) => md5Uuid(`consent-${n}`)
export const packetId = (n: number) => md5Uuid(`packet-${n}`)

/** The demo key of the caseworker that acts for a party in the seeded history, as a caller sends it. */
export function keyOf(party: Party): string {
  for (const organisation of demoOrganisations) {
    const principal = organisation.principals.find((candidate) => candidate.id === party.principalId)
    if (principal) return `trm_${principal.key.prefix}_${principal.key.secret}`
  }
  throw new Error(`no demo key for the principal ${party.principalId}`)
}

/** The callers of the reads: IOM Poland's case management system, and IOM Ukraine's reading its feed and inbox. */
export const iomPolandKey = keyOf(caseworkerOf(demoOrganisationIds.iomPoland))
export const iomUkraineKey = keyOf(caseworkerOf(demoOrganisationIds.iomUkraine))
