import type { FastifyRequest } from 'fastify'
import type { AliasedExpression, ExpressionBuilder, Kysely, Transaction } from 'kysely'
import { jsonArrayFrom } from 'kysely/helpers/postgres'
import { recordAudit } from '../audit/records.js'
import { type CaseKeyColumns, caseKey, sealJson } from '../crypto/case-keys.js'
import { appendTransition } from '../db/appends.js'
import { compiledOnce, type Slot } from '../db/compiled.js'
import type { Case, CaseParty, CaseRecord, CaseRecordRow, Consent, DB, Organisation } from '../db/schema.js'
import { consentStatus } from '../disclosure/consent-scope.js'
import type { CaseDisclosure } from '../disclosure/policy.js'
import { recordEvent } from '../events/outbox.js'
import type { Caller } from '../http/authentication.js'
import { ProblemError } from '../http/problem.js'
import { withMessage } from '../i18n/catalogue.js'
import { addDuration } from '../sops/deadline.js'
import type { PacketOperation, RecordKind, Side, SopDefinition, Step, Transition } from '../sops/definition.js'
import {
  type CaseFacts,
  evaluate,
  openAt,
  pathTo,
  targetStep,
  transitionOperation,
  unmet,
  unmetAlong,
} from '../sops/engine.js'
import type { SopRegistry } from '../sops/registry.js'
import { raiseAlertsAndNotices } from './alerts.js'
import { withdrawConsents } from './consent-withdrawal.js'
import { caseDisclosure } from './disclosure.js'
import { definitionOf } from './procedure-definition.js'
import * as queries from './queries.js'
import { scheduleObligations } from './schedule.js'

type Db = Kysely<DB> | Transaction<DB>

/** The receiving partner of the case: the one that accepted, or else the recipient of the newest enquiry. */
export async function counterpartOf(
  db: Db,
  found: Pick<Case, 'id' | 'receiving_organisation_id'>,
): Promise<string | null> {
  if (found.receiving_organisation_id) return found.receiving_organisation_id
  const newest = await db
    .selectFrom('packets')
    .select('recipient_organisation_id')
    .where('case_id', '=', found.id)
    .where('kind', '=', 'enquiry')
    .where('status', 'not in', ['declined', 'superseded'])
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst()
  return newest?.recipient_organisation_id ?? null
}

/** What the procedure's guards read of a case, as loaded: every consent and every record, opened, and the parties. */
export interface CaseFactsLoaded {
  facts: CaseFacts
  consents: Consent[]
  records: CaseRecord[]
  /** The parties now; a change that adds or removes one says so here, rather than reading them again. */
  parties: CaseParty[]
  /** What the change's own selections (`alsoRead`) gave, by alias, as the database returned it. */
  also: Record<string, unknown>
}

/**
 * More that a change reads besides the facts, selected beside the case in the same statement: its
 * selections, built once with slots (`compiledOnce`), and the values of the slots for this change.
 */
export interface AlsoRead {
  select: (eb: ExpressionBuilder<DB, 'cases'>, slot: Slot) => AliasedExpression<unknown, string>[]
  values: Record<string, unknown>
}

/** The statement that gathers the facts of the case `caseId`, with `also` selections beside them. */
function factsQuery(also?: AlsoRead['select']) {
  return compiledOnce((db, slot) =>
    db
      .selectFrom('cases')
      .select((eb) => [
        jsonArrayFrom(
          eb
            .selectFrom('case_records')
            .selectAll('case_records')
            .whereRef('case_records.case_id', '=', 'cases.id')
            .orderBy('recorded_at')
            .orderBy('id'),
        ).as('records'),
        queries.consentsJson(eb).as('consents'),
        queries.partiesJson(eb).as('parties'),
        eb
          .selectFrom('packets')
          .select('recipient_organisation_id')
          .whereRef('packets.case_id', '=', 'cases.id')
          .where('kind', '=', 'enquiry')
          .where('status', 'not in', ['declined', 'superseded'])
          .orderBy('seq', 'desc')
          .limit(1)
          .as('enquiry_recipient_id'),
      ])
      .select((eb) => also?.(eb, slot) ?? [])
      .where('cases.id', '=', slot('caseId')),
  )
}

const factsAlone = factsQuery()
const factsWith = new Map<AlsoRead['select'], ReturnType<typeof factsQuery>>()

