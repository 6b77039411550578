import { type ExpressionBuilder, type Kysely, sql, type Transaction } from 'kysely'
import type { DB, Training } from '../db/schema.js'

type Db = Kysely<DB> | Transaction<DB>

const columns = [
  'id',
  'seq',
  'kind',
  sql<string>`held_on::text`.as('held_on'),
  'place',
  'country',
  'topic',
  'organiser_organisation_id',
  'participants',
  'participants_total',
  'participant_organisation_ids',
  'ngo_partner_ids',
  'improved_centre_ids',
  'version',
  'created_at',
  'updated_at',
  'created_by_principal_id',
] as const

/** Who reads a training: everyone it names, any auditor, and the hub's admin (`everyone`). */
export interface TrainingReader {
  organisationId: string
  everyone: boolean
}

function readableBy(reader: TrainingReader) {
  return (eb: ExpressionBuilder<DB, 'trainings'>) =>
    reader.everyone
      ? eb.lit(true)
      : eb.or([
          eb('organiser_organisation_id', '=', reader.organisationId),
          eb(eb.val(reader.organisationId), '=', eb.fn.any('participant_organisation_ids')),
          eb(eb.val(reader.organisationId), '=', eb.fn.any('ngo_partner_ids')),
          eb(eb.val(reader.organisationId), '=', eb.fn.any('improved_centre_ids')),
        ])
}

export async function findTraining(
  db: Db,
  id: string,
  reader: TrainingReader,
  { lock = false } = {},
): Promise<Training | undefined> {
  let query = db.selectFrom('trainings').select(columns).where('id', '=', id).where(readableBy(reader))
  if (lock) query = query.forUpdate()
  return query.executeTakeFirst()
}

export async function listTrainings(
  db: Db,
  reader: TrainingReader,
  page: { after?: string | undefined; limit: number },
): Promise<Training[]> {
  let query = db.selectFrom('trainings').select(columns).where(readableBy(reader))
  if (page.after !== undefined) query = query.where('seq', '<', page.after)
  return query
    .orderBy('seq', 'desc')
    .limit(page.limit + 1)
    .execute()
}

/** The ids among these that name no organisation of the directory. */
export async function unknownOrganisations(db: Db, ids: string[]): Promise<string[]> {
  if (ids.length === 0) return []
  const found = await db.selectFrom('organisations').select('id').where('id', 'in', ids).execute()
  const known = new Set(found.map((row) => row.id))
  return [...new Set(ids)].filter((id) => !known.has(id))
}
