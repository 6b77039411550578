import http from 'node:http'
import https from 'node:https'
import { type Kysely, sql } from 'kysely'
import type { DB } from '../db/schema.js'
import { presentEvent } from '../events/outbox.js'
import type { Job, Loop } from '../jobs/queue.js'
import { secretsOf } from './queries.js'
import { signedHeaders } from './signature.js'
import { publicLookup, unsafeTargetReason } from './targets.js'

export const DELIVER_WEBHOOK = 'deliver-webhook'
const RELAY_BATCH = 500

export interface DeliverySettings {
  allowPrivateTargets: boolean
  timeoutSeconds: number
  /** Attempts after the first, spaced by exponential backoff from `retryDelaySeconds`. */
  retryLimit: number
  retryDelaySeconds: number
  /** Consecutive deliveries that used up their retries before the endpoint is disabled. */
  disableAfterFailedDeliveries: number
}

/**
 * Turns events into webhook deliveries, in the events' order and never skipping one (the feed's
 * rule), then queues every delivery that waits for a job, all in one transaction. One relay works
 * at a time, whatever the number of workers: the others find its position row locked.
 */
export function relayLoop(db: Kysely<DB>): Loop {
  return {
    name: 'relay-events',
    pauseMs: 500,
    run: (queue) =>
      db.transaction().execute(async (trx) => {
        const position = (
          await sql<{ txid: string; seq: string }>`
            select txid::text as txid, seq::text as seq from event_relay_position for update skip locked
          `.execute(trx)
        ).rows[0]
        if (!position) return 0
        const fanned = (
          await sql<{ events: string; txid: string | null; seq: string | null }>`
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
              on conflict (endpoint_id, event_id) do nothing
            ), last_event as (
              select txid, seq from next_events order by txid desc, seq desc limit 1
            )
            select (select count(*) from next_events)::text as events,
                   (select txid::text from last_event) as txid,
                   (select seq::text from last_event) as seq
          `.execute(trx)
        ).rows[0]
        if (fanned?.txid && fanned.seq) {
          await trx.updateTable('event_relay_position').set({ txid: fanned.txid, seq: fanned.seq }).execute()
        }
        const waiting = await trx
          .selectFrom('webhook_deliveries')
          .select('id')
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
          ids.map((id) => ({ delivery_id: id })),
        )
        if (ids.length > 0) {
          await trx.updateTable('webhook_deliveries').set({ queued_at: new Date() }).where('id', 'in', ids).execute()
        }
        return Number(fanned?.events ?? 0) + ids.length
      }),
  }
}

export class DeliveryFailedError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'DeliveryFailedError'
  }
}