/** The facts' statement with these selections beside them, compiled once for each. */
function factsQueryFor(select?: AlsoRead['select']) {
  if (!select) return factsAlone
  let query = factsWith.get(select)
  if (!query) {
    query = factsQuery(select)
    factsWith.set(select, query)
  }
  return query
}

/**
 * Everything the procedure's guards read about a case, gathered in the transaction of the change
 * in one statement, with the consents and records it was gathered from, for the change to use.
 */
export async function gatherFacts(db: Db, found: Case, now: Date, also?: AlsoRead): Promise<CaseFactsLoaded> {
  const [row] = await factsQueryFor(also?.select)(db, { ...also?.values, caseId: found.id })
  if (!row) throw new Error(`the case ${found.id} went missing under its lock`)
  const counterpartId = found.receiving_organisation_id ?? row.enquiry_recipient_id ?? null
  const records =
    found.erased_at !== null
      ? []
      : row.records.map((record) =>
          openRecord(found, { ...record, recorded_at: new Date(record.recorded_at) } as CaseRecordRow),
        )
  const consents = queries.consentsFromJson(row.consents, found)
  const facts = factsFrom(found, records, consents, counterpartId, now)
  return { facts, consents, records, parties: queries.partiesFromJson(row.parties), also: row }
}

/** What the procedure's guards read, from a case's opened records and its consents: pure, so any reader shares it. */
export function factsFrom(
  found: Case,
  records: CaseRecord[],
  consents: Consent[],
  counterpartId: string | null,
  now: Date,
): CaseFacts {
  const active = consents.filter((c) => consentStatus(c, now) === 'active')
  return {
    step: found.step,
    previousStep: found.previous_step,
    leadSide: found.lead_organisation_id === found.sending_organisation_id ? 'sending' : 'receiving',
    consents: active.map((consent) => ({ guardian: consent.guardian !== null, provisions: consent.provisions })),
    counterpartId,
    assessments: records.flatMap((r) =>
      r.kind === 'assessment' && r.assessment ? [{ id: r.id, kind: r.assessment, side: r.side, data: r.data }] : [],
    ),
    records: new Set(records.flatMap((r) => (r.kind === 'assessment' ? [] : [r.kind as RecordKind]))),
    latestRecords: new Map(
      records.flatMap((r) => (r.kind === 'assessment' ? [] : [[r.kind as RecordKind, { id: r.id, data: r.data }]])),
    ),
  }
}

/** The records of a case, oldest first, opened with the key of the case in hand. */
export async function recordsOf(db: Db, found: Case): Promise<CaseRecord[]> {
  if (found.erased_at !== null) return []
  const rows = await db
    .selectFrom('case_records')
    .selectAll()
    .where('case_id', '=', found.id)
    .orderBy('recorded_at')
    .orderBy('id')
    .execute()
  return rows.map((row) => openRecord(found, row))
}

export function openRecord(keyColumns: CaseKeyColumns, row: CaseRecordRow): CaseRecord {
  return { ...row, data: queries.openSealed(keyColumns, 'case_records.data', row.id, row.data) }
}

/** A new record's data, sealed with the case's key under the record's id. */
export function sealRecordData(found: Case, recordId: string, data: Record<string, unknown>): unknown {
  return found.data_key === null ? data : sealJson(caseKey(found), 'case_records.data', recordId, data)
}

/**
 * The organisation that must act in a step: the sending partner, the receiving partner (the lead
 * while there is none yet), or whichever leads.
 */
export function responsibleOrganisation(
  responsible: Step['responsible'],
  parties: { sendingId: string; counterpartId: string | null; leadId: string },
): string {
  if (responsible === 'sending') return parties.sendingId
  if (responsible === 'receiving') return parties.counterpartId ?? parties.leadId
  return parties.leadId
}

/** When a step entered at `at` falls due: its deadline, counted on the calendar of the organisation responsible for it. */
export async function stepDueAt(
  db: Db,
  step: Step | undefined,
  parties: { sendingId: string; counterpartId: string | null; leadId: string },
  at: Date,
  /** Organisations in hand: the time zone of one of them is not read again. */
  ...known: (Pick<Organisation, 'id' | 'time_zone'> | undefined)[]
): Promise<Date | null> {
  if (!step?.deadline) return null
  const responsibleId = responsibleOrganisation(step.responsible, parties)
  const inHand = known.find((organisation) => organisation?.id === responsibleId)
  const zone =
    inHand?.time_zone ??
    (await db.selectFrom('organisations').select('time_zone').where('id', '=', responsibleId).executeTakeFirstOrThrow())
      .time_zone
  return addDuration(at, step.deadline, zone)
}

