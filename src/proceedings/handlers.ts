import type { FastifyRequest } from 'fastify'
import type { Kysely, Transaction } from 'kysely'
import type { components } from '../../openapi/dist/types.js'
import type { ReadAudit } from '../audit/read-audit.js'
import { recordAudit } from '../audit/records.js'
import { caseOfParty } from '../cases/access.js'
import { runCaseChange } from '../cases/case-change.js'
import { caseDisclosure } from '../cases/disclosure.js'
import { counterpartOf, sideOf } from '../cases/procedure.js'
import { partyIds } from '../cases/queries.js'
import type { Clock } from '../clock.js'
import type { Case, DB, Proceeding, ProceedingHearing } from '../db/schema.js'
import type { CaseDisclosure } from '../disclosure/policy.js'
import { recordEvent } from '../events/outbox.js'
import { type Caller, readingRoles, requireRole } from '../http/authentication.js'
import type { Handlers } from '../http/contract.js'
import { etag, type Rendered, requiredIfMatch, staleVersion } from '../http/mutation.js'
import { notFound, ProblemError } from '../http/problem.js'
import type { SopRegistry } from '../sops/registry.js'

type Schemas = components['schemas']

export interface ProceedingDependencies {
  db: Kysely<DB>
  sops: SopRegistry
  clock: Clock
  readAudit: ReadAudit
}

/**
 * Proceedings (TRM-EU SOP 5) that both sides follow after return. Their data is the consent
 * category `proceedings`: every read goes through the disclosure policy, and a proceeding the
 * caller may not read is a 404, for writes as for reads.
 */
