import { randomUUID } from 'node:crypto'
import type { FastifyReply } from 'fastify'
import { type Kysely, sql, type Transaction } from 'kysely'
import type { components } from '../../openapi/dist/types.js'
import type { ReadAudit } from '../audit/read-audit.js'
import { recordAudit } from '../audit/records.js'
import type { Clock } from '../clock.js'
import { appendTransition } from '../db/appends.js'
import { type Case, type CaseRecord, type DB, json } from '../db/schema.js'
import { recordEvent } from '../events/outbox.js'
import { type Caller, readingRoles, requireRole } from '../http/authentication.js'
import type { Handlers } from '../http/contract.js'
import { answerLanguage } from '../http/language.js'
import { decodeCursor, toPage } from '../http/pagination.js'
import { notFound, ProblemError } from '../http/problem.js'
import { type Language, label, labels, localiseDetails } from '../i18n/catalogue.js'
import type { AssessmentKind, SopDefinition } from '../sops/definition.js'
import { mermaidDiagram } from '../sops/diagram.js'
import { procedureSvg } from '../sops/diagram-svg.js'
import { evaluate, laterActions, type Unmet } from '../sops/engine.js'
import { type AnyRecordKind, figuresOf, recordDataErrors, recordKindOf, recordKinds } from '../sops/records.js'
import { type SopRegistry, specificity } from '../sops/registry.js'
import { caseOfParty } from './access.js'
import { runCaseChange } from './case-change.js'
import { caseDisclosure, disclosureFor } from './disclosure.js'
import { presentedCaseSummary, renderCase } from './handlers.js'
import {
  applyTransition,
  counterpartOf,
  gatherFacts,
  openRecord,
  openTransition,
  recordsOf,
  sealRecordData,
  sideOf,
  stepDueAt,
} from './procedure.js'
import { definitionOf } from './procedure-definition.js'
import * as queries from './queries.js'
import { fulfilWithRecord } from './schedule.js'

type Schemas = components['schemas']

export interface ProcedureDependencies {
  db: Kysely<DB>
  sops: SopRegistry
  clock: Clock
  readAudit: ReadAudit
}