/** Which side of the case an organisation acts for: the sender, the current receiving partner, or neither. */
export function sideOf(found: Case, counterpartId: string | null, organisationId: string): Side | null {
  if (organisationId === found.sending_organisation_id) return 'sending'
  if (organisationId === counterpartId) return 'receiving'
  return null
}

/**
 * An action the case's procedure cannot take at its step: where it is open, the way there, and
 * every precondition on that way (and of the action itself) that the case does not meet now.
 */
function notOpen(
  definition: SopDefinition,
  found: Case,
  facts: CaseFacts,
  disclosure: CaseDisclosure,
  action: string,
  what = action,
): ProblemError {
  const open = openAt(definition, action)
  const path = pathTo(definition, found.step, action)
  const where = {
    step: { code: found.step, vocabulary: 'step' },
    action: what,
    open: open.length > 0 ? { or: open.map((step) => ({ code: step, vocabulary: 'step' })) } : { key: 'unmet.no_step' },
  }
  const stepMessage =
    path === undefined
      ? { key: 'unmet.step.unreachable', params: where }
      : path.length > 0
        ? { key: 'unmet.step.reached_by', params: { ...where, path: path.join(', ') } }
        : { key: 'unmet.step', params: where }
  return new ProblemError(409, `${what} is not open at the step ${found.step}.`, {
    code: 'action-not-open',
    extras: {
      open_at: open,
      path: path ?? [],
      unmet: [
        withMessage({ code: 'step' }, stepMessage),
        ...disclosure.unmet(unmetAlong(definition, facts, [...(path ?? []), action])),
      ],
    },
  })
}

export interface OpenTransition {
  definition: SopDefinition
  facts: CaseFacts
  transition: Transition
  /** The case's consents and records the facts were gathered from, as they were before the change. */
  loaded: Omit<CaseFactsLoaded, 'facts'>
}

/**
 * The transition an action or a packet operation takes from the case's step, checked against the
 * procedure for this caller: 422 for an action the procedure does not know, 409 with `open_at` and
 * `path` where the step is wrong, 409 with every unmet precondition where its guards fail.
 */
export async function openTransition(
  trx: Transaction<DB>,
  sops: SopRegistry,
  found: Case,
  caller: Caller,
  wanted: { action: string } | { operation: PacketOperation },
  now: Date,
  options: {
    /** The receiving partner a first enquiry is about to go to, while the case has none. */
    recipientId?: string
    /** The facts, when the change gathered them already (with what else it read beside them). */
    loaded?: CaseFactsLoaded
  } = {},
): Promise<OpenTransition> {
  const definition = definitionOf(sops, found)
  const matches = (t: Transition) =>
    'action' in wanted ? t.action === wanted.action : t.exchange?.operation === wanted.operation
  if ('action' in wanted && !definition.transitions.some(matches)) {
    const valid = [...new Set(definition.transitions.map((t) => t.action))]
    throw new ProblemError(422, `${wanted.action} is not an action of ${definition.id}.`, {
      code: 'unknown-action',
      extras: {
        errors: [{ pointer: '#/action', detail: `must be one of ${valid.join(', ')}` }],
        valid_actions: valid,
      },
    })
  }
  const { facts: gathered, ...loaded } = options.loaded ?? (await gatherFacts(trx, found, now))
  const facts = { ...gathered, counterpartId: gathered.counterpartId ?? options.recipientId ?? null }
  const transition = definition.transitions.find((t) => matches(t) && t.from.includes(found.step))
  if (!transition) {
    const disclosure = await caseDisclosure(trx, sops, found, caller.organisation.id, now)
    if ('action' in wanted) throw notOpen(definition, found, facts, disclosure, wanted.action)
    const actions = definition.transitions.filter(matches).map((t) => t.action)
    const nearest = actions
      .map((action) => ({ action, path: pathTo(definition, found.step, action) }))
      .sort((a, b) => (a.path?.length ?? 99) - (b.path?.length ?? 99))[0]
    throw notOpen(
      definition,
      found,
      facts,
      disclosure,
      nearest?.action ?? wanted.operation,
      `${wanted.operation} (${actions.join(', ')})`,
    )
  }
  if ('action' in wanted && transition.exchange) {
    const operation = transitionOperation(transition)
    throw new ProblemError(409, `${wanted.action} exchanges a packet: take it through ${operation}.`, {
      code: 'packet-operation',
      extras: { unmet: [unmet('operation', 'unmet.operation', { action: wanted.action, operation })] },
    })
  }
  const actor = { side: sideOf(found, facts.counterpartId, caller.organisation.id), roles: caller.principal.roles }
  const refused = evaluate(definition, facts, actor).refused.find((option) => option.action === transition.action)
  if (refused) {
    throw new ProblemError(409, `${transition.action} cannot be taken now.`, {
      code: 'preconditions-unmet',
      extras: { unmet: (await caseDisclosure(trx, sops, found, caller.organisation.id, now)).unmet(refused.unmet) },
    })
  }
  return { definition, facts, transition, loaded }
}