export function proceedingHandlers({ db, sops, clock, readAudit }: ProceedingDependencies) {
  async function readable(db: Kysely<DB> | Transaction<DB>, found: Case, caller: Caller): Promise<CaseDisclosure> {
    return caseDisclosure(db, sops, found, caller.organisation.id, clock.now())
  }

  /** The proceeding, if the caller may read it; `lock` holds it until the transaction ends. */
  async function proceedingOf(
    db: Kysely<DB> | Transaction<DB>,
    found: Case,
    caller: Caller,
    proceedingId: string,
    { lock = false } = {},
  ): Promise<Proceeding> {
    let query = db.selectFrom('proceedings').selectAll().where('id', '=', proceedingId).where('case_id', '=', found.id)
    if (lock) query = query.forUpdate()
    const row = await query.executeTakeFirst()
    const [visible] = row ? (await readable(db, found, caller)).proceedings([row]) : []
    if (!visible) throw notFound('proceeding', proceedingId)
    return visible
  }

  async function render(
    db: Kysely<DB> | Transaction<DB>,
    caller: Caller,
    caseId: string,
    proceedingId: string,
  ): Promise<Rendered<Schemas['Proceeding']>> {
    const found = await caseOfParty(db, caller, caseId)
    const proceeding = await proceedingOf(db, found, caller, proceedingId)
    const hearings = await hearingsOf(db, [proceeding.id])
    return { body: presentProceeding(proceeding, hearings), etag: etag(proceeding.version) }
  }

  /** Only the two sides of a case keep its proceedings. */
  async function requireSide(trx: Transaction<DB>, found: Case, caller: Caller): Promise<void> {
    if (!sideOf(found, await counterpartOf(trx, found), caller.organisation.id)) {
      throw new ProblemError(403, 'Only the sending or the receiving partner keeps the proceedings of a case.', {
        code: 'not-a-side',
      })
    }
  }

  /**
   * Opens a change of one proceeding: the case locked, the proceeding one the caller may read (else
   * it does not exist for it), the caller on a side of the case, its version checked.
   */
  async function changeProceeding(
    trx: Transaction<DB>,
    found: Case,
    caller: Caller,
    request: FastifyRequest<{ Params: { proceedingId: string } }>,
  ): Promise<Proceeding> {
    const expected = requiredIfMatch(request)
    const proceeding = await proceedingOf(trx, found, caller, request.params.proceedingId, { lock: true })
    await requireSide(trx, found, caller)
    if (proceeding.version !== expected) throw staleVersion('proceeding', proceeding.version)
    return proceeding
  }

  async function bump(trx: Transaction<DB>, proceeding: Proceeding, now: Date, change: object = {}) {
    await trx
      .updateTable('proceedings')
      .set((eb) => ({ ...change, version: eb('version', '+', 1), updated_at: now }))
      .where('id', '=', proceeding.id)
      .execute()
  }

  return {
    async listProceedings(request) {
      const caller = requireRole(request, ...readingRoles)
      const found = await caseOfParty(db, caller, request.params.caseId)
      const rows = await db
        .selectFrom('proceedings')
        .selectAll()
        .where('case_id', '=', found.id)
        .orderBy('seq')
        .execute()
      const visible = (await readable(db, found, caller)).proceedings(rows)
      const hearings = await hearingsOf(
        db,
        visible.map((row) => row.id),
      )
      await readAudit.record(request, {
        caseId: found.id,
        resourceType: 'case',
        resourceId: found.id,
        details: { proceedings: visible.map((row) => row.id) },
      })
      return { items: visible.map((row) => presentProceeding(row, hearings)) }
    },

    async getProceeding(request, reply) {
      const caller = requireRole(request, ...readingRoles)
      const { caseId, proceedingId } = request.params
      const rendered = await render(db, caller, caseId, proceedingId)
      await readAudit.record(request, {
        caseId,
        resourceType: 'case',
        resourceId: caseId,
        details: { proceeding: proceedingId },
      })
      reply.header('etag', rendered.etag)
      return rendered.body
    },

    async createProceeding(request, reply) {
      const body = request.body
      return runCaseChange(
        db,
        request,
        reply,
        {},
        async (trx, found, caller) => {
          await requireSide(trx, found, caller)
          const now = clock.now()
          const created = await trx
            .insertInto('proceedings')
            .values({
              case_id: found.id,
              kind: body.kind,
              country: body.country,
              authority: body.authority,
              reference: body.reference ?? null,
              stage: body.stage,
              person_roles: body.person_roles,
              protection_measures: body.protection_measures ?? [],
              remote_participation: body.remote_participation ?? 'not_needed',
              notes: body.notes ?? null,
              created_at: now,
              updated_at: now,
              created_by_principal_id: caller.principal.id,
              created_by_organisation_id: caller.organisation.id,
            })
            .returning('id')
            .executeTakeFirstOrThrow()
          await recordEvent(
            trx,
            {
              type: 'proceeding.opened',
              caseId: found.id,
              data: { case_reference: found.reference, proceeding_id: created.id },
            },
            await partyIds(trx, found.id),
          )
          await recordAudit(trx, request, {
            caseId: found.id,
            resourceType: 'case',
            resourceId: found.id,
            details: { proceeding: created.id, kind: body.kind },
          })
          return {
            status: 201,
            resourceId: created.id,
            location: `/v1/cases/${found.id}/proceedings/${created.id}`,
          }
        },
        (trx, proceedingId, caller) => render(trx, caller, request.params.caseId, proceedingId),
      )
    },

    async updateProceeding(request, reply) {
      return runCaseChange(
        db,
        request,
        reply,
        {},
        async (trx, found, caller) => {
          const proceeding = await changeProceeding(trx, found, caller, request)
          await bump(trx, proceeding, clock.now(), request.body)
          await recordEvent(
            trx,
            {
              type: 'proceeding.updated',
              caseId: found.id,
              data: { case_reference: found.reference, proceeding_id: proceeding.id },
            },
            await partyIds(trx, found.id),
          )
          await recordAudit(trx, request, {
            caseId: found.id,
            resourceType: 'case',
            resourceId: found.id,
            details: { proceeding: proceeding.id, changed: Object.keys(request.body) },
          })
          return { status: 200, resourceId: proceeding.id }
        },
        (trx, proceedingId, caller) => render(trx, caller, request.params.caseId, proceedingId),
      )
    },

    async addHearing(request, reply) {
      const body = request.body
      return runCaseChange(
        db,
        request,
        reply,
        {},
        async (trx, found, caller) => {
          const proceeding = await changeProceeding(trx, found, caller, request)
          const now = clock.now()
          const year = new Date(body.scheduled_at).getUTCFullYear()
          if (Math.abs(year - now.getUTCFullYear()) > 50) {
            throw new ProblemError(422, 'A hearing is scheduled within fifty years of today.', {
              code: 'invalid-hearing',
              extras: { errors: [{ pointer: '#/scheduled_at', detail: 'is not a plausible date for a hearing' }] },
            })
          }
          const hearing = await trx
            .insertInto('proceeding_hearings')
            .values({
              proceeding_id: proceeding.id,
              case_id: found.id,
              scheduled_at: body.scheduled_at,
              purpose: body.purpose,
              participation: body.participation,
              notes: body.notes ?? null,
              created_at: now,
              created_by_principal_id: caller.principal.id,
              created_by_organisation_id: caller.organisation.id,
            })
            .returning('id')
            .executeTakeFirstOrThrow()
          // The side responsible for the person now prepares it: after return, the receiving partner.
          const responsible = found.lead_organisation_id
          const obligation = await trx
            .insertInto('case_obligations')
            .values({
              case_id: found.id,
              kind: 'hearing',
              schedule_key: null,
              hearing_id: hearing.id,
              due_at: body.scheduled_at,
              responsible_organisation_id: responsible,
              created_at: now,
            })
            .returning('id')
            .executeTakeFirstOrThrow()
          await bump(trx, proceeding, now)
          await recordEvent(
            trx,
            {
              type: 'proceeding.hearing_scheduled',
              caseId: found.id,
              data: {
                case_reference: found.reference,
                proceeding_id: proceeding.id,
                hearing_id: hearing.id,
                obligation_id: obligation.id,
                due_at: new Date(body.scheduled_at).toISOString(),
                responsible_organisation_id: responsible,
              },
            },
            [responsible, found.sending_organisation_id],
          )
          await recordAudit(trx, request, {
            caseId: found.id,
            resourceType: 'case',
            resourceId: found.id,
            details: { proceeding: proceeding.id, hearing: hearing.id },
          })
          return {
            status: 201,
            resourceId: proceeding.id,
            location: `/v1/cases/${found.id}/proceedings/${proceeding.id}`,
          }
        },
        (trx, proceedingId, caller) => render(trx, caller, request.params.caseId, proceedingId),
      )
    },

    async recordHearingOutcome(request, reply) {
      const { hearingId } = request.params
      return runCaseChange(
        db,
        request,
        reply,
        {},
        async (trx, found, caller) => {
          const proceeding = await changeProceeding(trx, found, caller, request)
          const hearing = await trx
            .selectFrom('proceeding_hearings')
            .selectAll()
            .where('id', '=', hearingId)
            .where('proceeding_id', '=', proceeding.id)
            .executeTakeFirst()
          if (!hearing) throw notFound('hearing', hearingId)
          if (hearing.outcome !== null) {
            throw new ProblemError(409, `The outcome of this hearing was recorded: ${hearing.outcome}.`, {
              code: 'outcome-recorded',
            })
          }
          const now = clock.now()
          await trx
            .updateTable('proceeding_hearings')
            .set({
              outcome: request.body.outcome,
              outcome_recorded_at: now,
              ...(request.body.notes ? { notes: request.body.notes } : {}),
            })
            .where('id', '=', hearing.id)
            .execute()
          await trx
            .updateTable('case_obligations')
            .set({ fulfilled_at: now })
            .where('hearing_id', '=', hearing.id)
            .where('fulfilled_at', 'is', null)
            .execute()
          await bump(trx, proceeding, now)
          await recordEvent(
            trx,
            {
              type: 'proceeding.updated',
              caseId: found.id,
              data: { case_reference: found.reference, proceeding_id: proceeding.id, hearing_id: hearing.id },
            },
            await partyIds(trx, found.id),
          )
          await recordAudit(trx, request, {
            caseId: found.id,
            resourceType: 'case',
            resourceId: found.id,
            details: { proceeding: proceeding.id, hearing: hearing.id, outcome: request.body.outcome },
          })
          return { status: 200, resourceId: proceeding.id }
        },
        (trx, proceedingId, caller) => render(trx, caller, request.params.caseId, proceedingId),
      )
    },
  } satisfies Partial<Handlers>
}