export function procedureHandlers({ db, sops, clock, readAudit }: ProcedureDependencies) {
  async function nextActions(
    trx: Transaction<DB>,
    found: Case,
    caller: Caller,
    language: Language,
  ): Promise<Schemas['NextActions']> {
    const now = clock.now()
    const definition = definitionOf(sops, found)
    const { facts } = await gatherFacts(trx, found, now)
    const actor = { side: sideOf(found, facts.counterpartId, caller.organisation.id), roles: caller.principal.roles }
    const responsible = definition.steps[found.step]?.responsible
    const disclosure = await caseDisclosure(trx, sops, found, caller.organisation.id, now)
    const { allowed, refused } = evaluate(definition, facts, actor)
    const say = <O extends { action: string; title: string; unmet: Unmet[] }>(option: O): O => ({
      ...option,
      title: label(language, `action.${option.action}`),
      unmet: localiseDetails(disclosure.unmet(option.unmet), language),
    })
    return {
      case_id: found.id,
      sop: { id: found.sop_id, version: found.sop_version },
      step: found.step,
      responsible_side: responsible === 'lead' ? facts.leadSide : (responsible ?? null),
      lead_organisation_id: found.lead_organisation_id,
      step_due_at: found.step_due_at?.toISOString() ?? null,
      overdue: found.step_due_at !== null && found.step_due_at < now,
      allowed: allowed.map(say),
      refused: refused.map(say),
      later: laterActions(definition, facts).map(say),
    }
  }

  /** The case's records the caller may read, with the parties and consents the policy needs. */
  async function readableRecords(db: Kysely<DB> | Transaction<DB>, found: Case, caller: Caller): Promise<CaseRecord[]> {
    const disclosure = await caseDisclosure(db, sops, found, caller.organisation.id, clock.now())
    return disclosure.records(await recordsOf(db, found))
  }

  return {
    async listSops(request, reply) {
      requireRole(request, ...readingRoles, 'admin')
      const language = answerLanguage(request, reply)
      return {
        items: sops.all().map(({ id, version, applies_to, corridors, extends: base }) => ({
          id,
          version,
          title: label(language, `sop.${id}.title`),
          applies_to,
          corridors: corridors ?? null,
          extends: base ?? null,
        })),
      }
    },

    async getSop(request, reply) {
      requireRole(request, ...readingRoles, 'admin')
      const definition = publishedSop(sops, request.params.sopId, request.query.version)
      return { ...translated(definition, answerLanguage(request, reply)), diagram: mermaidDiagram(definition) }
    },

    async getSopDiagram(request, reply) {
      const definition = publishedSop(sops, request.params.sopId, request.query.version)
      const svg = procedureSvg(translated(definition, answerLanguage(request, reply)))
      svgHeaders(reply)
      return svg
    },

    async getCaseProcedureDiagram(request, reply) {
      const caller = requireRole(request, ...readingRoles)
      const language = answerLanguage(request, reply)
      const now = clock.now()
      const found = await caseOfParty(db, caller, request.params.caseId)
      const parties = (await queries.partiesOf(db, [found.id])).get(found.id) ?? []
      const disclosure = disclosureFor(sops, found, parties, [], caller.organisation.id, now)
      const transitions = await db
        .selectFrom('case_transitions')
        .select(['action', 'from_step', 'to_step', 'at'])
        .where('case_id', '=', found.id)
        .orderBy('id')
        .execute()
      await readAudit.record(request, {
        caseId: found.id,
        resourceType: 'case',
        resourceId: found.id,
        details: { picture: 'procedure' },
      })
      const svg = procedureSvg(translated(definitionOf(sops, found), language), {
        path: disclosure.path(transitions),
        step: found.step,
        dueAt: found.step_due_at,
        now,
      })
      svgHeaders(reply)
      return svg
    },

    async migrateCaseProcedure(request, reply) {
      requireRole(request, 'supervisor')
      const body = request.body
      return runCaseChange(
        db,
        request,
        reply,
        { ifMatch: true, lead: true },
        async (trx, found, caller) => {
          const now = clock.now()
          const from = definitionOf(sops, found)
          const to = sops.find(body.sop.id, body.sop.version)
          const wanted = `${body.sop.id}@${body.sop.version}`
          if (!to) {
            throw new ProblemError(422, `There is no procedure ${wanted}.`, {
              code: 'unknown-procedure',
              extras: { errors: [{ pointer: '#/sop', detail: 'is not a procedure of GET /v1/sops' }] },
            })
          }
          if (to === from) {
            throw new ProblemError(422, `The case already follows ${wanted}.`, { code: 'same-procedure' })
          }
          if (from.steps[found.step]?.terminal) {
            throw new ProblemError(409, `The case is finished (${found.step}); its procedure is not changed.`, {
              code: 'case-finished',
            })
          }
          const sending = await trx
            .selectFrom('organisations')
            .select('country')
            .where('id', '=', found.sending_organisation_id)
            .executeTakeFirstOrThrow()
          const corridor = { sending: sending.country, receiving: found.profile.country_of_return }
          if (to.applies_to !== from.applies_to || specificity(to, corridor) === undefined) {
            throw new ProblemError(
              422,
              `${wanted} is not for this case: it applies to a${to.applies_to === 'adult' ? 'n adult' : ' child'}${
                to.corridors ? ` in ${to.corridors.map((c) => `${c.sending}→${c.receiving}`).join(', ')}` : ''
              }; the case is a${from.applies_to === 'adult' ? 'n adult' : ' child'}'s, ${corridor.sending}→${corridor.receiving}.`,
              { code: 'procedure-does-not-apply' },
            )
          }
          const step = to.steps[found.step]
          if (!step || step.terminal) {
            throw new ProblemError(422, `${wanted} has no step ${found.step}, where the case is.`, {
              code: 'step-not-in-procedure',
              extras: { valid_steps: Object.keys(to.steps).filter((name) => !to.steps[name]?.terminal) },
            })
          }
          const counterpartId = await counterpartOf(trx, found)
          const parties = {
            sendingId: found.sending_organisation_id,
            counterpartId,
            leadId: found.lead_organisation_id,
          }
          const dueAt =
            step.deadline === from.steps[found.step]?.deadline && found.step_due_at !== null
              ? found.step_due_at
              : await stepDueAt(trx, step, parties, found.step_entered_at, caller.organisation)
          const changed = await queries.changeCase(trx, found, {
            procedure: { id: to.id, version: to.version, dueAt },
            at: now,
          })
          await appendTransition(trx, {
            case_id: found.id,
            action: 'migrate_procedure',
            from_step: found.step,
            to_step: found.step,
            at: now,
            principal_id: caller.principal.id,
            organisation_id: caller.organisation.id,
            lead_organisation_id: found.lead_organisation_id,
            note: `${found.sop_id}@${found.sop_version} → ${wanted}`,
            reason: body.reason,
            review_date: null,
          })
          const fromSop = { id: found.sop_id, version: found.sop_version }
          await recordAudit(trx, request, {
            caseId: found.id,
            resourceType: 'case',
            resourceId: found.id,
            details: { from_sop: fromSop, sop: body.sop, step: found.step },
          })
          await recordEvent(
            trx,
            {
              type: 'case.procedure_migrated',
              caseId: found.id,
              data: {
                case_reference: found.reference,
                version: changed.version,
                step: found.step,
                from_sop: fromSop,
                sop: { id: to.id, version: to.version },
              },
            },
            await queries.partyIds(trx, found.id),
          )
          return { status: 200, resourceId: found.id }
        },
        async (trx, caseId, caller) => {
          const { body: rendered, etag } = await renderCase(
            trx,
            sops,
            caller,
            caseId,
            clock.now(),
            answerLanguage(request, reply),
          )
          const { sections: _, schedule: __, ...summary } = rendered
          return { body: summary, etag }
        },
      )
    },

    async listLabels(request, reply) {
      requireRole(request, ...readingRoles, 'admin')
      const language = answerLanguage(request, reply)
      return { language, labels: labels(language) }
    },

    async listRecordKinds(request, reply) {
      requireRole(request, ...readingRoles, 'admin')
      const language = answerLanguage(request, reply)
      const entries = [
        ...Object.entries(recordKinds.records).map(([kind, definition]) => ({
          kind,
          assessment: null,
          ...definition,
          title: label(language, `record.${kind}`),
        })),
        ...Object.entries(recordKinds.assessments).map(([assessment, definition]) => ({
          kind: 'assessment',
          assessment,
          ...definition,
          title: label(language, `assessment.${assessment}`),
        })),
      ] as Schemas['RecordKind'][]
      return { items: entries }
    },

    async getNextActions(request, reply) {
      const caller = requireRole(request, ...readingRoles)
      const language = answerLanguage(request, reply)
      return db.transaction().execute(async (trx) => {
        const found = await caseOfParty(trx, caller, request.params.caseId)
        return nextActions(trx, found, caller, language)
      })
    },

    async performTransition(request, reply) {
      const body = request.body
      const language = answerLanguage(request, reply)
      let held: Parameters<typeof presentedCaseSummary>[2] | undefined
      return runCaseChange(
        db,
        request,
        reply,
        { ifMatch: true },
        async (trx, found, caller) => {
          const now = clock.now()
          const open = await openTransition(trx, sops, found, caller, { action: body.action }, now)
          const changed = await applyTransition(trx, request, caller, found, open, body, now)
          // What the change leaves is in hand, unless it withdrew consents the disclosure depends on.
          if (!open.transition.effects?.includes('withdraw_consents')) {
            held = { found: changed, parties: open.loaded.parties, consents: open.loaded.consents }
          }
          return { status: 200, resourceId: found.id }
        },
        async (trx, caseId, caller) => {
          if (held?.found.id === caseId) return presentedCaseSummary(sops, caller, held, clock.now(), language)
          const { body: rendered, etag } = await renderCase(trx, sops, caller, caseId, clock.now(), language)
          const { sections: _, schedule: __, ...summary } = rendered
          return { body: summary, etag }
        },
      )
    },

    async getTimeline(request) {
      const caller = requireRole(request, ...readingRoles)
      const found = await caseOfParty(db, caller, request.params.caseId)
      const parties = (await queries.partiesOf(db, [found.id])).get(found.id) ?? []
      const notes = disclosureFor(sops, found, parties, [], caller.organisation.id, clock.now()).timelineNotes
      const rows = await db
        .selectFrom('case_transitions')
        .selectAll()
        .select(sql<string | null>`review_date::text`.as('review_date'))
        .where('case_id', '=', found.id)
        .orderBy('id')
        .execute()
      await readAudit.record(request, { caseId: found.id, resourceType: 'case', resourceId: found.id })
      return {
        items: rows.map((row) => ({
          action: row.action,
          from_step: row.from_step,
          to_step: row.to_step,
          at: row.at.toISOString(),
          principal_id: row.principal_id,
          organisation_id: row.organisation_id,
          lead_organisation_id: row.lead_organisation_id,
          note: notes ? row.note : null,
          reason: notes ? row.reason : null,
          review_date: row.review_date,
        })),
      }
    },

    async listCaseRecords(request) {
      const caller = requireRole(request, ...readingRoles)
      const found = await caseOfParty(db, caller, request.params.caseId)
      const records = await readableRecords(db, found, caller)
      await readAudit.record(request, {
        caseId: found.id,
        resourceType: 'case',
        resourceId: found.id,
        details: { records: records.map((record) => record.id) },
      })
      return { items: records.map(presentRecord) }
    },

    async createCaseRecord(request, reply) {
      const body = request.body
      if ((body.kind === 'assessment') !== (body.assessment !== undefined)) {
        throw new ProblemError(422, 'An assessment record names its assessment; no other record does.', {
          code: 'invalid-record',
          extras: { errors: [{ pointer: '#/assessment', detail: 'is needed with kind assessment, and only then' }] },
        })
      }
      const kind = recordKindOf(body.kind as AnyRecordKind, (body.assessment ?? null) as AssessmentKind | null)
      const errors = recordDataErrors(kind, body.data)
      const figures = figuresOf(body.kind, body.data as Record<string, unknown>)
      if (errors.length > 0) {
        throw new ProblemError(422, `The data does not match what ${kind.title.toLowerCase()} holds.`, {
          code: 'invalid-record',
          extras: {
            errors: errors.map((error) => ({
              pointer: `#/data${error.instancePath}${error.keyword === 'required' ? `/${(error.params as { missingProperty: string }).missingProperty}` : ''}`,
              detail: error.message ?? 'is not valid',
            })),
          },
        })
      }
      return runCaseChange(
        db,
        request,
        reply,
        {},
        async (trx, found, caller) => {
          const { facts } = await gatherFacts(trx, found, clock.now())
          const side = sideOf(found, facts.counterpartId, caller.organisation.id)
          if (!side) {
            throw new ProblemError(403, 'Only the sending or the receiving partner keeps the records of a case.', {
              code: 'not-a-side',
            })
          }
          const recordId = randomUUID()
          const inserted = await trx
            .insertInto('case_records')
            .values({
              id: recordId,
              case_id: found.id,
              kind: body.kind,
              assessment: body.assessment ?? null,
              category: kind.category,
              side,
              data: json(sealRecordData(found, recordId, body.data)),
              figures: figures ? json(figures) : null,
              recorded_by_principal_id: caller.principal.id,
              recorded_by_organisation_id: caller.organisation.id,
            })
            .returningAll()
            .executeTakeFirstOrThrow()
          const record = { ...inserted, data: body.data }
          if (body.kind === 'monitoring_visit' || body.kind === 'reassessment') {
            await fulfilWithRecord(trx, found.id, body.kind, record.id, clock.now())
          }
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
          const row = await trx
            .selectFrom('case_records')
            .innerJoin('cases', 'cases.id', 'case_records.case_id')
            .selectAll('case_records')
            .select(['cases.data_key_id', 'cases.data_key'])
            .where('case_records.id', '=', recordId)
            .executeTakeFirst()
          if (!row) throw notFound('record', recordId)
          const { data_key_id, data_key, ...record } = row
          return { body: presentRecord(openRecord({ id: record.case_id, data_key_id, data_key }, record)) }
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
        .where(({ eb, or, exists, selectFrom }) =>
          or([
            eb('escalations.responsible_organisation_id', '=', organisationId),
            eb('cases.sending_organisation_id', '=', organisationId),
            eb('cases.receiving_organisation_id', '=', organisationId),
            // The receiving side from its acknowledgement, before it accepts: an alert is for both sides.
            exists(
              selectFrom('case_parties')
                .select('case_parties.case_id')
                .whereRef('case_parties.case_id', '=', 'escalations.case_id')
                .where('case_parties.organisation_id', '=', organisationId)
                .where('case_parties.role', '=', 'receiving'),
            ),
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
          obligation_id: row.obligation_id,
          due_at: row.due_at.toISOString(),
          raised_at: row.raised_at.toISOString(),
          responsible_organisation_id: row.responsible_organisation_id,
        }),
        (row) => [row.raised_at.toISOString(), row.id],
      )
    },
  } satisfies Partial<Handlers>
}

/** The newest version of a procedure, or the one asked for. */
function publishedSop(sops: SopRegistry, sopId: string, wanted: number | undefined): SopDefinition {
  const versions = sops.all().filter((d) => d.id === sopId)
  const definition =
    wanted === undefined
      ? versions.sort((a, b) => b.version - a.version)[0]
      : versions.find((d) => d.version === wanted)
  if (!definition) throw notFound('procedure', wanted === undefined ? sopId : `${sopId} version ${wanted}`)
  return definition
}

/** A picture is a document of its own: no script or outside resource runs in it if opened directly. */
function svgHeaders(reply: FastifyReply): void {
  reply
    .type('image/svg+xml; charset=utf-8')
    .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
}

/** A procedure with its title, step titles and action titles in a language; descriptions stay as written. */
function translated(definition: SopDefinition, language: Language): SopDefinition {
  return {
    ...definition,
    title: label(language, `sop.${definition.id}.title`),
    steps: Object.fromEntries(
      Object.entries(definition.steps).map(([name, step]) => [
        name,
        { ...step, title: label(language, `step.${name}`) },
      ]),
    ),
    transitions: definition.transitions.map((transition) => ({
      ...transition,
      title: label(language, `action.${transition.action}`),
    })),
  }
}

export function presentRecord(row: CaseRecord): Schemas['CaseRecord'] {
  return {
    id: row.id,
    case_id: row.case_id,
    kind: row.kind,
    assessment: row.assessment,
    category: row.category,
    side: row.side,
    data: row.data,
    recorded_at: row.recorded_at.toISOString(),
    recorded_by_principal_id: row.recorded_by_principal_id,
    recorded_by_organisation_id: row.recorded_by_organisation_id,
  }
}
