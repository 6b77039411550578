import type { Kysely, Transaction } from 'kysely'
import type { components } from '../../openapi/dist/types.js'
import type { ReadAudit } from '../audit/read-audit.js'
import { recordAudit } from '../audit/records.js'
import { runCaseChange } from '../cases/case-change.js'
import type { Clock } from '../clock.js'
import type { DB, SafetyOverride } from '../db/schema.js'
import { safetyNoteReadable } from '../disclosure/policy.js'
import { recordEvent } from '../events/outbox.js'
import { type Caller, requireRole } from '../http/authentication.js'
import type { Handlers } from '../http/contract.js'
import { type Rendered, runMutation } from '../http/mutation.js'
import { decodeCursor, toPage } from '../http/pagination.js'
import { notFound, ProblemError } from '../http/problem.js'
import { findOrganisation } from '../organisations/queries.js'

type Row = SafetyOverride & { case_reference: string }

export interface SafetyDependencies {
  db: Kysely<DB>
  clock: Clock
  readAudit: ReadAudit
}

const DAY_MS = 24 * 60 * 60 * 1000

/** The overrides an organisation made or received; nobody else learns that one exists. */
function overridesOf(db: Kysely<DB> | Transaction<DB>, organisationId: string) {
  return db
    .selectFrom('safety_overrides')
    .innerJoin('cases', 'cases.id', 'safety_overrides.case_id')
    .selectAll('safety_overrides')
    .select('cases.reference as case_reference')
    .where((eb) =>
      eb.or([
        eb('safety_overrides.organisation_id', '=', organisationId),
        eb('safety_overrides.recipient_organisation_id', '=', organisationId),
      ]),
    )
}

