import type { Kysely, Transaction } from 'kysely'
import type { ApiKey, DB, NewOrganisation, NewPrincipal, Organisation, Principal } from '../db/schema.js'
import type { GeneratedApiKey } from '../http/authentication.js'
import { defaultTimeZone } from './time-zones.js'

type Db = Kysely<DB> | Transaction<DB>

/** Inserts an organisation; without a time zone it keeps its country's (see `time-zones.ts`). */
export async function insertOrganisation(
  db: Db,
  { time_zone, ...organisation }: Omit<NewOrganisation, 'time_zone'> & { time_zone?: string | undefined },
): Promise<Organisation> {
  const zone = time_zone ?? defaultTimeZone(organisation.country)
  if (zone === undefined) throw new Error(`no time zone for an organisation in ${organisation.country}`)
  return db
    .insertInto('organisations')
    .values({ ...organisation, time_zone: zone })
    .returningAll()
    .executeTakeFirstOrThrow()
}

export async function findOrganisation(db: Db, id: string): Promise<Organisation | undefined> {
  return db.selectFrom('organisations').selectAll().where('id', '=', id).executeTakeFirst()
}

export interface OrganisationFilter {
  country?: string | undefined
  kind?: string | undefined
  side?: 'sending' | 'receiving' | undefined
  after?: readonly [string, string] | undefined
  limit: number
}

export async function listOrganisations(db: Db, filter: OrganisationFilter): Promise<Organisation[]> {
  let query = db.selectFrom('organisations').selectAll()
  if (filter.country) query = query.where('country', '=', filter.country)
  if (filter.kind) query = query.where('kind', '=', filter.kind as Organisation['kind'])
  if (filter.side === 'sending') query = query.where('can_send', '=', true)
  if (filter.side === 'receiving') query = query.where('can_receive', '=', true)
  if (filter.after) {
    const [name, id] = filter.after
    query = query.where(({ eb, refTuple, tuple }) => eb(refTuple('name', 'id'), '>', tuple(name, id)))
  }
  return query
    .orderBy('name')
    .orderBy('id')
    .limit(filter.limit + 1)
    .execute()
}

export async function insertPrincipal(db: Db, principal: NewPrincipal): Promise<Principal> {
  return db.insertInto('principals').values(principal).returningAll().executeTakeFirstOrThrow()
}

export async function findPrincipal(db: Db, id: string): Promise<Principal | undefined> {
  return db.selectFrom('principals').selectAll().where('id', '=', id).executeTakeFirst()
}

export async function listPrincipals(
  db: Db,
  organisationId: string,
  after: readonly [string, string] | undefined,
  limit: number,
) {
  let query = db.selectFrom('principals').selectAll().where('organisation_id', '=', organisationId)
  if (after) {
    const [name, id] = after
    query = query.where(({ eb, refTuple, tuple }) => eb(refTuple('name', 'id'), '>', tuple(name, id)))
  }
  return query
    .orderBy('name')
    .orderBy('id')
    .limit(limit + 1)
    .execute()
}

export async function insertApiKey(
  db: Db,
  principalId: string,
  generated: GeneratedApiKey,
  label: string,
  expiresAt: Date | null = null,
): Promise<ApiKey> {
  return db
    .insertInto('api_keys')
    .values({
      principal_id: principalId,
      prefix: generated.prefix,
      secret_hash: generated.secretHash,
      label,
      expires_at: expiresAt,
      revoked_at: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
}

export async function listApiKeys(
  db: Db,
  principalId: string,
  after: readonly [string, string] | undefined,
  limit: number,
) {
  let query = db.selectFrom('api_keys').selectAll().where('principal_id', '=', principalId)
  if (after) {
    const [label, id] = after
    query = query.where(({ eb, refTuple, tuple }) => eb(refTuple('label', 'id'), '>', tuple(label, id)))
  }
  return query
    .orderBy('label')
    .orderBy('id')
    .limit(limit + 1)
    .execute()
}

/** Revokes the key if it is not revoked yet; answers the key either way. */
export async function revokeApiKey(db: Db, id: string): Promise<ApiKey | undefined> {
  const revoked = await db
    .updateTable('api_keys')
    .set({ revoked_at: new Date() })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .returningAll()
    .executeTakeFirst()
  return revoked ?? db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst()
}
