import type { Kysely, Transaction } from 'kysely'
import type { Case, CaseParty, Consent, DB } from '../db/schema.js'
import { type CaseDisclosure, discloseCase } from '../disclosure/policy.js'
import type { SopRegistry } from '../sops/registry.js'
import { definitionOf, purposesAt } from './procedure-definition.js'
import { consentsOfCase, partiesOf } from './queries.js'

/** The disclosure policy for one party of a case, at the case's current step. */
export function disclosureFor(
  sops: SopRegistry,
  found: Omit<Case, 'sections' | 'data_key' | 'data_key_id'>,
  parties: readonly CaseParty[],
  consents: readonly Consent[],
  organisationId: string,
  now: Date,
): CaseDisclosure {
  const role = parties.find((party) => party.organisation_id === organisationId)?.role ?? 'invited'
  const purposes = purposesAt(definitionOf(sops, found), found)
  return discloseCase(found, consents, { organisationId, role }, purposes, now)
}

/** The disclosure policy for one organisation, loading the parties and consents of the case it needs. */
export async function caseDisclosure(
  db: Kysely<DB> | Transaction<DB>,
  sops: SopRegistry,
  found: Case,
  organisationId: string,
  now: Date,
): Promise<CaseDisclosure> {
  const parties = (await partiesOf(db, [found.id])).get(found.id) ?? []
  return disclosureFor(sops, found, parties, await consentsOfCase(db, found.id), organisationId, now)
}