export function safetyOverrideHandlers({ db, clock, readAudit }: SafetyDependencies) {
  async function render(
    db: Kysely<DB> | Transaction<DB>,
    caller: Caller,
    overrideId: string,
  ): Promise<Rendered<components['schemas']['SafetyOverride']>> {
    const row = await overridesOf(db, caller.organisation.id)
      .where('safety_overrides.id', '=', overrideId)
      .executeTakeFirst()
    if (!row) throw notFound('safety override', overrideId)
    return { body: present(row, caller.organisation.id, clock.now()) }
  }

  return {
    async requestSafetyOverride(request, reply) {
      const body = request.body
      return runCaseChange(
        db,
        request,
        reply,
        { lead: true },
        async (trx, found, caller) => {
          if (!caller.principal.roles.includes('supervisor')) {
            throw new ProblemError(403, 'Only a supervisor may ask to share safety information without consent.', {
              code: 'forbidden',
            })
          }
          const recipient = await findOrganisation(trx, body.recipient_organisation_id)
          if (!recipient || recipient.kind === 'hub_operator' || recipient.id === caller.organisation.id) {
            throw new ProblemError(422, `Organisation ${body.recipient_organisation_id} is not a partner to warn.`, {
              code: 'unknown-partner',
              extras: { errors: [{ pointer: '#/recipient_organisation_id', detail: 'is not a partner organisation' }] },
            })
          }
          const now = clock.now()
          const created = await trx
            .insertInto('safety_overrides')
            .values({
              case_id: found.id,
              organisation_id: caller.organisation.id,
              recipient_organisation_id: recipient.id,
              reason: body.reason,
              note: body.note,
              requested_by_principal_id: caller.principal.id,
              requested_at: now,
              expires_at: new Date(now.getTime() + (body.expires_in_days ?? 30) * DAY_MS),
            })
            .returningAll()
            .executeTakeFirstOrThrow()
          await recordAudit(trx, request, {
            caseId: found.id,
            resourceType: 'safety_override',
            resourceId: created.id,
            details: { safety_override: true, recipient_organisation_id: recipient.id },
          })
          await recordEvent(
            trx,
            {
              type: 'safety_override.requested',
              caseId: found.id,
              data: {
                case_reference: found.reference,
                override_id: created.id,
                recipient_organisation_id: recipient.id,
                expires_at: created.expires_at.toISOString(),
              },
            },
            [caller.organisation.id],
          )
          return { status: 201, resourceId: created.id, location: `/v1/safety-overrides/${created.id}` }
        },
        (trx, overrideId, caller) => render(trx, caller, overrideId),
      )
    },

    async approveSafetyOverride(request, reply) {
      const caller = requireRole(request, 'supervisor')
      return runMutation(
        db,
        request,
        reply,
        async (trx) => {
          const row = await overridesOf(trx, caller.organisation.id)
            .where('safety_overrides.id', '=', request.params.overrideId)
            .forUpdate('safety_overrides')
            .executeTakeFirst()
          if (!row) throw notFound('safety override', request.params.overrideId)
          if (row.organisation_id !== caller.organisation.id) {
            throw new ProblemError(403, 'Only the organisation that made the override approves it.', {
              code: 'forbidden',
            })
          }
          if (row.requested_by_principal_id === caller.principal.id) {
            throw new ProblemError(403, 'A second supervisor must approve: not the one who asked.', {
              code: 'second-supervisor-required',
            })
          }
          const now = clock.now()
          if (row.approved_at !== null || row.expires_at <= now) {
            throw new ProblemError(409, `The override is ${row.approved_at ? 'already approved' : 'expired'}.`, {
              code: 'invalid-state',
            })
          }
          await trx
            .updateTable('safety_overrides')
            .set({ approved_by_principal_id: caller.principal.id, approved_at: now })
            .where('id', '=', row.id)
            .execute()
          await recordAudit(trx, request, {
            caseId: row.case_id,
            resourceType: 'safety_override',
            resourceId: row.id,
            details: {
              safety_override: true,
              approved: true,
              recipient_organisation_id: row.recipient_organisation_id,
            },
          })
          await recordEvent(
            trx,
            {
              type: 'safety_override.approved',
              caseId: row.case_id,
              data: {
                case_reference: row.case_reference,
                override_id: row.id,
                recipient_organisation_id: row.recipient_organisation_id,
                expires_at: row.expires_at.toISOString(),
              },
            },
            [row.organisation_id, row.recipient_organisation_id],
          )
          return { status: 200, resourceId: row.id }
        },
        (trx, overrideId) => render(trx, caller, overrideId),
      )
    },

    async getSafetyOverride(request) {
      const caller = requireRole(request, 'caseworker', 'supervisor', 'dpo', 'auditor')
      const rendered = await render(db, caller, request.params.overrideId)
      await readAudit.record(request, {
        caseId: rendered.body.case_id,
        resourceType: 'safety_override',
        resourceId: rendered.body.id,
        details: { safety_override: true, note_read: rendered.body.note !== null },
      })
      return rendered.body
    },

    async listSafetyOverrides(request) {
      const caller = requireRole(request, 'supervisor', 'dpo', 'auditor')
      const { limit = 50, cursor } = request.query
      const after = cursor ? decodeCursor(cursor, ['integer'])[0] : undefined
      let query = overridesOf(db, caller.organisation.id)
      if (after) query = query.where('safety_overrides.seq', '<', after)
      const rows = await query
        .orderBy('safety_overrides.seq', 'desc')
        .limit(limit + 1)
        .execute()
      const now = clock.now()
      return toPage(
        rows,
        limit,
        (row) => present(row, caller.organisation.id, now),
        (row) => [String(row.seq)],
      )
    },
  } satisfies Partial<Handlers>
}

function present(row: Row, organisationId: string, now: Date): components['schemas']['SafetyOverride'] {
  const readable = safetyNoteReadable(row, organisationId, now)
  return {
    id: row.id,
    case_id: row.case_id,
    case_reference: row.case_reference,
    organisation_id: row.organisation_id,
    recipient_organisation_id: row.recipient_organisation_id,
    status: row.expires_at <= now ? 'expired' : row.approved_at ? 'approved' : 'pending',
    reason: readable ? row.reason : null,
    note: readable ? row.note : null,
    requested_by_principal_id: row.requested_by_principal_id,
    requested_at: row.requested_at.toISOString(),
    approved_by_principal_id: row.approved_by_principal_id,
    approved_at: row.approved_at?.toISOString() ?? null,
    expires_at: row.expires_at.toISOString(),
  }
}
