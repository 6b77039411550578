import { randomUUID } from 'node:crypto'
import type { Kysely, Transaction } from 'kysely'
import type { components } from '../../openapi/dist/types.js'
import { recordAudit, recordSystemAudit } from '../audit/records.js'
import type { Clock } from '../clock.js'
import type { Config } from '../config.js'
import { forgetCaseKey } from '../crypto/case-keys.js'
import { readShreddedKeys, recordShreddedKey, type ShreddedKey } from '../crypto/shredded-keys.js'
import type { Case, DataCategory, DB, ErasureReason } from '../db/schema.js'
import { dataCategories } from '../disclosure/consent-scope.js'
import { recordEvent } from '../events/outbox.js'
import { requireRole } from '../http/authentication.js'
import type { Handlers } from '../http/contract.js'
import { runMutation } from '../http/mutation.js'
import { notFound, ProblemError } from '../http/problem.js'
import type { Job } from '../jobs/queue.js'
import { addDuration } from '../sops/deadline.js'
import type { SopRegistry } from '../sops/registry.js'
import { caseOfParty } from './access.js'
import { WITHDRAWAL_ACKNOWLEDGEMENT_DEADLINE } from './consent-withdrawal.js'
import { findCase, partyIds } from './queries.js'

type Schemas = components['schemas']

export interface Erasure {
  reason: ErasureReason
  /** Who erased it; null for the retention job. */
  principalId: string | null
  at: Date
}

/**
 * Erases a locked case by crypto-shredding: its data key is put on the list of shredded keys
 * outside the database (on disk before the change commits), then destroyed; every organisation
 * that may hold copies gets a notice to acknowledge, as after a withdrawal. The audit trail stays
 * as it was. Answers the organisations notified.
 */
