import type { Kysely } from 'kysely'
import type { Clock } from '../clock.js'
import type { DB } from '../db/schema.js'
import type { Job } from '../jobs/queue.js'
import type { SopRegistry } from '../sops/registry.js'
import { counterpartOf } from './procedure.js'

const BATCH = 500

/**
 * Raises one escalation for every case still in a step past that step's deadline, naming the
 * organisation that had to act. Safe to run often and on several workers: an escalation is
 * unique per case, step and deadline.
 */
export async function raiseEscalations(db: Kysely<DB>, sops: SopRegistry, now: Date): Promise<number> {
  const overdue = await db
    .selectFrom('cases')
    .selectAll()
    .where('step_due_at', '<', now)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('escalations')
            .select('escalations.id')
            .whereRef('escalations.case_id', '=', 'cases.id')
            .whereRef('escalations.step', '=', 'cases.step')
            .whereRef('escalations.due_at', '=', 'cases.step_due_at'),
        ),
      ),
    )
    .orderBy('step_due_at')
    .limit(BATCH)
    .execute()
  let raised = 0
  for (const found of overdue) {
    if (found.step_due_at === null) continue
    const responsible = sops.find(found.sop_id, found.sop_version)?.steps[found.step]?.responsible
    const organisationId =
      responsible === 'sending'
        ? found.sending_organisation_id
        : responsible === 'receiving'
          ? ((await counterpartOf(db, found)) ?? found.lead_organisation_id)
          : found.lead_organisation_id
    const inserted = await db
      .insertInto('escalations')
      .values({
        case_id: found.id,
        step: found.step,
        due_at: found.step_due_at,
        responsible_organisation_id: organisationId,
        raised_at: now,
      })
      .onConflict((conflict) => conflict.columns(['case_id', 'step', 'due_at']).doNothing())
      .executeTakeFirst()
    raised += Number(inserted.numInsertedOrUpdatedRows ?? 0)
  }
  return raised
}

export function deadlineJob(db: Kysely<DB>, sops: SopRegistry, clock: Clock): Job {
  return { name: 'check-deadlines', cron: '* * * * *', run: () => raiseEscalations(db, sops, clock.now()) }
}
