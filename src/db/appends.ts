import { type Kysely, type OperationNodeSource, type RawBuilder, sql, type Transaction } from 'kysely'
import type { DB, NewAuditRecord, NewCaseTransition } from './schema.js'

/** An event as the outbox writes it, with the organisations it is for. */
export interface AppendedEvent {
  type: string
  caseId: string | null
  audience: string[]
  data: string
}

/** Rows a change only appends (events, audit records, timeline entries), kept until its transaction ends. */
interface Appends {
  events: AppendedEvent[]
  audit: NewAuditRecord[]
  transitions: NewCaseTransition[]
  /** The last change of a case, put off to the same statement: by case id. */
  caseChanges: Map<string, OperationNodeSource>
  /** Other writes put off to the same statement (`writeAtEnd`), in the order they were made. */
  writes: OperationNodeSource[]
}

const pending = new WeakMap<Transaction<DB>, Appends>()

/**
 * From now on, what `trx` appends is written in one statement at its end (`flushAppends`) rather
 * than one statement a row. Only rows that nothing in the transaction reads back are appended so:
 * they are invisible until then.
 */
export function bufferAppends(trx: Transaction<DB>): void {
  pending.set(trx, { events: [], audit: [], transitions: [], caseChanges: new Map(), writes: [] })
}

/** Where `db`'s appended rows go, if its transaction buffers them. */
export function appendsOf(db: Kysely<DB> | Transaction<DB>): Appends | undefined {
  return db.isTransaction ? pending.get(db as Transaction<DB>) : undefined
}

/**
 * Writes what the transaction appended, in one statement: the change of the case and the other
 * writes it put off, the events (in the order they were recorded, so their places in the feed
 * follow it) and their audiences, the audit records and the timeline entries, each kind in one
 * multi-row insert.
 */
export async function flushAppends(trx: Transaction<DB>): Promise<void> {
  const appends = pending.get(trx)
  if (!appends) return
  bufferAppends(trx)
  const { caseChanges, writes } = appends
  const parts: RawBuilder<unknown>[] = [
    ...[...caseChanges.values()].map((change, index) => sql`changed_case_${sql.raw(String(index))} as (${change})`),
    ...writes.map((write, index) => sql`put_off_${sql.raw(String(index))} as (${write})`),
    ...appendedParts(appends),
  ]
  if (parts.length === 0) return
  await sql`with ${sql.join(parts)} select 1`.execute(trx)
}

/**
 * One change of one row and the rows it appends, in a single statement outside any transaction:
 * the events and audit records are written only if `change` (an update that returns the row)
 * changed a row. For a change whose `where` is its whole check, with nothing to lock and read first.
 */
export async function changeOnce<R>(
  db: Kysely<DB>,
  change: OperationNodeSource & { execute(): Promise<R[]> },
  appended: { events?: AppendedEvent[]; audit?: NewAuditRecord[] },
): Promise<R | undefined> {
  const parts = appendedParts(
    { events: appended.events ?? [], audit: appended.audit ?? [], transitions: [] },
    'changed',
  )
  const { rows } =
    await sql<R>`with ${sql.join([sql`changed as (${change})`, ...parts])} select * from changed`.execute(db)
  return rows[0]
}

/** The inserts of appended rows, as parts of one `with`; with `onlyIf`, written only if that part returned a row. */
function appendedParts(
  { events, audit, transitions }: Pick<Appends, 'events' | 'audit' | 'transitions'>,
  onlyIf?: string,
): RawBuilder<unknown>[] {
  const rows = (values: RawBuilder<unknown>[]) =>
    onlyIf
      ? sql`select * from (values ${sql.join(values)}) as appended where exists (select from ${sql.raw(onlyIf)})`
      : sql`values ${sql.join(values)}`
  const parts: RawBuilder<unknown>[] = []
  if (events.length > 0) {
    parts.push(
      sql`appended_events as (
        insert into events (type, case_id, organisation_ids, data)
        ${rows(events.map((event) => sql`(${event.type}, ${event.caseId}::uuid, ${event.audience}::uuid[], ${event.data}::jsonb)`))}
        returning id, txid, seq, organisation_ids
      )`,
      sql`appended_audiences as (
        insert into event_audiences (organisation_id, txid, seq, event_id)
        select organisation_id, appended_events.txid, appended_events.seq, appended_events.id
        from appended_events, unnest(appended_events.organisation_ids) as organisation_id
      )`,
    )
  }
  if (audit.length > 0) {
    parts.push(sql`appended_audit as (
      insert into audit_records (action, principal_id, organisation_id, request_id, case_id, resource_type, resource_id, details)
      ${rows(
        audit.map(
          (row) =>
            sql`(${row.action}, ${row.principal_id}::uuid, ${row.organisation_id}::uuid, ${row.request_id}, ${row.case_id}::uuid, ${row.resource_type}, ${row.resource_id}::uuid, ${row.details}::jsonb)`,
        ),
      )}
    )`)
  }
  if (transitions.length > 0) {
    parts.push(sql`appended_transitions as (
      insert into case_transitions (case_id, action, from_step, to_step, at, principal_id, organisation_id, lead_organisation_id, note, reason, review_date)
      ${rows(
        transitions.map(
          (row) =>
            sql`(${row.case_id}::uuid, ${row.action}, ${row.from_step}, ${row.to_step}, ${row.at}::timestamptz, ${row.principal_id}::uuid, ${row.organisation_id}::uuid, ${row.lead_organisation_id}::uuid, ${row.note}, ${row.reason}, ${row.review_date}::date)`,
        ),
      )}
    )`)
  }
  return parts
}

/**
 * Makes a write (an insert or update of rows nothing later in the transaction reads back) at the
 * end of a buffering transaction, in its one statement; else at once.
 */
export async function writeAtEnd(
  trx: Transaction<DB>,
  write: OperationNodeSource & { execute(): Promise<unknown> },
): Promise<void> {
  const appends = appendsOf(trx)
  if (appends) {
    appends.writes.push(write)
    return
  }
  await write.execute()
}

/** Appends a timeline entry: at the end of a buffering transaction, else at once. */
export async function appendTransition(trx: Transaction<DB>, row: NewCaseTransition): Promise<void> {
  const appends = appendsOf(trx)
  if (appends) {
    appends.transitions.push(row)
    return
  }
  await trx.insertInto('case_transitions').values(row).execute()
}
