import { type Kysely, sql, type Transaction } from 'kysely'
import type { components } from '../../openapi/dist/types.js'
import { recordAudit } from '../audit/records.js'
import type { Clock } from '../clock.js'
import { type Case, type CaseRecord, type DB, json } from '../db/schema.js'
import { recordEvent } from '../events/outbox.js'
import { actingRoles, type Caller, readingRoles, requireRole } from '../http/authentication.js'
import type { Handlers } from '../http/contract.js'
import { requiredIfMatch, runMutation, staleVersion } from '../http/mutation.js'
import { decodeCursor, toPage } from '../http/pagination.js'
import { notFound, ProblemError } from '../http/problem.js'
import { addDuration } from '../sops/deadline.js'
import type { SopDefinition } from '../sops/definition.js'
import { mermaidDiagram } from '../sops/diagram.js'
import { evaluate, targetStep } from '../sops/engine.js'
import type { SopRegistry } from '../sops/registry.js'
import { caseOfParty } from './access.js'
import { withdrawConsents } from './consent-withdrawal.js'
import { renderCase } from './handlers.js'
import { gatherFacts, sideOf } from './procedure.js'
import * as queries from './queries.js'

type Schemas = components['schemas']

export interface ProcedureDependencies {
  db: Kysely<DB>
  sops: SopRegistry
  clock: Clock
}

