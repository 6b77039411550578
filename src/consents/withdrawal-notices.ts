import type { Kysely, Transaction } from 'kysely'
import type { components } from '../../openapi/dist/types.js'
import { recordAudit } from '../audit/records.js'
import { findCase } from '../cases/queries.js'
import type { Clock } from '../clock.js'
import type { DB, WithdrawalNotice } from '../db/schema.js'
import { recordEvent } from '../events/outbox.js'
import { actingRoles, readingRoles, requireRole } from '../http/authentication.js'
import type { Handlers } from '../http/contract.js'
import { runMutation } from '../http/mutation.js'
import { decodeCursor, toPage } from '../http/pagination.js'
import { notFound } from '../http/problem.js'

type NoticeRow = WithdrawalNotice & { case_reference: string }

export function withdrawalNoticeHandlers({ db, clock }: { db: Kysely<DB>; clock: Clock }) {
  return {
    async listWithdrawalNotices(request) {
      const caller = requireRole(request, ...readingRoles)
      const { status, limit = 50, cursor } = request.query
      const after = cursor ? decodeCursor(cursor, ['integer'])[0] : undefined
      let query = noticesOf(db, caller.organisation.id)
      if (status === 'pending') query = query.where('withdrawal_notices.acknowledged_at', 'is', null)
      if (status === 'acknowledged') query = query.where('withdrawal_notices.acknowledged_at', 'is not', null)
      if (after) query = query.where('withdrawal_notices.seq', '<', after)
      const rows = await query
        .orderBy('withdrawal_notices.seq', 'desc')
        .limit(limit + 1)
        .execute()
      return toPage(rows, limit, presentNotice, (row) => [String(row.seq)])
    },

    async acknowledgeWithdrawal(request, reply) {
      const caller = requireRole(request, ...actingRoles)
      const organisationId = caller.organisation.id
      return runMutation(
        db,
        request,
        reply,
        async (trx) => {
          const notice = await noticesOf(trx, organisationId)
            .where('withdrawal_notices.id', '=', request.params.noticeId)
            .forUpdate('withdrawal_notices')
            .executeTakeFirst()
          if (!notice) throw notFound('withdrawal notice', request.params.noticeId)
          if (notice.acknowledged_at === null) {
            const { action, note } = request.body
            await trx
              .updateTable('withdrawal_notices')
              .set({
                acknowledged_at: clock.now(),
                acknowledged_by_principal_id: caller.principal.id,
                acknowledgement_action: action,
                acknowledgement_note: note ?? null,
              })
              .where('id', '=', notice.id)
              .execute()
            await recordAudit(trx, request, {
              caseId: notice.case_id,
              ...(notice.consent_id === null
                ? { resourceType: 'case', resourceId: notice.case_id }
                : { resourceType: 'consent', resourceId: notice.consent_id }),
              details: { withdrawal_notice_id: notice.id, action },
            })
            const found = await findCase(trx, notice.case_id)
            await recordEvent(
              trx,
              {
                type: 'consent.withdrawal_acknowledged',
                caseId: notice.case_id,
                data: {
                  case_reference: notice.case_reference,
                  ...(notice.consent_id === null ? {} : { consent_id: notice.consent_id }),
                  notice_id: notice.id,
                  organisation_id: organisationId,
                  withdrawal_action: action,
                },
              },
              [organisationId, ...(found ? [found.lead_organisation_id, found.sending_organisation_id] : [])],
            )
          }
          return { status: 200, resourceId: notice.id }
        },
        async (trx, noticeId) => {
          const notice = await noticesOf(trx, organisationId)
            .where('withdrawal_notices.id', '=', noticeId)
            .executeTakeFirst()
          if (!notice) throw notFound('withdrawal notice', noticeId)
          return { body: presentNotice(notice) }
        },
      )
    },
  } satisfies Partial<Handlers>
}

/** The notices addressed to an organisation: no one else learns of them. */
function noticesOf(db: Kysely<DB> | Transaction<DB>, organisationId: string) {
  return db
    .selectFrom('withdrawal_notices')
    .innerJoin('cases', 'cases.id', 'withdrawal_notices.case_id')
    .selectAll('withdrawal_notices')
    .select('cases.reference as case_reference')
    .where('withdrawal_notices.organisation_id', '=', organisationId)
}

function presentNotice(row: NoticeRow): components['schemas']['WithdrawalNotice'] {
  return {
    id: row.id,
    case_id: row.case_id,
    case_reference: row.case_reference,
    consent_id: row.consent_id,
    cause: row.cause,
    organisation_id: row.organisation_id,
    categories: row.categories,
    withdrawn_at: row.withdrawn_at.toISOString(),
    acknowledge_by: row.acknowledge_by.toISOString(),
    status: row.acknowledged_at === null ? 'pending' : 'acknowledged',
    acknowledgement:
      row.acknowledged_at === null || row.acknowledgement_action === null || row.acknowledged_by_principal_id === null
        ? null
        : {
            action: row.acknowledgement_action,
            note: row.acknowledgement_note,
            at: row.acknowledged_at.toISOString(),
            principal_id: row.acknowledged_by_principal_id,
          },
  }
}
