import { type ExpressionBuilder, type Kysely, sql, type Transaction } from 'kysely'
import { jsonArrayFrom } from 'kysely/helpers/postgres'
import type { DB, TransferAgreementTable } from '../db/schema.js'

type Db = Kysely<DB> | Transaction<DB>

const agreementColumns = [
  'id',
  'seq',
  'exporter_organisation_id',
  'importer_organisation_id',
  'safeguard',
  'reference',
  sql<string>`valid_from::text`.as('valid_from'),
  sql<string | null>`valid_until::text`.as('valid_until'),
  'registered_by_principal_id',
  'created_at',
] as const

export type AgreementRow = Awaited<ReturnType<typeof listAgreements>>[number]

export async function insertAgreement(
  db: Db,
  agreement: Omit<TransferAgreementTable, 'seq' | 'created_at' | 'id'> & { id?: string },
): Promise<AgreementRow> {
  return db.insertInto('transfer_agreements').values(agreement).returning(agreementColumns).executeTakeFirstOrThrow()
}

/**
 * The agreements from exporter to importer in force on `day`, newest first, as JSON: to read them
 * beside the case in the statement of a send.
 */
export function agreementsInForceJson(
  eb: ExpressionBuilder<DB, 'cases'>,
  exporterId: string,
  importerId: string,
  day: string,
) {
  return jsonArrayFrom(
    eb
      .selectFrom('transfer_agreements')
      .select(['id', 'reference', 'safeguard'])
      .where('exporter_organisation_id', '=', exporterId)
      .where('importer_organisation_id', '=', importerId)
      .where(sql<boolean>`valid_from <= ${day}::date`)
      .where(sql<boolean>`(valid_until is null or valid_until >= ${day}::date)`)
      .orderBy('seq', 'desc'),
  )
}

/** Agreements oldest first; with `organisationId`, only those it is a party to. */
export async function listAgreements(
  db: Db,
  filter: { organisationId?: string | undefined; after?: string | undefined; limit: number },
) {
  let query = db.selectFrom('transfer_agreements').select(agreementColumns)
  const { organisationId } = filter
  if (organisationId !== undefined) {
    query = query.where((eb) =>
      eb.or([eb('exporter_organisation_id', '=', organisationId), eb('importer_organisation_id', '=', organisationId)]),
    )
  }
  if (filter.after !== undefined) query = query.where('seq', '>', filter.after)
  return query
    .orderBy('seq')
    .limit(filter.limit + 1)
    .execute()
}

export interface TransferFilter {
  organisationId: string
  from?: string | undefined
  to?: string | undefined
  country?: string | undefined
  after?: string | undefined
  limit: number
}

/** The packets an organisation sent or received that left the EU/EEA, newest first. */
export async function listTransfers(db: Db, filter: TransferFilter) {
  const { organisationId } = filter
  let query = db
    .selectFrom('packets')
    .innerJoin('cases', 'cases.id', 'packets.case_id')
    .select([
      'packets.id',
      'packets.seq',
      'packets.kind',
      'packets.case_id',
      'cases.reference as case_reference',
      'packets.sender_organisation_id',
      'packets.recipient_organisation_id',
      'packets.sent_at',
      'packets.transfer',
    ])
    .where('packets.transfer', 'is not', null)
    .where((eb) =>
      eb.or([
        eb('packets.sender_organisation_id', '=', organisationId),
        eb('packets.recipient_organisation_id', '=', organisationId),
      ]),
    )
  if (filter.from) query = query.where('packets.sender_organisation_id', '=', filter.from)
  if (filter.to) query = query.where('packets.recipient_organisation_id', '=', filter.to)
  if (filter.country) query = query.where(sql<boolean>`packets.transfer->>'destination_country' = ${filter.country}`)
  if (filter.after) query = query.where('packets.seq', '<', filter.after)
  return query
    .orderBy('packets.seq', 'desc')
    .limit(filter.limit + 1)
    .execute()
}
