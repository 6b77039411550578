import type { Kysely, Transaction } from 'kysely'
import type { Clock } from '../clock.js'
import type { Case, DB, NewEscalation } from '../db/schema.js'
import { recordEvent } from '../events/outbox.js'
import type { Job } from '../jobs/queue.js'
import type { SopRegistry } from '../sops/registry.js'
import { noticeHolders } from './consent-withdrawal.js'
import { counterpartOf, responsibleOrganisation } from './procedure.js'
import { consentsOfCase, findCase } from './queries.js'

const BATCH = 500

/**
 * Raises one escalation for every missed deadline: a case still in a step past that step's
 * deadline, naming the organisation that had to act; an obligation of an open case's schedule (a
 * monitoring visit, the re-assessment, a hearing) not fulfilled by its time, naming the
 * organisation that owed it; and a consent withdrawal that a recipient did not acknowledge in
 * time. Safe to run often and on several workers: an escalation is unique per case, step and
 * deadline, per obligation, and per withdrawal notice.
 */
export async function raiseEscalations(db: Kysely<DB>, sops: SopRegistry, now: Date): Promise<number> {
  const overdueCases = await db
    .selectFrom('cases')
    .selectAll()
    .where('step_due_at', '<', now)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('escalations')
            .select('escalations.id')
            .where('escalations.kind', '=', 'step_deadline')
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
  for (const found of overdueCases) {
    if (found.step_due_at === null) continue
    const dueAt = found.step_due_at
    const responsible = sops.find(found.sop_id, found.sop_version)?.steps[found.step]?.responsible
    const organisationId = responsibleOrganisation(responsible, {
      sendingId: found.sending_organisation_id,
      counterpartId: responsible === 'receiving' ? await counterpartOf(db, found) : null,
      leadId: found.lead_organisation_id,
    })
    const escalation = {
      kind: 'step_deadline',
      step: found.step,
      due_at: dueAt,
      withdrawal_notice_id: null,
      obligation_id: null,
    } as const
    if (await escalate(db, found, escalation, organisationId, now)) raised += 1
  }

  const missedObligations = await db
    .selectFrom('case_obligations')
    .innerJoin('cases', 'cases.id', 'case_obligations.case_id')
    .selectAll('cases')
    .select([
      'case_obligations.id as obligation_id',
      'case_obligations.kind as obligation_kind',
      'case_obligations.due_at as obligation_due_at',
      'case_obligations.responsible_organisation_id as owed_by',
    ])
    .where('case_obligations.fulfilled_at', 'is', null)
    .where('case_obligations.due_at', '<', now)
    // A closed case owes nothing more: a final step has no deadline.
    .where('cases.step_due_at', 'is not', null)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('escalations')
            .select('escalations.id')
            .whereRef('escalations.obligation_id', '=', 'case_obligations.id'),
        ),
      ),
    )
    .orderBy('case_obligations.due_at')
    .limit(BATCH)
    .execute()
  for (const { obligation_id, obligation_kind, obligation_due_at, owed_by, ...found } of missedObligations) {
    const escalation = {
      kind: obligation_kind,
      step: found.step,
      due_at: obligation_due_at,
      withdrawal_notice_id: null,
      obligation_id,
    }
    if (await escalate(db, found, escalation, owed_by, now)) raised += 1
  }

  const overdueNotices = await db
    .selectFrom('withdrawal_notices')
    .innerJoin('cases', 'cases.id', 'withdrawal_notices.case_id')
    .selectAll('cases')
    .select([
      'withdrawal_notices.id as notice_id',
      'withdrawal_notices.organisation_id as holder_id',
      'withdrawal_notices.acknowledge_by',
    ])
    .where('withdrawal_notices.acknowledged_at', 'is', null)
    .where('withdrawal_notices.acknowledge_by', '<', now)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('escalations')
            .select('escalations.id')
            .whereRef('escalations.withdrawal_notice_id', '=', 'withdrawal_notices.id'),
        ),
      ),
    )
    .orderBy('withdrawal_notices.acknowledge_by')
    .limit(BATCH)
    .execute()
  for (const { notice_id, holder_id, acknowledge_by, ...found } of overdueNotices) {
    const escalation = {
      kind: 'withdrawal_acknowledgement',
      step: found.step,
      due_at: acknowledge_by,
      withdrawal_notice_id: notice_id,
      obligation_id: null,
    } as const
    if (await escalate(db, found, escalation, holder_id, now)) raised += 1
  }
  return raised
}

