import type { Transaction } from 'kysely'
import type { Case, DB, NewEscalation } from '../db/schema.js'
import { recordEvent } from '../events/outbox.js'
import type { Notification, Transition } from '../sops/definition.js'

/** What an authority is told, or would have been: of what, which kind of organisation, in which country. */
interface NoticeAbout {
  notification: Notification['about']
  organisation_kind: Notification['organisation_kind']
  country?: string
}

/** The case as the transition left it, and who the receiving side is (the one that accepted, or the enquiry's recipient). */
export interface AlertContext {
  found: Case
  counterpartId: string | null
  action: string
  step: string
  parties: readonly string[]
  now: Date
}

/**
 * What a transition tells beyond the case's parties: an alert to both sides at once
 * (`alert_both_sides`), and the authorities its `notify` names, looked up in the directory by kind
 * and country. An authority learns that the transition happened and whom to contact, in an event
 * of its feed; it is no party to the case, so it reads nothing of it. Where the directory holds no
 * such authority, both sides are told so by an escalation. Answers the organisations notified.
 */
export async function raiseAlertsAndNotices(
  trx: Transaction<DB>,
  transition: Transition,
  context: AlertContext,
): Promise<string[]> {
  if (transition.effects?.includes('alert_both_sides')) {
    await escalateAtOnce(trx, context, { kind: 'exit_alert' })
  }
  const notified: string[] = []
  for (const notice of transition.notify ?? []) {
    const country = await countryOf(trx, context, notice)
    const authorities = country
      ? await trx
          .selectFrom('organisations')
          .select('id')
          .where('kind', '=', notice.organisation_kind)
          .where('country', '=', country)
          .orderBy('id')
          .execute()
      : []
    const about: NoticeAbout = {
      notification: notice.about,
      organisation_kind: notice.organisation_kind,
      ...(country ? { country } : {}),
    }
    if (authorities.length === 0) {
      await escalateAtOnce(trx, context, { kind: 'notification_undelivered', about })
      continue
    }
    const ids = authorities.map((authority) => authority.id)
    const { found } = context
    await recordEvent(
      trx,
      {
        type: 'case.authority_notified',
        caseId: found.id,
        data: {
          case_reference: found.reference,
          action: context.action,
          step: context.step,
          ...about,
          notified_organisation_ids: ids,
          lead_organisation_id: found.lead_organisation_id,
          sending_organisation_id: found.sending_organisation_id,
          receiving_organisation_id: context.counterpartId,
        },
      },
      [...ids, ...context.parties],
    )
    notified.push(...ids)
  }
  return notified
}

/** The country a notification names: of the sending partner, the receiving partner (else the country of return), or the lead. */
async function countryOf(trx: Transaction<DB>, { found, counterpartId }: AlertContext, notice: Notification) {
  const organisationId =
    notice.country === 'sending'
      ? found.sending_organisation_id
      : notice.country === 'lead'
        ? found.lead_organisation_id
        : counterpartId
  if (!organisationId) return found.profile.country_of_return ?? null
  const organisation = await trx
    .selectFrom('organisations')
    .select('country')
    .where('id', '=', organisationId)
    .executeTakeFirst()
  return organisation?.country ?? null
}

/** An escalation raised with the transition, for the lead and both sides' supervisors, and its event. */
async function escalateAtOnce(
  trx: Transaction<DB>,
  { found, counterpartId, step, now }: AlertContext,
  escalation: Pick<NewEscalation, 'kind'> & { about?: NoticeAbout },
): Promise<void> {
  const responsibleId = found.lead_organisation_id
  const inserted = await trx
    .insertInto('escalations')
    .values({
      kind: escalation.kind,
      case_id: found.id,
      step,
      due_at: now,
      responsible_organisation_id: responsibleId,
      withdrawal_notice_id: null,
      raised_at: now,
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  await recordEvent(
    trx,
    {
      type: 'escalation.raised',
      caseId: found.id,
      data: {
        case_reference: found.reference,
        escalation_id: inserted.id,
        escalation_kind: escalation.kind,
        step,
        due_at: now.toISOString(),
        responsible_organisation_id: responsibleId,
        ...escalation.about,
      },
    },
    [
      responsibleId,
      found.sending_organisation_id,
      ...(found.receiving_organisation_id ? [found.receiving_organisation_id] : []),
      ...(counterpartId ? [counterpartId] : []),
    ],
  )
}