export async function eraseCase(
  trx: Transaction<DB>,
  found: Case,
  erasure: Erasure,
  shreddedKeysFile: string,
): Promise<string[]> {
  if (found.erased_at !== null) return []
  const holders = await holdersOf(trx, found)
  if (found.data_key_id !== null) {
    await recordShreddedKey(shreddedKeysFile, {
      data_key_id: found.data_key_id,
      case_id: found.id,
      erased_at: erasure.at.toISOString(),
      erased_by_principal_id: erasure.principalId,
      reason: erasure.reason,
    })
  }
  await shredCase(trx, found.id, erasure)
  const acknowledgeBy = addDuration(erasure.at, WITHDRAWAL_ACKNOWLEDGEMENT_DEADLINE)
  const data = { case_reference: found.reference, erasure_reason: erasure.reason }
  for (const [organisationId, categories] of holders) {
    const notice = await trx
      .insertInto('withdrawal_notices')
      .values({
        consent_id: null,
        case_id: found.id,
        cause: 'erased',
        organisation_id: organisationId,
        categories,
        withdrawn_at: erasure.at,
        acknowledge_by: acknowledgeBy,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    await recordEvent(
      trx,
      {
        type: 'case.erased',
        caseId: found.id,
        data: { ...data, notice_id: notice.id, categories, acknowledge_by: acknowledgeBy.toISOString() },
      },
      [organisationId],
    )
  }
  const others = [found.sending_organisation_id, ...(await partyIds(trx, found.id))].filter(
    (id, index, all) => !holders.has(id) && all.indexOf(id) === index,
  )
  if (others.length > 0) await recordEvent(trx, { type: 'case.erased', caseId: found.id, data }, others)
  return [...holders.keys()]
}

/**
 * Destroys the case's data key, the free text of its consents and the bytes of its attachments, and keeps the tombstone: the
 * row with its id, reference, dates and the erasure. Safe to apply again, as a restored backup needs.
 */
async function shredCase(trx: Transaction<DB>, caseId: string, erasure: Erasure): Promise<void> {
  const shredded = await trx
    .updateTable('cases')
    .set((eb) => ({
      data_key: null,
      sections: JSON.stringify({}),
      erased_at: erasure.at,
      erased_by_principal_id: erasure.principalId,
      erasure_reason: erasure.reason,
      step_due_at: null,
      version: eb('version', '+', 1),
      updated_at: erasure.at,
    }))
    .where('id', '=', caseId)
    .where('erased_at', 'is', null)
    .returning('data_key_id')
    .executeTakeFirst()
  if (!shredded) return
  forgetCaseKey(shredded.data_key_id)
  await trx
    .updateTable('consents')
    .set({ child_views: null, withdrawal_reason: null, guardian: null, interpreter: JSON.stringify({}) })
    .where('case_id', '=', caseId)
    .execute()
  // Without the key an attachment's bytes are noise; they go, and the space with them.
  await trx.updateTable('case_attachments').set({ content: null }).where('case_id', '=', caseId).execute()
}

/**
 * Every organisation but the sending partner that may hold data of the case: the parties, and the
 * recipients of its packets, with the categories the packets carried to each.
 */
async function holdersOf(trx: Transaction<DB>, found: Case): Promise<Map<string, DataCategory[]>> {
  const held = new Map<string, Set<DataCategory>>()
  for (const party of await partyIds(trx, found.id)) {
    if (party !== found.sending_organisation_id) held.set(party, new Set())
  }
  const packets = await trx
    .selectFrom('packets')
    .select(['recipient_organisation_id', 'included_categories'])
    .where('case_id', '=', found.id)
    .execute()
  for (const packet of packets) {
    const set = held.get(packet.recipient_organisation_id) ?? new Set()
    for (const category of packet.included_categories) set.add(category)
    held.set(packet.recipient_organisation_id, set)
  }
  return new Map(
    [...held].map(([organisationId, categories]) => [
      organisationId,
      dataCategories.filter((category) => categories.has(category)),
    ]),
  )
}

/**
 * Destroys again every key on the list of shredded keys that the database still holds, as after
 * a restore from a backup taken before the erasure. Answers how many cases it erased again.
 */
export async function reapplyShreddedKeys(db: Kysely<DB>, shreddedKeysFile: string): Promise<number> {
  const entries = await readShreddedKeys(shreddedKeysFile)
  if (entries.length === 0) return 0
  const byKey = new Map<string, ShreddedKey>(entries.map((entry) => [entry.data_key_id, entry]))
  const alive = await db
    .selectFrom('cases')
    .select(['id', 'data_key_id'])
    .where('data_key_id', 'in', [...byKey.keys()])
    .where('erased_at', 'is', null)
    .execute()
  for (const row of alive) {
    const entry = row.data_key_id ? byKey.get(row.data_key_id) : undefined
    if (!entry) continue
    await db.transaction().execute((trx) =>
      shredCase(trx, row.id, {
        reason: entry.reason,
        principalId: entry.erased_by_principal_id,
        at: new Date(entry.erased_at),
      }),
    )
  }
  return alive.length
}

export function erasureHandlers({
  db,
  clock,
  shreddedKeysFile,
}: {
  db: Kysely<DB>
  clock: Clock
  shreddedKeysFile: string
}) {
  return {
    async eraseCase(request, reply) {
      const caller = requireRole(request, 'dpo')
      return runMutation(
        db,
        request,
        reply,
        async (trx) => {
          const found = await caseOfParty(trx, caller, request.params.caseId, { lock: true, erased: 'allow' })
          if (found.sending_organisation_id !== caller.organisation.id) {
            throw new ProblemError(
              403,
              'Only the data protection officer of the organisation that opened the case may erase it.',
              {
                code: 'not-controller',
              },
            )
          }
          if (found.erased_at === null) {
            const notified = await eraseCase(
              trx,
              found,
              { reason: request.body.reason, principalId: caller.principal.id, at: clock.now() },
              shreddedKeysFile,
            )
            await recordAudit(trx, request, {
              caseId: found.id,
              resourceType: 'case',
              resourceId: found.id,
              details: { erasure_reason: request.body.reason, notified },
            })
          }
          return { status: 200, resourceId: found.id }
        },
        async (trx, caseId) => {
          const found = await findCase(trx, caseId)
          if (!found) throw notFound('case', caseId)
          return { body: await presentErasure(trx, found) }
        },
      )
    },
  } satisfies Partial<Handlers>
}

async function presentErasure(trx: Transaction<DB>, found: Case): Promise<Schemas['CaseErasure']> {
  if (found.erased_at === null || found.erasure_reason === null) throw new Error('the case is not erased')
  const notices = await trx
    .selectFrom('withdrawal_notices')
    .select('organisation_id')
    .where('case_id', '=', found.id)
    .where('cause', '=', 'erased')
    .orderBy('seq')
    .execute()
  return {
    case_id: found.id,
    reference: found.reference,
    created_at: found.created_at.toISOString(),
    erased_at: found.erased_at.toISOString(),
    erased_by_principal_id: found.erased_by_principal_id,
    reason: found.erasure_reason,
    notified_organisation_ids: notices.map((notice) => notice.organisation_id),
  }
}

const RETENTION_BATCH = 100
const RETENTION_ACTION = 'erase-expired-cases'
/** The principal the retention job acts as, one per organisation; its name is also in migration 0015's index. */
export const RETENTION_PRINCIPAL_NAME = 'Retention schedule'

/**
 * The system principal of an organisation that its retention schedule acts as: made on first use,
 * with the least role there is and no API key, so that the audit can name who erased.
 */
async function retentionPrincipal(trx: Transaction<DB>, organisationId: string): Promise<string> {
  const find = () =>
    trx
      .selectFrom('principals')
      .select('id')
      .where('organisation_id', '=', organisationId)
      .where('kind', '=', 'system')
      .where('name', '=', RETENTION_PRINCIPAL_NAME)
      .executeTakeFirst()
  const found = await find()
  if (found) return found.id
  await trx
    .insertInto('principals')
    .values({ organisation_id: organisationId, name: RETENTION_PRINCIPAL_NAME, kind: 'system', roles: ['auditor'] })
    .onConflict((conflict) => conflict.doNothing())
    .execute()
  const made = await find()
  if (!made) throw new Error('the retention principal could not be made')
  return made.id
}

/**
 * Erases every closed case whose retention period has passed since it entered its final step.
 * One transaction per case, the case locked, so that two workers never erase one twice.
 */
export async function eraseExpiredCases(
  db: Kysely<DB>,
  sops: SopRegistry,
  retention: Config['retention'],
  shreddedKeysFile: string,
  now: Date,
): Promise<number> {
  const closed = await db
    .selectFrom('cases')
    .select(['id', 'sop_id', 'sop_version', 'step', 'step_entered_at'])
    .where('erased_at', 'is', null)
    .where('step_due_at', 'is', null)
    .orderBy('step_entered_at')
    .limit(RETENTION_BATCH)
    .execute()
  let erased = 0
  const runId = `job:${RETENTION_ACTION}:${randomUUID()}`
  for (const candidate of closed) {
    if (!sops.find(candidate.sop_id, candidate.sop_version)?.steps[candidate.step]?.terminal) continue
    const period = retention.bySop[candidate.sop_id] ?? retention.otherwise
    if (addDuration(candidate.step_entered_at, period) > now) continue
    const done = await db.transaction().execute(async (trx) => {
      const found = await findCase(trx, candidate.id, { lock: true })
      if (!found || found.erased_at !== null || found.step !== candidate.step) return false
      const notified = await eraseCase(
        trx,
        found,
        { reason: 'end_of_retention', principalId: null, at: now },
        shreddedKeysFile,
      )
      // The controller's retention schedule erased it: the audit names the service acting for the sending partner.
      await recordSystemAudit(
        trx,
        {
          action: RETENTION_ACTION,
          principalId: await retentionPrincipal(trx, found.sending_organisation_id),
          organisationId: found.sending_organisation_id,
          runId,
        },
        {
          caseId: found.id,
          resourceType: 'case',
          resourceId: found.id,
          details: {
            erasure_reason: 'end_of_retention',
            retention_period: period,
            closed_at: candidate.step_entered_at.toISOString(),
            notified,
          },
        },
      )
      return true
    })
    if (done) erased += 1
  }
  return erased
}

export function retentionJob(
  db: Kysely<DB>,
  sops: SopRegistry,
  clock: Clock,
  retention: Config['retention'],
  shreddedKeysFile: string,
): Job {
  return {
    name: 'erase-expired-cases',
    cron: '17 * * * *',
    run: () => eraseExpiredCases(db, sops, retention, shreddedKeysFile, clock.now()),
  }
}