/** Raises the escalation and its event in one transaction, unless a worker already raised it. */
async function escalate(
  db: Kysely<DB>,
  found: Pick<Case, 'id' | 'reference' | 'sending_organisation_id' | 'receiving_organisation_id'>,
  escalation: Pick<NewEscalation, 'kind' | 'step' | 'due_at' | 'withdrawal_notice_id' | 'obligation_id'>,
  responsibleId: string,
  now: Date,
): Promise<boolean> {
  return db.transaction().execute(async (trx: Transaction<DB>) => {
    const inserted = await trx
      .insertInto('escalations')
      .values({ ...escalation, case_id: found.id, responsible_organisation_id: responsibleId, raised_at: now })
      .onConflict((conflict) =>
        escalation.kind === 'step_deadline'
          ? conflict.columns(['case_id', 'step', 'due_at']).where('kind', '=', 'step_deadline').doNothing()
          : escalation.obligation_id
            ? conflict.column('obligation_id').doNothing()
            : conflict.column('withdrawal_notice_id').doNothing(),
      )
      .returning('id')
      .executeTakeFirst()
    if (!inserted) return false
    await recordEvent(
      trx,
      {
        type: 'escalation.raised',
        caseId: found.id,
        data: {
          case_reference: found.reference,
          escalation_id: inserted.id,
          escalation_kind: escalation.kind,
          step: escalation.step,
          due_at: new Date(escalation.due_at).toISOString(),
          responsible_organisation_id: responsibleId,
          ...(escalation.withdrawal_notice_id ? { notice_id: escalation.withdrawal_notice_id } : {}),
          ...(escalation.obligation_id ? { obligation_id: escalation.obligation_id } : {}),
        },
      },
      [
        responsibleId,
        found.sending_organisation_id,
        ...(found.receiving_organisation_id ? [found.receiving_organisation_id] : []),
      ],
    )
    return true
  })
}

/**
 * Tells the holders of data under every consent that expired to delete it, as a withdrawal does:
 * one transaction per consent, with the case locked, so that two workers never notice one twice.
 */
export async function noticeExpiredConsents(db: Kysely<DB>, now: Date): Promise<number> {
  const expired = await db
    .selectFrom('consents')
    .select(['id', 'case_id'])
    .where('expires_at', '<=', now)
    .where('expiry_noticed_at', 'is', null)
    .where('withdrawn_at', 'is', null)
    .orderBy('expires_at')
    .limit(BATCH)
    .execute()
  let noticed = 0
  for (const { id, case_id } of expired) {
    const done = await db.transaction().execute(async (trx) => {
      const found = await findCase(trx, case_id, { lock: true })
      const consent = (await consentsOfCase(trx, case_id)).find((c) => c.id === id)
      if (!found || !consent || consent.expiry_noticed_at !== null || consent.withdrawn_at !== null) return false
      await trx.updateTable('consents').set({ expiry_noticed_at: now }).where('id', '=', id).execute()
      await noticeHolders(trx, found, consent, 'expired', now)
      return true
    })
    if (done) noticed += 1
  }
  return noticed
}

export function deadlineJob(db: Kysely<DB>, sops: SopRegistry, clock: Clock): Job {
  return {
    name: 'check-deadlines',
    cron: '* * * * *',
    run: async () => {
      const now = clock.now()
      return (await noticeExpiredConsents(db, now)) + (await raiseEscalations(db, sops, now))
    },
  }
}
