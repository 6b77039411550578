import { readFileSync } from 'node:fs'
import type { components } from '../../openapi/dist/types.js'

export type TransferZone = components['schemas']['TransferZone']

interface AdequacyDecision {
  country: string
  name: string
  decision: string
  /** `partial`: the decision covers only some recipients in the country, so it is not relied on. */
  scope: 'full' | 'partial'
  valid_until?: string
}

interface CountryData {
  eea: string[]
  adequacy: AdequacyDecision[]
}

/** The EU/EEA and the European Commission's adequacy decisions, from `countries.json`: data, cited there. */
const data = JSON.parse(readFileSync(new URL('./countries.json', import.meta.url), 'utf8')) as CountryData
const eea = new Set(data.eea)
const decisions = new Map(data.adequacy.map((decision) => [decision.country, decision]))

export interface CountryStanding {
  zone: TransferZone
  /** The adequacy decision a transfer there rests on, when the zone is `adequate`. */
  adequacyDecision: string | null
}

/**
 * Where a country stands for transfers from the EU/EEA on a day: inside it, covered by an adequacy
 * decision in force for every recipient there, or a third country whose recipients need safeguards
 * or a derogation.
 */
export function countryStanding(country: string, now: Date): CountryStanding {
  if (eea.has(country)) return { zone: 'eea', adequacyDecision: null }
  const decision = decisions.get(country)
  const inForce = decision?.valid_until === undefined || decision.valid_until >= now.toISOString().slice(0, 10)
  if (decision?.scope === 'full' && inForce) return { zone: 'adequate', adequacyDecision: decision.decision }
  return { zone: 'third_country', adequacyDecision: null }
}
