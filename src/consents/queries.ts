import { randomUUID } from 'node:crypto'
import type { Kysely, Transaction } from 'kysely'
import type { components } from '../../openapi/dist/types.js'
import { consentsWithKeys, openConsentRow, sealConsentText } from '../cases/queries.js'
import type { CaseKeyColumns } from '../crypto/case-keys.js'
import { type Consent, type DB, json } from '../db/schema.js'

type Db = Kysely<DB> | Transaction<DB>

export interface NewConsentInput {
  caseId: string
  consent: components['schemas']['NewConsent']
  principalId: string
  organisationId: string
}

/** Inserts a consent, its free text sealed with the key of its case. */
export async function insertConsent(db: Db, keyColumns: CaseKeyColumns, input: NewConsentInput): Promise<Consent> {
  const { consent } = input
  const id = randomUUID()
  const text = {
    guardian: consent.guardian ?? null,
    interpreter: consent.interpreter,
    child_views: consent.child_views ?? null,
  }
  const inserted = await db
    .insertInto('consents')
    .values({
      id,
      case_id: input.caseId,
      given_at: consent.given_at,
      method: consent.method,
      language: consent.language,
      ...sealConsentText(keyColumns, id, text),
      provisions: json(consent.provisions),
      expires_at: consent.expires_at ?? null,
      informed_of_transfer_risks: consent.informed_of_transfer_risks ?? false,
      recorded_by_principal_id: input.principalId,
      recorded_by_organisation_id: input.organisationId,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
  return { ...inserted, ...text }
}

export async function findConsent(
  db: Db,
  caseId: string,
  consentId: string,
  { lock = false } = {},
): Promise<Consent | undefined> {
  let query = consentsWithKeys(db).where('consents.case_id', '=', caseId).where('consents.id', '=', consentId)
  if (lock) query = query.forUpdate('consents')
  const row = await query.executeTakeFirst()
  return row && openConsentRow(row)
}