/** One attempt to deliver an event to an endpoint; a failure is thrown so that the queue retries it. */
export function deliveryJob(db: Kysely<DB>, settings: DeliverySettings): Job<{ delivery_id: string }> {
  return {
    name: DELIVER_WEBHOOK,
    options: {
      retryLimit: settings.retryLimit,
      retryDelay: settings.retryDelaySeconds,
      retryBackoff: true,
      retryDelayMax: 6 * 60 * 60,
      expireInSeconds: settings.timeoutSeconds + 5,
    },
    async run({ delivery_id: deliveryId }, { retryCount, signal }) {
      const target = await db
        .selectFrom('webhook_deliveries as delivery')
        .innerJoin('webhook_endpoints as endpoint', 'endpoint.id', 'delivery.endpoint_id')
        .innerJoin('events as event', 'event.id', 'delivery.event_id')
        .select([
          'delivery.status',
          'endpoint.id as endpoint_id',
          'endpoint.url',
          'endpoint.enabled',
          'event.id',
          'event.type',
          'event.occurred_at',
          'event.case_id',
          'event.organisation_ids',
          'event.data',
        ])
        .where('delivery.id', '=', deliveryId)
        .executeTakeFirst()
      if (!target || !['pending', 'retrying'].includes(target.status)) return 'nothing to deliver'
      if (!target.enabled) {
        await db
          .updateTable('webhook_deliveries')
          .set({ status: 'cancelled', next_attempt_at: null, updated_at: new Date() })
          .where('id', '=', deliveryId)
          .execute()
        return 'cancelled: the endpoint is disabled'
      }
      const now = new Date()
      const secrets = (await secretsOf(db, [target.endpoint_id])).get(target.endpoint_id) ?? []
      const body = JSON.stringify(presentEvent(target))
      const headers = signedHeaders(
        secrets.map((secret) => secret.secret),
        target.id,
        body,
        now,
      )
      const started = performance.now()
      const answer = await post(new URL(target.url), body, headers, settings, signal)
      const durationMs = Math.round(performance.now() - started)

      const delivered = answer.status !== null && answer.status >= 200 && answer.status < 300
      const gone = answer.status === 410
      const retry = !delivered && !gone && retryCount < settings.retryLimit
      const status = delivered ? 'succeeded' : retry ? 'retrying' : 'failed'
      const nextAttemptAt = retry ? new Date(Date.now() + settings.retryDelaySeconds * 1000 * 2 ** retryCount) : null
      await db.transaction().execute(async (trx) => {
        await trx
          .insertInto('webhook_attempts')
          .values({ delivery_id: deliveryId, status_code: answer.status, error: answer.error, duration_ms: durationMs })
          .execute()
        await trx
          .updateTable('webhook_deliveries')
          .set({ status, next_attempt_at: nextAttemptAt, updated_at: new Date() })
          .where('id', '=', deliveryId)
          .execute()
        if (delivered) {
          await trx
            .updateTable('webhook_endpoints')
            .set({ failed_deliveries: 0 })
            .where('id', '=', target.endpoint_id)
            .execute()
        } else if (gone) {
          await disable(trx, target.endpoint_id, 'gone')
        } else if (!retry) {
          const endpoint = await trx
            .updateTable('webhook_endpoints')
            .set({ failed_deliveries: sql`failed_deliveries + 1` })
            .where('id', '=', target.endpoint_id)
            .returning('failed_deliveries')
            .executeTakeFirstOrThrow()
          if (endpoint.failed_deliveries >= settings.disableAfterFailedDeliveries) {
            await disable(trx, target.endpoint_id, 'persistent_failure')
          }
        }
      })
      if (retry) throw new DeliveryFailedError(answer.error ?? `the endpoint answered ${answer.status}`)
      return status
    },
  }
}

async function disable(trx: Kysely<DB>, endpointId: string, reason: 'gone' | 'persistent_failure') {
  await trx
    .updateTable('webhook_endpoints')
    .set({ enabled: false, disabled_reason: reason, version: sql`version + 1`, updated_at: new Date() })
    .where('id', '=', endpointId)
    .where('enabled', '=', true)
    .execute()
}

interface Answer {
  status: number | null
  error: string | null
}

/** POSTs the body and reads only the status: the endpoint's answer is never stored or followed. */
function post(
  url: URL,
  body: string,
  headers: Record<string, string>,
  settings: DeliverySettings,
  stop: AbortSignal,
): Promise<Answer> {
  const refused = unsafeTargetReason(url, settings.allowPrivateTargets)
  if (refused) return Promise.resolve({ status: null, error: refused })
  const client = url.protocol === 'https:' ? https : http
  const signal = AbortSignal.any([stop, AbortSignal.timeout(settings.timeoutSeconds * 1000)])
  return new Promise((resolve) => {
    const request = client.request(
      url,
      {
        method: 'POST',
        headers: {
          ...headers,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'user-agent': 'trm-api-webhooks',
        },
        signal,
        ...(settings.allowPrivateTargets ? {} : { lookup: publicLookup }),
      },
      (response) => {
        response.resume()
        response.on('end', () => resolve({ status: response.statusCode ?? null, error: null }))
        response.on('error', (error) => resolve({ status: response.statusCode ?? null, error: error.message }))
      },
    )
    request.on('error', (error) =>
      resolve({
        status: null,
        error: signal.aborted ? `no answer within ${settings.timeoutSeconds} seconds` : error.message,
      }),
    )
    request.end(body)
  })
}
