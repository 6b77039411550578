import { type Kysely, sql, type Transaction } from 'kysely'
import type { components } from '../../openapi/dist/types.js'
import { type AppendedEvent, appendsOf } from '../db/appends.js'
import { type DB, json } from '../db/schema.js'

type Schemas = components['schemas']
export type EventType = Schemas['EventType']
export type EventData = Schemas['EventData']

export interface NewEvent {
  type: EventType
  /** Null for an event that concerns no case (`audit.checkpoint`). */
  caseId: string | null
  data: EventData
}

/** A place in the order of events: the transaction that wrote an event, and the event's place in it. */
export interface FeedPosition {
  txid: string
  seq: string
}

export const feedStart: FeedPosition = { txid: '0', seq: '0' }

/**
 * Writes an event for the organisations it concerns, in the transaction of the change that caused
 * it (a transactional outbox): the event exists if and only if the change committed.
 */
export async function recordEvent(trx: Transaction<DB>, event: NewEvent, organisationIds: Iterable<string>) {
  const audience = [...new Set(organisationIds)]
  const appends = appendsOf(trx)
  if (appends) {
    appends.events.push(appendedEvent(event, audience))
    return
  }
  await sql`
    with event as (
      insert into events (type, case_id, organisation_ids, data)
      values (${event.type}, ${event.caseId}, ${audience}::uuid[], ${json(event.data)})
      returning id, txid, seq
    )
    insert into event_audiences (organisation_id, txid, seq, event_id)
    select organisation_id, event.txid, event.seq, event.id
    from event, unnest(${audience}::uuid[]) as organisation_id
  `.execute(trx)
}

/** An event as the one statement of a change writes it (`flushAppends`, `changeOnce`). */
export function appendedEvent(event: NewEvent, organisationIds: Iterable<string>): AppendedEvent {
  return { type: event.type, caseId: event.caseId, audience: [...new Set(organisationIds)], data: json(event.data) }
}

export interface FeedEvent {
  id: string
  type: EventType
  occurred_at: Date
  case_id: string | null
  organisation_ids: string[]
  data: EventData
  txid: string
  seq: string
}

/**
 * The organisation's events after a position, in order. Only events of transactions older than
 * every transaction still running are visible (the snapshot's xmin), so an event that commits
 * later can never have a place before one already read: the feed has no gaps.
 */
export async function eventsAfter(
  db: Kysely<DB> | Transaction<DB>,
  organisationId: string,
  after: FeedPosition,
  limit: number,
): Promise<FeedEvent[]> {
  const result = await sql<FeedEvent>`
    select events.id, events.type, events.occurred_at, events.case_id, events.organisation_ids, events.data,
           audience.txid::text as txid, audience.seq::text as seq
    from event_audiences as audience
    join events on events.id = audience.event_id
    where audience.organisation_id = ${organisationId}
      and (audience.txid, audience.seq) > (${after.txid}::xid8, ${after.seq}::bigint)
      and audience.txid < pg_snapshot_xmin(pg_current_snapshot())
    order by audience.txid, audience.seq
    limit ${limit}
  `.execute(db)
  return result.rows
}

export function presentEvent(
  row: Pick<FeedEvent, 'id' | 'type' | 'occurred_at' | 'case_id' | 'organisation_ids' | 'data'>,
): Schemas['Event'] {
  return {
    id: row.id,
    type: row.type,
    occurred_at: new Date(row.occurred_at).toISOString(),
    case_id: row.case_id,
    organisation_ids: row.organisation_ids,
    data: row.data,
  }
}
