import type { Transaction } from 'kysely'
import type { components } from '../../openapi/dist/types.js'
import type { Case, CaseObligation, DB } from '../db/schema.js'
import type { CaseDisclosure } from '../disclosure/policy.js'
import { addDuration } from '../sops/deadline.js'
import type { ScheduledRecordKind, Side, Step } from '../sops/definition.js'

type Schemas = components['schemas']

/**
 * Takes on the obligations a step schedules (monitoring visits, a re-assessment), due from the
 * moment the case entered it and owed by the organisation of their side. Only the first entry
 * schedules: a step entered again after a hold finds its obligations already there.
 */
export async function scheduleObligations(
  trx: Transaction<DB>,
  changed: Case,
  stepName: string,
  step: Step,
  counterpartId: string | null,
  now: Date,
): Promise<void> {
  if (!step.schedule) return
  const organisationOf = (side: Side | 'lead') =>
    side === 'sending'
      ? changed.sending_organisation_id
      : side === 'receiving'
        ? (counterpartId ?? changed.lead_organisation_id)
        : changed.lead_organisation_id
  await trx
    .insertInto('case_obligations')
    .values(
      step.schedule.map((item) => ({
        case_id: changed.id,
        kind: item.record,
        schedule_key: `${stepName}:${item.record}:${item.after}`,
        hearing_id: null,
        due_at: addDuration(now, item.after),
        responsible_organisation_id: organisationOf(item.responsible ?? step.responsible ?? 'lead'),
        created_at: now,
      })),
    )
    .onConflict((conflict) => conflict.columns(['case_id', 'schedule_key']).doNothing())
    .execute()
}

/** A record of a scheduled kind fulfils the earliest obligation of that kind still open, if any. */
export async function fulfilWithRecord(
  trx: Transaction<DB>,
  caseId: string,
  kind: ScheduledRecordKind,
  recordId: string,
  now: Date,
): Promise<void> {
  await trx
    .updateTable('case_obligations')
    .set({ fulfilled_at: now, fulfilled_by_record_id: recordId })
    .where('id', '=', (eb) =>
      eb
        .selectFrom('case_obligations')
        .select('id')
        .where('case_id', '=', caseId)
        .where('kind', '=', kind)
        .where('fulfilled_at', 'is', null)
        .orderBy('due_at')
        .orderBy('id')
        .limit(1),
    )
    .execute()
}

/**
 * What is due when, as the viewer may see it: a hearing tells of proceedings, so it shows only to
 * an organisation that may read proceedings, or to the one that owes it (without naming the
 * proceeding, unless it may read it).
 */
export function presentSchedule(
  rows: readonly (CaseObligation & { proceeding_id: string | null })[],
  disclosure: CaseDisclosure,
  organisationId: string,
  /** Whether the case is still open: a case at a final step owes nothing more. */
  open: boolean,
  now: Date,
): Schemas['ScheduledObligation'][] {
  const proceedings = disclosure.readable('proceedings')
  return rows
    .filter((row) => row.kind !== 'hearing' || proceedings || row.responsible_organisation_id === organisationId)
    .map((row) => ({
      id: row.id,
      kind: row.kind,
      due_at: row.due_at.toISOString(),
      responsible_organisation_id: row.responsible_organisation_id,
      status: row.fulfilled_at !== null ? 'fulfilled' : !open ? 'cancelled' : row.due_at < now ? 'overdue' : 'due',
      fulfilled_at: row.fulfilled_at?.toISOString() ?? null,
      record_id: row.fulfilled_by_record_id,
      proceeding_id: proceedings ? row.proceeding_id : null,
      hearing_id: proceedings ? row.hearing_id : null,
    }))
}
