import { randomUUID } from 'node:crypto'
import type { Kysely, Transaction } from 'kysely'
import { openSecret, sealSecret, secretNeedsSealing } from '../crypto/case-keys.js'
import type { DB, WebhookSecret } from '../db/schema.js'
import { isAnyUuid } from '../db/statements.js'

/** The secrets that sign for each endpoint now, newest first, opened. */
export async function secretsOf(db: Kysely<DB> | Transaction<DB>, endpointIds: string[]) {
  const byEndpoint = new Map<string, WebhookSecret[]>()
  if (endpointIds.length === 0) return byEndpoint
  const rows = await db
    .selectFrom('webhook_secrets')
    .selectAll()
    .where(isAnyUuid('endpoint_id', endpointIds))
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', new Date())]))
    .orderBy('created_at', 'desc')
    .execute()
  for (const row of rows) {
    const opened = { ...row, secret: openSecret('webhook_secrets.secret', row.id, row.secret) }
    byEndpoint.set(row.endpoint_id, [...(byEndpoint.get(row.endpoint_id) ?? []), opened])
  }
  return byEndpoint
}

/** Stores a new signing secret of an endpoint, sealed under the current master key. */
export async function insertSecret(
  trx: Transaction<DB>,
  endpointId: string,
  secret: string,
  createdAt?: Date,
): Promise<void> {
  const id = randomUUID()
  await trx
    .insertInto('webhook_secrets')
    .values({
      id,
      endpoint_id: endpointId,
      secret: sealSecret('webhook_secrets.secret', id, secret),
      ...(createdAt ? { created_at: createdAt } : {}),
    })
    .execute()
}

/**
 * Seals every webhook secret in the clear or under an older master key anew under the current one.
 * At start (for secrets stored before encryption) and on key rotation; idempotent and resumable.
 */
export async function resealSecrets(db: Kysely<DB>): Promise<number> {
  let resealed = 0
  const rows = await db.selectFrom('webhook_secrets').select(['id', 'secret']).execute()
  for (const row of rows) {
    if (!secretNeedsSealing(row.secret)) continue
    const secret = openSecret('webhook_secrets.secret', row.id, row.secret)
    await db
      .updateTable('webhook_secrets')
      .set({ secret: sealSecret('webhook_secrets.secret', row.id, secret) })
      .where('id', '=', row.id)
      .where('secret', '=', row.secret)
      .execute()
    resealed += 1
  }
  return resealed
}