export function procedureHandlers({ db, sops, clock }: ProcedureDependencies) {
  function procedureOf(found: Case): SopDefinition {
    const definition = sops.find(found.sop_id, found.sop_version)
    if (!definition)
      throw new Error(`case ${found.id} follows ${found.sop_id}@${found.sop_version}, which is not loaded`)
    return definition
  }

  async function nextActions(trx: Transaction<DB>, found: Case, caller: Caller) {
    const now = clock.now()
    const definition = procedureOf(found)
    const facts = await gatherFacts(trx, found, now)
    const actor = { side: sideOf(found, facts, caller.organisation.id), roles: caller.principal.roles }
    const responsible = definition.steps[found.step]?.responsible
    return {
      definition,
      facts,
      body: {
        case_id: found.id,
        sop: { id: found.sop_id, version: found.sop_version },
        step: found.step,
        responsible_side: responsible === 'lead' ? facts.leadSide : (responsible ?? null),
        lead_organisation_id: found.lead_organisation_id,
        step_due_at: found.step_due_at?.toISOString() ?? null,
        overdue: found.step_due_at !== null && found.step_due_at < now,
        ...evaluate(definition, facts, actor),
      } satisfies Schemas['NextActions'],
    }
  }

  return {
    async listSops(request) {
      requireRole(request, ...readingRoles, 'admin')
      return {
        items: sops.all().map(({ id, version, title, applies_to }) => ({ id, version, title, applies_to })),
      }
    },

    async getSop(request) {
      requireRole(request, ...readingRoles, 'admin')
      const { sopId } = request.params
      const versions = sops.all().filter((d) => d.id === sopId)
      const wanted = request.query.version
      const definition =
        wanted === undefined
          ? versions.sort((a, b) => b.version - a.version)[0]
          : versions.find((d) => d.version === wanted)
      if (!definition) throw notFound('procedure', wanted === undefined ? sopId : `${sopId} version ${wanted}`)
      return { ...definition, diagram: mermaidDiagram(definition) }
    },

    async getNextActions(request) {
      const caller = requireRole(request, ...readingRoles)
      return db.transaction().execute(async (trx) => {
        const found = await caseOfParty(trx, caller, request.params.caseId)
        return (await nextActions(trx, found, caller)).body
      })
    },

    async performTransition(request, reply) {
      const caller = requireRole(request, ...actingRoles)
      const expected = requiredIfMatch(request)
      const body = request.body
      return runMutation(
        db,
        request,
        reply,
        async (trx) => {
          const found = await caseOfParty(trx, caller, request.params.caseId, { lock: true })
          if (found.version !== expected) throw staleVersion('case', found.version)
          const { definition, facts, body: options } = await nextActions(trx, found, caller)
          const transition = definition.transitions.find((t) => t.action === body.action && t.from.includes(found.step))
          if (!transition) {
            throw new ProblemError(409, `${body.action} is not open from the step ${found.step}.`, {
              code: 'action-not-open',
              extras: { unmet: [{ code: 'step', message: `The case is in the step ${found.step}.` }] },
            })
          }
          const refused = options.refused.find((option) => option.action === body.action)
          if (refused) {
            throw new ProblemError(409, `${body.action} cannot be taken now.`, {
              code: 'preconditions-unmet',
              extras: { unmet: refused.unmet },
            })
          }
          const missing = (transition.inputs ?? []).filter((input) => body[input] === undefined)
          if (missing.length > 0) {
            throw new ProblemError(422, `${body.action} needs ${missing.join(' and ')}.`, { code: 'input-required' })
          }
          const now = clock.now()
          const to = targetStep(transition, facts)
          const handover = transition.effects?.includes('lead_to_receiving')
          if (handover && !facts.counterpartId) {
            throw new ProblemError(409, 'There is no receiving partner to hand over to.', {
              code: 'no-receiving-partner',
            })
          }
          const lead = handover && facts.counterpartId ? facts.counterpartId : found.lead_organisation_id
          const deadline = definition.steps[to]?.deadline
          const dueAt = body.review_date
            ? new Date(`${body.review_date}T00:00:00Z`)
            : deadline
              ? addDuration(now, deadline)
              : null
          const changed = await queries.changeCase(trx, found, {
            step: { step: to, previous: found.step, enteredAt: now, dueAt },
            lead_organisation_id: lead,
          })
          if (transition.effects?.includes('withdraw_consents')) {
            await withdrawConsents(trx, found, await queries.consentsOfCase(trx, found.id), {
              principalId: caller.principal.id,
              reason: body.reason ?? null,
              at: now,
            })
          }
          const parties = await queries.partyIds(trx, found.id)
          const data = {
            case_reference: found.reference,
            version: changed.version,
            action: transition.action,
            from_step: found.step,
            to_step: to,
            lead_organisation_id: lead,
          }
          await recordEvent(trx, { type: 'case.transitioned', caseId: found.id, data }, parties)
          if (definition.steps[to]?.terminal) {
            await recordEvent(trx, { type: 'case.closed', caseId: found.id, data }, parties)
          }
          await trx
            .insertInto('case_transitions')
            .values({
              case_id: found.id,
              action: transition.action,
              from_step: found.step,
              to_step: to,
              at: now,
              principal_id: caller.principal.id,
              organisation_id: caller.organisation.id,
              lead_organisation_id: lead,
              note: body.note ?? null,
              reason: body.reason ?? null,
              review_date: body.review_date ?? null,
            })
            .execute()
          await recordAudit(trx, request, {
            caseId: found.id,
            resourceType: 'case',
            resourceId: found.id,
            details: { action: transition.action, from: found.step, to, lead_organisation_id: lead },
          })
          return { status: 200, resourceId: found.id }
        },
        async (trx, caseId) => {
          const { body: rendered, etag } = await renderCase(trx, caller, caseId, clock.now())
          const { sections: _, ...summary } = rendered
          return { body: summary, etag }
        },
      )
    },

    async getTimeline(request) {
      const caller = requireRole(request, ...readingRoles)
      return db.transaction().execute(async (trx) => {
        const found = await caseOfParty(trx, caller, request.params.caseId)
        const rows = await trx
          .selectFrom('case_transitions')
          .selectAll()
          .select(sql<string | null>`review_date::text`.as('review_date'))
          .where('case_id', '=', found.id)
          .orderBy('id')
          .execute()
        await recordAudit(trx, request, { caseId: found.id, resourceType: 'case', resourceId: found.id })
        return {
          items: rows.map((row) => ({
            action: row.action,
            from_step: row.from_step,
            to_step: row.to_step,
            at: row.at.toISOString(),
            principal_id: row.principal_id,
            organisation_id: row.organisation_id,
            lead_organisation_id: row.lead_organisation_id,
            note: row.note,
            reason: row.reason,
            review_date: row.review_date,
          })),
        }
      })
    },

    async listCaseRecords(request) {
      const caller = requireRole(request, ...readingRoles)
      return db.transaction().execute(async (trx) => {
        const found = await caseOfParty(trx, caller, request.params.caseId)
        if (!sideOf(found, await gatherFacts(trx, found, clock.now()), caller.organisation.id)) {
          throw new ProblemError(403, 'The records of a case are kept between the sending and the receiving partner.', {
            code: 'not-a-side',
          })
        }
        const rows = await trx
          .selectFrom('case_records')
          .selectAll()
          .where('case_id', '=', found.id)
          .orderBy('recorded_at')
          .orderBy('id')
          .execute()
        await recordAudit(trx, request, { caseId: found.id, resourceType: 'case', resourceId: found.id })
        return { items: rows.map(presentRecord) }
      })
    },

    async createCaseRecord(request, reply) {
      const caller = requireRole(request, ...actingRoles)
      const body = request.body
      if ((body.kind === 'assessment') !== (body.assessment !== undefined)) {
        throw new ProblemError(422, 'An assessment record names its assessment; no other record does.', {
          code: 'invalid-record',
        })
      }
      return runMutation(
        db,
        request,
        reply,
        async (trx) => {
          const found = await caseOfParty(trx, caller, request.params.caseId, { lock: true })
          const side = sideOf(found, await gatherFacts(trx, found, clock.now()), caller.organisation.id)
          if (!side) {
            throw new ProblemError(403, 'Only the sending or the receiving partner keeps the records of a case.', {
              code: 'not-a-side',
            })
          }
          const record = await trx
            .insertInto('case_records')
            .values({
              case_id: found.id,
              kind: body.kind,
              assessment: body.assessment ?? null,
              side,
              data: json(body.data),
              recorded_by_principal_id: caller.principal.id,
              recorded_by_organisation_id: caller.organisation.id,
            })
            .returningAll()
            .executeTakeFirstOrThrow()
          await recordAudit(trx, request, {
            caseId: found.id,
            resourceType: 'case',
            resourceId: found.id,
            details: { record: record.id, kind: body.kind, assessment: body.assessment ?? null },
          })
          await recordEvent(
            trx,
            {
              type: 'case.record_added',
              caseId: found.id,
              data: { case_reference: found.reference, record_id: record.id, record_kind: body.kind },
            },
            await queries.partyIds(trx, found.id),
          )
          return { status: 201, resourceId: record.id, location: `/v1/cases/${found.id}/records` }
        },
        async (trx, recordId) => {
          const record = await trx.selectFrom('case_records').selectAll().where('id', '=', recordId).executeTakeFirst()
          if (!record) throw notFound('record', recordId)
          await caseOfParty(trx, caller, record.case_id)
          return { body: presentRecord(record) }
        },
      )
    },

    async listEscalations(request) {
      const caller = requireRole(request, 'supervisor')
      const { limit = 50, cursor } = request.query
      const after = cursor ? decodeCursor(cursor, ['text', 'uuid']) : undefined
      const organisationId = caller.organisation.id
      let query = db
        .selectFrom('escalations')
        .innerJoin('cases', 'cases.id', 'escalations.case_id')
        .selectAll('escalations')
        .select('cases.reference as case_reference')
        .where(({ eb, or }) =>
          or([
            eb('escalations.responsible_organisation_id', '=', organisationId),
            eb('cases.sending_organisation_id', '=', organisationId),
            eb('cases.receiving_organisation_id', '=', organisationId),
          ]),
        )
      if (after) {
        const [raisedAt, id] = after
        query = query.where(({ eb, refTuple, tuple }) =>
          eb(refTuple('escalations.raised_at', 'escalations.id'), '<', tuple(new Date(raisedAt), id)),
        )
      }
      const rows = await query
        .orderBy('escalations.raised_at', 'desc')
        .orderBy('escalations.id', 'desc')
        .limit(limit + 1)
        .execute()
      return toPage(
        rows,
        limit,
        (row) => ({
          id: row.id,
          kind: row.kind,
          case_id: row.case_id,
          case_reference: row.case_reference,
          step: row.step,
          withdrawal_notice_id: row.withdrawal_notice_id,
          due_at: row.due_at.toISOString(),
          raised_at: row.raised_at.toISOString(),
          responsible_organisation_id: row.responsible_organisation_id,
        }),
        (row) => [row.raised_at.toISOString(), row.id],
      )
    },
  } satisfies Partial<Handlers>
}

function presentRecord(row: CaseRecord): Schemas['CaseRecord'] {
  return {
    id: row.id,
    case_id: row.case_id,
    kind: row.kind,
    assessment: row.assessment,
    side: row.side,
    data: row.data,
    recorded_at: row.recorded_at.toISOString(),
    recorded_by_principal_id: row.recorded_by_principal_id,
    recorded_by_organisation_id: row.recorded_by_organisation_id,
  }
}