export interface TransitionInput {
  note?: string | undefined
  reason?: string | undefined
  review_date?: string | undefined
  /** The receiving partner a first enquiry goes to, which becomes the counterpart. */
  counterpartId?: string
  /** The receiving partner, when the caller holds it already. */
  counterpart?: Pick<Organisation, 'id' | 'time_zone'>
}

/**
 * Takes an open transition: moves the case to its next step (or keeps it where `$current`), hands
 * the lead over, applies the effects, raises its alerts and notifies the authorities it names, and
 * writes the timeline entry, the events and the audit record, all in the caller's transaction.
 */
export async function applyTransition(
  trx: Transaction<DB>,
  request: FastifyRequest,
  caller: Caller,
  found: Case,
  open: OpenTransition,
  input: TransitionInput,
  now: Date,
): Promise<Case> {
  const { definition, facts, transition } = open
  const missing = (transition.inputs ?? []).filter((name) => input[name] === undefined)
  if (missing.length > 0) {
    throw new ProblemError(422, `${transition.action} needs ${missing.join(' and ')}.`, { code: 'input-required' })
  }
  const to = targetStep(transition, facts)
  const counterpartId = input.counterpartId ?? facts.counterpartId
  const handover = transition.effects?.includes('lead_to_receiving')
  if (handover && !counterpartId) {
    throw new ProblemError(409, 'There is no receiving partner to hand over to.', { code: 'no-receiving-partner' })
  }
  const lead = handover && counterpartId ? counterpartId : found.lead_organisation_id
  const stays = transition.to === '$current'
  const dueAt = input.review_date
    ? new Date(`${input.review_date}T00:00:00Z`)
    : await stepDueAt(
        trx,
        definition.steps[to],
        { sendingId: found.sending_organisation_id, counterpartId: counterpartId ?? null, leadId: lead },
        now,
        caller.organisation,
        input.counterpart,
      )
  const changed = await queries.changeCase(
    trx,
    found,
    {
      ...(stays ? {} : { step: { step: to, previous: found.step, enteredAt: now, dueAt } }),
      lead_organisation_id: lead,
      ...(transition.effects?.includes('full_referral') ? { receiving_organisation_id: caller.organisation.id } : {}),
      at: now,
    },
    { putOff: true },
  )
  const entered = definition.steps[to]
  if (!stays && entered?.schedule) await scheduleObligations(trx, changed, to, entered, counterpartId, now)
  if (transition.effects?.includes('withdraw_consents')) {
    await withdrawConsents(trx, found, open.loaded.consents, {
      principalId: caller.principal.id,
      reason: input.reason ?? null,
      at: now,
    })
  }
  await appendTransition(trx, {
    case_id: found.id,
    action: transition.action,
    from_step: found.step,
    to_step: to,
    at: now,
    principal_id: caller.principal.id,
    organisation_id: caller.organisation.id,
    lead_organisation_id: lead,
    note: input.note ?? null,
    reason: input.reason ?? null,
    review_date: input.review_date ?? null,
  })
  const parties = open.loaded.parties.map((party) => party.organisation_id)
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
  const notified = await raiseAlertsAndNotices(trx, transition, {
    found: changed,
    counterpartId,
    action: transition.action,
    step: to,
    parties,
    now,
  })
  await recordAudit(trx, request, {
    caseId: found.id,
    resourceType: 'case',
    resourceId: found.id,
    details: {
      action: transition.action,
      from: found.step,
      to,
      lead_organisation_id: lead,
      ...(notified.length > 0 ? { notified_organisation_ids: notified } : {}),
    },
  })
  return changed
}
