import { sql } from 'kysely'
import type { Database, NotificationListener } from '../db/database.js'
import { isAnyUuid } from '../db/statements.js'
import type { Loop } from '../jobs/queue.js'
import { DELIVER_WEBHOOK } from './delivery.js'

const RELAY_BATCH = 500
const RELAY_CHANNEL = 'trm_relay'
const RELAY_GATHER_MS = 50

/**
 * Turns events into webhook deliveries, in the events' order and never skipping one (the feed's
 * rule), then queues every delivery that waits for a job, all in one transaction. One relay works
 * at a time, whatever the number of workers: the others find its position row locked. Each job
 * is queued in its endpoint's group, which bounds the deliveries in flight to one endpoint.
 */
export function relayLoop(database: Pick<Database, 'db' | 'kind' | 'listen'>): Loop {
  const db = database.db
  return {
    name: 'relay-events',
    pauseMs: 250,
    // The embedded database announces new events and deliveries to queue again at commit
    // (migration 0016), so its relay sleeps until then; on PostgreSQL the relay polls.
    // A busy office's commits then share a round: the one database does the relay's work once for
    // them all rather than after each, for a delivery up to RELAY_GATHER_MS later.
    ...(database.kind === 'pglite'
      ? {
          wakeOn: (listener: NotificationListener) => database.listen(RELAY_CHANNEL, listener),
          gatherMs: RELAY_GATHER_MS,
        }
      : {}),
    run: (queue) =>
      db.transaction().execute(async (trx) => {
        const position = (
          await sql<{ txid: string; seq: string }>`
            select txid::text as txid, seq::text as seq from event_relay_position for update skip locked
          `.execute(trx)
        ).rows[0]
        if (!position) return { done: 0, full: false, leftOver: true }
        const fanned = (
          await sql<{ events: string; txid: string | null; seq: string | null; unseen: boolean }>`
            with next_events as (
              select id, txid, seq, type from events
              where (txid, seq) > (${position.txid}::xid8, ${position.seq}::bigint)
                and txid < pg_snapshot_xmin(pg_current_snapshot())
              order by txid, seq
              limit ${RELAY_BATCH}
            ), deliveries as (
              insert into webhook_deliveries (endpoint_id, event_id, status)
              select endpoint.id, next_events.id, 'pending'
              from next_events
              join event_audiences as audience on audience.event_id = next_events.id
              join webhook_endpoints as endpoint on endpoint.organisation_id = audience.organisation_id
              where endpoint.enabled
                and (cardinality(endpoint.event_types) = 0 or next_events.type = any(endpoint.event_types))
              order by next_events.txid, next_events.seq
              on conflict (endpoint_id, event_id) do nothing
            ), last_event as (
              select txid, seq from next_events order by txid desc, seq desc limit 1
            )
            select (select count(*) from next_events)::text as events,
                   (select txid::text from last_event) as txid,
                   (select seq::text from last_event) as seq,
                   -- Events of transactions that ended while an older one still runs: no commit
                   -- will announce them again, so the relay looks for them again after a pause.
                   exists (
                     select from events
                     where (txid, seq) > (${position.txid}::xid8, ${position.seq}::bigint)
                       and txid >= pg_snapshot_xmin(pg_current_snapshot())
                   ) as unseen
          `.execute(trx)
        ).rows[0]
        if (fanned?.txid && fanned.seq) {
          await trx.updateTable('event_relay_position').set({ txid: fanned.txid, seq: fanned.seq }).execute()
        }
        const waiting = await trx
          .selectFrom('webhook_deliveries')
          .select(['id', 'endpoint_id'])
          .where('queued_at', 'is', null)
          .where('status', 'in', ['pending', 'retrying'])
          .orderBy('seq')
          .limit(RELAY_BATCH)
          .forUpdate()
          .skipLocked()
          .execute()
        const ids = waiting.map((row) => row.id)
        await queue.enqueue(
          trx,
          DELIVER_WEBHOOK,
          waiting.map((row) => ({ data: { delivery_id: row.id }, group: row.endpoint_id })),
        )
        if (ids.length > 0) {
          await trx
            .updateTable('webhook_deliveries')
            .set({ queued_at: new Date() })
            .where(isAnyUuid('id', ids))
            .execute()
        }
        const events = Number(fanned?.events ?? 0)
        return {
          done: events + ids.length,
          full: events === RELAY_BATCH || ids.length === RELAY_BATCH,
          leftOver: fanned?.unseen ?? false,
        }
      }),
  }
}