/** The hearings of the proceedings, with the organisation each one is a deadline for. */
function hearingsOf(db: Kysely<DB> | Transaction<DB>, proceedingIds: string[]) {
  if (proceedingIds.length === 0) return Promise.resolve([])
  return db
    .selectFrom('proceeding_hearings')
    .innerJoin('case_obligations', 'case_obligations.hearing_id', 'proceeding_hearings.id')
    .selectAll('proceeding_hearings')
    .select('case_obligations.responsible_organisation_id')
    .where('proceeding_hearings.proceeding_id', 'in', proceedingIds)
    .orderBy('proceeding_hearings.scheduled_at')
    .orderBy('proceeding_hearings.seq')
    .execute()
}

function presentProceeding(
  row: Proceeding,
  hearings: readonly (ProceedingHearing & { responsible_organisation_id: string })[],
): Schemas['Proceeding'] {
  return {
    id: row.id,
    case_id: row.case_id,
    kind: row.kind,
    country: row.country,
    authority: row.authority,
    reference: row.reference,
    stage: row.stage,
    person_roles: row.person_roles,
    protection_measures: row.protection_measures,
    remote_participation: row.remote_participation,
    notes: row.notes,
    hearings: hearings
      .filter((hearing) => hearing.proceeding_id === row.id)
      .map((hearing) => ({
        id: hearing.id,
        scheduled_at: hearing.scheduled_at.toISOString(),
        purpose: hearing.purpose,
        participation: hearing.participation,
        notes: hearing.notes,
        outcome: hearing.outcome,
        outcome_recorded_at: hearing.outcome_recorded_at?.toISOString() ?? null,
        responsible_organisation_id: hearing.responsible_organisation_id,
        created_at: hearing.created_at.toISOString(),
      })),
    version: row.version,
    etag: etag(row.version),
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    created_by_organisation_id: row.created_by_organisation_id,
  }
}
