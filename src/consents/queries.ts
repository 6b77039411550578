import type { Kysely, Transaction } from 'kysely'
import type { components } from '../../openapi/dist/types.js'
import { type Consent, type DB, json } from '../db/schema.js'

type Db = Kysely<DB> | Transaction<DB>

export interface NewConsentInput {
  caseId: string
  consent: components['schemas']['NewConsent']
  principalId: string
  organisationId: string
}

export async function insertConsent(db: Db, input: NewConsentInput): Promise<Consent> {
  const { consent } = input
  return db
    .insertInto('consents')
    .values({
      case_id: input.caseId,
      given_at: consent.given_at,
      method: consent.method,
      language: consent.language,
      interpreter: json(consent.interpreter),
      guardian: consent.guardian ? json(consent.guardian) : null,
      child_views: consent.child_views ?? null,
      provisions: json(consent.provisions),
      expires_at: consent.expires_at ?? null,
      informed_of_transfer_risks: consent.informed_of_transfer_risks ?? false,
      recorded_by_principal_id: input.principalId,
      recorded_by_organisation_id: input.organisationId,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
}

export async function findConsent(db: Db, caseId: string, consentId: string, { lock = false } = {}) {
  let query = db.selectFrom('consents').selectAll().where('case_id', '=', caseId).where('id', '=', consentId)
  if (lock) query = query.forUpdate()
  return query.executeTakeFirst()
}
