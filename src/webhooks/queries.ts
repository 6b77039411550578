import type { Kysely, Transaction } from 'kysely'
import type { DB, WebhookSecret } from '../db/schema.js'

/** The secrets that sign for each endpoint now, newest first. */
export async function secretsOf(db: Kysely<DB> | Transaction<DB>, endpointIds: string[]) {
  const byEndpoint = new Map<string, WebhookSecret[]>()
  if (endpointIds.length === 0) return byEndpoint
  const rows = await db
    .selectFrom('webhook_secrets')
    .selectAll()
    .where('endpoint_id', 'in', endpointIds)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', new Date())]))
    .orderBy('created_at', 'desc')
    .execute()
  for (const row of rows) byEndpoint.set(row.endpoint_id, [...(byEndpoint.get(row.endpoint_id) ?? []), row])
  return byEndpoint
}
