import { randomUUID } from 'node:crypto'
import type { Insertable, Kysely, Transaction } from 'kysely'
import type { components } from '../../openapi/dist/types.js'
import { sealRecordData } from '../cases/procedure.js'
import { insertCase, sealWithdrawalReason } from '../cases/queries.js'
import { insertConsent } from '../consents/queries.js'
import {
  type CaseProfile,
  type CaseRecord,
  type CaseTransitionTable,
  type DataCategory,
  type DB,
  json,
  type Purpose,
} from '../db/schema.js'
import { addDuration } from '../sops/deadline.js'
import { figuresOf } from '../sops/records.js'
import type { SopRegistry } from '../sops/registry.js'
import { demoOrganisations, demoOrganisationIds as ORG } from './demo-data.js'

/** One move of a historic case: the action, the step it led to, when, and which side took it. */
export interface HistoricMove {
  action: string
  to: string
  at: Date
  by: 'sending' | 'receiving'
  reason?: string
}

export interface HistoricRecord {
  kind: CaseRecord['kind']
  assessment?: NonNullable<CaseRecord['assessment']>
  category: DataCategory
  side: 'sending' | 'receiving'
  data: Record<string, unknown>
  at: Date
}

/** A case as it would stand after these moves, written straight into the tables the API keeps. */
export interface HistoricCase {
  profile: CaseProfile
  sendingOrganisationId: string
  receivingOrganisationId: string
  sop: { id: string; version: number }
  openedAt: Date
  /** The purposes of the consent given when the return was decided (none: no consent). */
  purposes: Purpose[]
  consentAt?: Date
  consentWithdrawnAt?: Date
  moves: HistoricMove[]
  /** Steps that outlived their deadline: an escalation fell due at each step's deadline. */
  overdueSteps?: string[]
  records?: HistoricRecord[]
}

/** The receiving partner is a party to the case from its acknowledgement, and receives the case on acceptance. */
const RECEIVING_FROM = new Set(['acknowledge_referral'])
const RECEIVED_ON = new Set(['accept_referral'])
const LEAD_MOVES_ON = new Set(['confirm_arrival'])

function firstPrincipal(organisationId: string): string {
  const principal = demoOrganisations.find((organisation) => organisation.id === organisationId)?.principals[0]
  if (!principal) throw new Error(`no demo principal in ${organisationId}`)
  return principal.id
}

/** Writes one historic case: the case, its consent, its transitions, escalations, records and current step. */
export async function insertHistoricCase(trx: Transaction<DB>, sops: SopRegistry, spec: HistoricCase): Promise<string> {
  const definition = sops.find(spec.sop.id, spec.sop.version)
  if (!definition) throw new Error(`no procedure ${spec.sop.id}@${spec.sop.version}`)
  const sendingPrincipal = firstPrincipal(spec.sendingOrganisationId)
  const receivingPrincipal = firstPrincipal(spec.receivingOrganisationId)
  const sendingCountry =
    demoOrganisations.find((organisation) => organisation.id === spec.sendingOrganisationId)?.country ?? 'PL'
  const initial = definition.initial_step
  const created = await insertCase(trx, {
    profile: spec.profile,
    sections: {},
    sendingOrganisationId: spec.sendingOrganisationId,
    sendingCountry,
    principalId: sendingPrincipal,
    procedure: { id: spec.sop.id, version: spec.sop.version, step: initial, dueAt: null },
    at: spec.openedAt,
  })
  let consentId: string | undefined
  if (spec.purposes.length > 0) {
    const consent = await insertConsent(trx, created, {
      caseId: created.id,
      consent: {
        given_at: (spec.consentAt ?? spec.openedAt).toISOString(),
        method: 'written',
        language: 'en',
        interpreter: { used: false },
        provisions: [
          {
            categories: ['travel', 'reintegration'],
            recipients: [spec.receivingOrganisationId],
            purposes: spec.purposes,
          },
        ],
        informed_of_transfer_risks: true,
      },
      principalId: sendingPrincipal,
      organisationId: spec.sendingOrganisationId,
    })
    consentId = consent.id
  }
  let step = initial
  let entered = spec.openedAt
  let lead = spec.sendingOrganisationId
  let receiving: string | null = null
  let party = false
  let previous: string | null = null
  const transitions: Insertable<CaseTransitionTable>[] = []
  for (const move of spec.moves) {
    if (RECEIVING_FROM.has(move.action) && !party) {
      party = true
      await trx
        .insertInto('case_parties')
        .values({
          case_id: created.id,
          organisation_id: spec.receivingOrganisationId,
          role: 'receiving',
          since: move.at,
        })
        .execute()
    }
    if (RECEIVED_ON.has(move.action)) receiving = spec.receivingOrganisationId
    if (LEAD_MOVES_ON.has(move.action)) lead = spec.receivingOrganisationId
    if (spec.overdueSteps?.includes(step)) {
      await insertOverdue(trx, definition.steps[step]?.deadline, created.id, step, entered, responsibleFor(step))
    }
    transitions.push({
      case_id: created.id,
      action: move.action,
      from_step: step,
      to_step: move.to,
      at: move.at,
      principal_id: move.by === 'sending' ? sendingPrincipal : receivingPrincipal,
      organisation_id: move.by === 'sending' ? spec.sendingOrganisationId : spec.receivingOrganisationId,
      lead_organisation_id: lead,
      note: null,
      reason: move.reason ?? null,
      review_date: null,
    })
    previous = step
    step = move.to
    entered = move.at
  }
  // In the order they happened: the table's identity orders a case's transitions.
  if (transitions.length > 0) await trx.insertInto('case_transitions').values(transitions).execute()
  const deadline = definition.steps[step]?.terminal ? undefined : definition.steps[step]?.deadline
  if (spec.overdueSteps?.includes(step) && deadline) {
    await insertOverdue(trx, deadline, created.id, step, entered, responsibleFor(step))
  }
  await trx
    .updateTable('cases')
    .set({
      step,
      previous_step: previous,
      step_entered_at: entered,
      step_due_at: deadline ? addDuration(entered, deadline) : null,
      lead_organisation_id: lead,
      receiving_organisation_id: receiving,
      updated_at: entered,
    })
    .where('id', '=', created.id)
    .execute()
  if (spec.records && spec.records.length > 0) {
    await trx
      .insertInto('case_records')
      .values(
        spec.records.map((record) => {
          const figures = figuresOf(record.kind, record.data)
          const id = randomUUID()
          return {
            id,
            case_id: created.id,
            kind: record.kind,
            assessment: record.assessment ?? null,
            category: record.category,
            side: record.side,
            data: json(sealRecordData(created, id, record.data)),
            figures: figures ? json(figures) : null,
            recorded_at: record.at,
            recorded_by_principal_id: record.side === 'sending' ? sendingPrincipal : receivingPrincipal,
            recorded_by_organisation_id:
              record.side === 'sending' ? spec.sendingOrganisationId : spec.receivingOrganisationId,
          }
        }),
      )
      .execute()
  }
  if (consentId && spec.consentWithdrawnAt) {
    const at = spec.consentWithdrawnAt
    await trx
      .updateTable('consents')
      .set({
        withdrawn_at: at,
        withdrawal_reason: sealWithdrawalReason(created, consentId, 'The person chose to stop (fictitious).'),
        withdrawn_by_principal_id: sendingPrincipal,
      })
      .where('id', '=', consentId)
      .execute()
    await trx
      .insertInto('withdrawal_notices')
      .values({
        consent_id: consentId,
        case_id: created.id,
        cause: 'withdrawn',
        organisation_id: spec.receivingOrganisationId,
        categories: ['travel', 'reintegration'],
        withdrawn_at: at,
        acknowledge_by: addDuration(at, 'P7D'),
      })
      .execute()
  }
  return created.id

  function responsibleFor(name: string): string {
    const responsible = definition?.steps[name]?.responsible
    if (responsible === 'receiving') return spec.receivingOrganisationId
    if (responsible === 'lead') return lead
    return spec.sendingOrganisationId
  }
}

async function insertOverdue(
  trx: Transaction<DB>,
  deadline: string | undefined,
  caseId: string,
  step: string,
  entered: Date,
  responsibleOrganisationId: string,
): Promise<void> {
  if (!deadline) return
  const dueAt = addDuration(entered, deadline)
  await trx
    .insertInto('escalations')
    .values({
      kind: 'step_deadline',
      case_id: caseId,
      step,
      due_at: dueAt,
      responsible_organisation_id: responsibleOrganisationId,
      raised_at: new Date(dueAt.getTime() + 60_000),
    })
    .execute()
}

// ─── The demo history ────────────────────────────────────────────────────────────────────────

/** A small deterministic generator (mulberry32), so that every fresh demo database holds the same history. */
function seeded(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const DAY = 86_400_000

/** The straight path of both procedures, with the side that takes each move and a typical time in the step before it. */
const STRAIGHT_PATH: { action: string; to: string; by: 'sending' | 'receiving'; days: number }[] = [
  { action: 'decide_return', to: 'return_decided', by: 'sending', days: 18 },
  { action: 'send_referral', to: 'referral_sent', by: 'sending', days: 9 },
  { action: 'acknowledge_referral', to: 'acknowledged', by: 'receiving', days: 3 },
  { action: 'accept_referral', to: 'accepted', by: 'receiving', days: 14 },
  { action: 'confirm_ready', to: 'ready_to_travel', by: 'sending', days: 20 },
  { action: 'confirm_departure', to: 'departed', by: 'sending', days: 9 },
  { action: 'confirm_arrival', to: 'arrived', by: 'receiving', days: 1 },
  { action: 'finalise_plan', to: 'reintegration', by: 'receiving', days: 24 },
  { action: 'close', to: 'closed', by: 'receiving', days: 340 },
]

const CORRIDORS = [
  { receiving: ORG.iomUkraine, country: 'UA', weight: 0.6 },
  { receiving: ORG.iomAlbania, country: 'AL', weight: 0.25 },
  { receiving: ORG.iomMorocco, country: 'MA', weight: 0.15 },
]

const ADULT_BANDS = ['18_24', '25_34', '35_49', '50_64'] as const
const SEXES = ['female', 'female', 'male', 'undisclosed'] as const

/** How many cases the demo history holds. */
const DEMO_HISTORY_CASES = 90

/**
 * Two years of fictitious history for the demo (every person, case and training in it is made
 * up): cases at every step of both procedures, some overdue and escalated, a withdrawn consent
 * with its notice, a child's return blocked on a safeguard, closures with coded reasons and
 * sustainability scores, and trainings. The same on every fresh database: generated from a seed.
 */
export function demoHistory(now: Date): { cases: HistoricCase[]; trainings: DemoTraining[] } {
  const random = seeded(20_260_101)
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T
  const cases: HistoricCase[] = []
  for (let i = 0; i < DEMO_HISTORY_CASES; i++) {
    const roll = random()
    const corridor = roll < 0.6 ? CORRIDORS[0] : roll < 0.85 ? CORRIDORS[1] : CORRIDORS[2]
    const { receiving, country } = corridor ?? { receiving: ORG.iomUkraine, country: 'UA' }
    const child = random() < 0.2
    const openedAt = new Date(now.getTime() - Math.floor(random() * 730) * DAY - Math.floor(random() * 8) * 3_600_000)
    const moves: HistoricMove[] = []
    const overdueSteps: string[] = []
    const records: HistoricRecord[] = []
    let at = openedAt
    let step = 'identified'
    for (const next of STRAIGHT_PATH) {
      const late = random() < 0.12
      const days = late ? next.days * 2.5 : next.days * (0.4 + random() * 0.9)
      const leaves = new Date(at.getTime() + days * DAY + Math.floor(random() * 20) * 3_600_000)
      if (leaves > now) break
      if (late) overdueSteps.push(step)
      if (next.to === 'closed') {
        const sustainable = random() < 0.7
        const score = () => Math.round((sustainable ? 0.66 + random() * 0.34 : 0.3 + random() * 0.5) * 100) / 100
        records.push(
          {
            kind: 'sustainability_score',
            category: 'reintegration',
            side: 'receiving',
            data: { economic: score(), social: score(), psychosocial: score(), summary: 'Fictitious score.' },
            at: new Date(leaves.getTime() - 2 * DAY),
          },
          {
            kind: 'closure_report',
            category: 'reintegration',
            side: 'receiving',
            data: { summary: 'Fictitious final report.', reason: random() < 0.85 ? 'completed' : 'lost_contact' },
            at: new Date(leaves.getTime() - DAY),
          },
        )
      }
      moves.push({ action: next.action, to: next.to, at: leaves, by: next.by })
      at = leaves
      step = next.to
    }
    // A step still open past its deadline is overdue now.
    const stillOverdue = step !== 'closed' && random() < 0.15
    if (stillOverdue) overdueSteps.push(step)
    cases.push({
      profile: {
        country_of_return: country,
        age_band: child ? pick(['under_14', '14_17'] as const) : pick(ADULT_BANDS),
        sex: pick(SEXES),
        vulnerabilities: child ? ['victim_of_trafficking', 'child'] : ['victim_of_trafficking'],
      },
      sendingOrganisationId: random() < 0.8 ? ORG.iomPoland : ORG.borderGuardPoland,
      receivingOrganisationId: receiving,
      sop: { id: child ? 'child-return' : 'adult-return', version: 2 },
      openedAt,
      purposes:
        random() < 0.92
          ? ['return_assistance', 'reintegration', 'monitoring', 'statistics']
          : ['return_assistance', 'reintegration'],
      consentAt: new Date(openedAt.getTime() + DAY),
      moves,
      overdueSteps,
      records,
    })
  }
  cases.push(...exits(now))
  return { cases, trainings: demoTrainings(now) }
}

/** One case for each exit of both procedures, and the cases practice asks about beyond the straight path. */
function exits(now: Date): HistoricCase[] {
  const adults = adultExits(now)
  // The same exits for a child, a fortnight earlier, on the child's procedure.
  const shift = (at: Date) => new Date(at.getTime() - 14 * DAY)
  const children = adults
    .filter((spec) => spec.sop.id === 'adult-return' && !spec.moves.some((move) => move.to === 'declined'))
    .map(
      (spec): HistoricCase => ({
        ...spec,
        profile: { ...spec.profile, age_band: '14_17', vulnerabilities: ['victim_of_trafficking', 'child'] },
        sop: { id: 'child-return', version: 2 },
        openedAt: shift(spec.openedAt),
        moves: spec.moves.map((move) => ({ ...move, at: shift(move.at) })),
        records: spec.records?.map((record) => ({ ...record, at: shift(record.at) })),
        ...(spec.consentWithdrawnAt ? { consentWithdrawnAt: shift(spec.consentWithdrawnAt) } : {}),
      }),
    )
  return [...adults, ...children]
}

function adultExits(now: Date): HistoricCase[] {
  const days = (n: number) => new Date(now.getTime() - n * DAY)
  const all: Purpose[] = ['return_assistance', 'reintegration', 'monitoring', 'statistics']
  const adult = (country_of_return: string): CaseProfile => ({
    country_of_return,
    age_band: '25_34',
    sex: 'female',
    vulnerabilities: ['victim_of_trafficking'],
  })
  const child: CaseProfile = {
    country_of_return: 'UA',
    age_band: '14_17',
    sex: 'female',
    vulnerabilities: ['victim_of_trafficking', 'child'],
  }
  const base = {
    sendingOrganisationId: ORG.iomPoland,
    receivingOrganisationId: ORG.iomUkraine,
    purposes: all,
  }
  const adultSop = { id: 'adult-return', version: 2 }
  const childSop = { id: 'child-return', version: 2 }
  const toAccepted = (from: number, by = 3): HistoricMove[] => [
    { action: 'decide_return', to: 'return_decided', at: days(from - by), by: 'sending' },
    { action: 'send_referral', to: 'referral_sent', at: days(from - 2 * by), by: 'sending' },
    { action: 'acknowledge_referral', to: 'acknowledged', at: days(from - 3 * by), by: 'receiving' },
    { action: 'accept_referral', to: 'accepted', at: days(from - 4 * by), by: 'receiving' },
  ]
  return [
    // The person withdrew: the consent with it, and the receiving partner was told to delete its copies.
    {
      ...base,
      profile: adult('UA'),
      sop: adultSop,
      openedAt: days(200),
      moves: [
        ...toAccepted(200, 10),
        {
          action: 'withdraw',
          to: 'withdrawn',
          at: days(150),
          by: 'sending',
          reason: 'The person chose to stay (fictitious).',
        },
      ],
      consentWithdrawnAt: days(150),
    },
    // A child's return blocked on a safeguard: the family assessment is pending, the step is overdue.
    {
      ...base,
      profile: child,
      sop: childSop,
      openedAt: days(120),
      moves: toAccepted(120, 6),
      overdueSteps: ['accepted'],
      records: [
        {
          kind: 'assessment',
          assessment: 'family',
          category: 'family',
          side: 'receiving',
          data: { outcome: 'pending', summary: 'Fictitious: family tracing still under way.' },
          at: days(90),
        },
      ],
    },
    // Information asked for, then a decline, and a referral to another partner.
    {
      ...base,
      profile: adult('AL'),
      receivingOrganisationId: ORG.iomAlbania,
      sop: adultSop,
      openedAt: days(300),
      moves: [
        { action: 'decide_return', to: 'return_decided', at: days(290), by: 'sending' },
        { action: 'send_referral', to: 'referral_sent', at: days(285), by: 'sending' },
        { action: 'acknowledge_referral', to: 'acknowledged', at: days(283), by: 'receiving' },
        { action: 'request_information', to: 'information_requested', at: days(275), by: 'receiving' },
        { action: 'answer_information', to: 'acknowledged', at: days(270), by: 'sending' },
        { action: 'decline_referral', to: 'declined', at: days(260), by: 'receiving', reason: 'no_capacity' },
      ],
    },
    {
      ...base,
      profile: adult('UA'),
      sop: adultSop,
      openedAt: days(40),
      moves: [
        { action: 'decide_return', to: 'return_decided', at: days(35), by: 'sending' },
        { action: 'send_referral', to: 'referral_sent', at: days(33), by: 'sending' },
        { action: 'acknowledge_referral', to: 'acknowledged', at: days(31), by: 'receiving' },
        { action: 'request_information', to: 'information_requested', at: days(20), by: 'receiving' },
      ],
    },
    // On hold while proceedings run.
    {
      ...base,
      profile: adult('UA'),
      sop: adultSop,
      openedAt: days(100),
      moves: [
        { action: 'decide_return', to: 'return_decided', at: days(90), by: 'sending' },
        { action: 'put_on_hold', to: 'on_hold', at: days(80), by: 'sending', reason: 'Proceedings (fictitious).' },
      ],
    },
    // Cancelled by the sender.
    {
      ...base,
      profile: adult('MA'),
      receivingOrganisationId: ORG.iomMorocco,
      sop: adultSop,
      openedAt: days(500),
      moves: [
        { action: 'decide_return', to: 'return_decided', at: days(490), by: 'sending' },
        { action: 'cancel', to: 'cancelled', at: days(480), by: 'sending', reason: 'Fictitious.' },
      ],
    },
    // A no-show, still open.
    {
      ...base,
      profile: adult('UA'),
      sop: adultSop,
      openedAt: days(90),
      moves: [
        ...toAccepted(90, 5),
        { action: 'confirm_ready', to: 'ready_to_travel', at: days(60), by: 'sending' },
        { action: 'report_no_show', to: 'no_show', at: days(50), by: 'sending' },
      ],
    },
    // Missing after departure.
    {
      ...base,
      profile: adult('UA'),
      sop: adultSop,
      openedAt: days(150),
      moves: [
        ...toAccepted(150, 5),
        { action: 'confirm_ready', to: 'ready_to_travel', at: days(120), by: 'sending' },
        { action: 'confirm_departure', to: 'departed', at: days(110), by: 'sending' },
        { action: 'report_missing', to: 'missing', at: days(108), by: 'sending' },
      ],
    },
    // Re-trafficking suspected during reintegration, then closed with the coded reason.
    ...[400, 330].map(
      (start, index): HistoricCase => ({
        ...base,
        profile: adult(index === 0 ? 'UA' : 'AL'),
        receivingOrganisationId: index === 0 ? ORG.iomUkraine : ORG.iomAlbania,
        sop: adultSop,
        openedAt: days(start),
        moves: [
          ...toAccepted(start, 6),
          { action: 'confirm_ready', to: 'ready_to_travel', at: days(start - 40), by: 'sending' },
          { action: 'confirm_departure', to: 'departed', at: days(start - 45), by: 'sending' },
          { action: 'confirm_arrival', to: 'arrived', at: days(start - 46), by: 'receiving' },
          { action: 'finalise_plan', to: 'reintegration', at: days(start - 70), by: 'receiving' },
          { action: 'report_retrafficking', to: 'retrafficking_suspected', at: days(start - 160), by: 'receiving' },
          ...(index === 0 ? [{ action: 'close', to: 'closed', at: days(start - 200), by: 'receiving' as const }] : []),
        ],
        records: [
          {
            kind: 'safety_plan',
            category: 'psychosocial',
            side: 'receiving',
            data: {
              summary: 'Fictitious safety plan.',
              agreed_on: days(start - 150)
                .toISOString()
                .slice(0, 10),
              risk_level: 'high',
              measures: ['Fictitious measure'],
            },
            at: days(start - 150),
          },
          ...(index === 0
            ? [
                {
                  kind: 'closure_report' as const,
                  category: 'reintegration' as const,
                  side: 'receiving' as const,
                  data: { summary: 'Fictitious.', reason: 'retrafficked' },
                  at: days(start - 201),
                },
              ]
            : []),
        ],
      }),
    ),
    // Return found impossible: another durable solution.
    {
      ...base,
      profile: adult('MA'),
      receivingOrganisationId: ORG.iomMorocco,
      sop: adultSop,
      openedAt: days(250),
      moves: [
        { action: 'decide_return', to: 'return_decided', at: days(240), by: 'sending' },
        {
          action: 'report_return_not_possible',
          to: 'alternative_durable_solution',
          at: days(230),
          by: 'sending',
          reason: 'Fictitious.',
        },
      ],
    },
    // A child not returned: the receiving side found return not in the child's best interests.
    {
      ...base,
      profile: child,
      sop: childSop,
      openedAt: days(380),
      moves: [
        { action: 'decide_return', to: 'return_decided', at: days(370), by: 'sending' },
        { action: 'send_referral', to: 'referral_sent', at: days(365), by: 'sending' },
        { action: 'acknowledge_referral', to: 'acknowledged', at: days(362), by: 'receiving' },
        {
          action: 'decline_referral',
          to: 'handback_to_child_protection',
          at: days(340),
          by: 'receiving',
          reason: 'not_in_best_interests_of_child',
        },
        { action: 'confirm_handback', to: 'not_returned', at: days(335), by: 'sending' },
      ],
    },
    {
      ...base,
      profile: { ...child, age_band: 'under_14' },
      sop: childSop,
      openedAt: days(30),
      moves: [
        { action: 'decide_return', to: 'return_decided', at: days(26), by: 'sending' },
        { action: 'send_referral', to: 'referral_sent', at: days(24), by: 'sending' },
        { action: 'acknowledge_referral', to: 'acknowledged', at: days(23), by: 'receiving' },
        {
          action: 'decline_referral',
          to: 'handback_to_child_protection',
          at: days(10),
          by: 'receiving',
          reason: 'family_unable_to_receive',
        },
      ],
    },
  ]
}

export interface DemoTraining {
  kind: 'training' | 'training_of_trainers' | 'centre_improvement'
  held_on: string
  place: string
  country: string
  topic: string
  organiser_organisation_id: string
  participants: components['schemas']['TrainingParticipants'][]
  ngo_partner_ids: string[]
  improved_centre_ids: string[]
}

function demoTrainings(now: Date): DemoTraining[] {
  const day = (n: number) => new Date(now.getTime() - n * DAY).toISOString().slice(0, 10)
  const training = (
    n: number,
    kind: DemoTraining['kind'],
    place: string,
    topic: string,
    participants: DemoTraining['participants'],
    ngo = false,
  ): DemoTraining => ({
    kind,
    held_on: day(n),
    place,
    country: 'PL',
    topic: `${topic} (fictitious)`,
    organiser_organisation_id: ORG.iomPoland,
    participants,
    ngo_partner_ids: ngo ? [ORG.ngoWarsaw] : [],
    improved_centre_ids: [],
  })
  return [
    training(700, 'training', 'Warsaw', 'Identifying victims of trafficking at the border', [
      { institution_type: 'border_guard', count: 120 },
      { institution_type: 'police', count: 35 },
    ]),
    training(
      610,
      'training_of_trainers',
      'Kraków',
      'Training trainers in voluntary return counselling',
      [
        { institution_type: 'border_guard', count: 18 },
        { institution_type: 'ngo', count: 6 },
      ],
      true,
    ),
    training(520, 'training', 'Lublin', 'Referral for voluntary return and reintegration', [
      { institution_type: 'migration_office', count: 64 },
      { institution_type: 'social_services', count: 41 },
    ]),
    training(
      400,
      'training',
      'Przemyśl',
      'Working with children on the move',
      [
        { institution_type: 'child_protection', count: 52 },
        { institution_type: 'border_guard', count: 90 },
      ],
      true,
    ),
    training(260, 'training', 'Gdańsk', 'Risk assessment before return', [
      { institution_type: 'border_guard', count: 150 },
      { institution_type: 'police', count: 48 },
    ]),
    training(120, 'training', 'Warsaw', 'Consent and data protection in referrals', [
      { institution_type: 'ngo', count: 22 },
      { institution_type: 'migration_office', count: 37 },
    ]),
    {
      kind: 'centre_improvement',
      held_on: day(450),
      place: 'Kyiv',
      country: 'UA',
      topic: 'Shelter refurbished and equipped for returnees (fictitious)',
      organiser_organisation_id: ORG.iomUkraine,
      participants: [],
      ngo_partner_ids: [],
      improved_centre_ids: [ORG.kyivShelter],
    },
    {
      kind: 'centre_improvement',
      held_on: day(200),
      place: 'Warsaw',
      country: 'PL',
      topic: 'Counselling rooms of the reception centre adapted for children (fictitious)',
      organiser_organisation_id: ORG.iomPoland,
      participants: [],
      ngo_partner_ids: [ORG.ngoWarsaw],
      improved_centre_ids: [ORG.ngoWarsaw],
    },
  ]
}

/** Writes the demo history into a database that holds the demo organisations; one transaction. */
export async function seedDemoHistory(db: Kysely<DB>, sops: SopRegistry, now: Date): Promise<number> {
  const { cases, trainings } = demoHistory(now)
  await db.transaction().execute(async (trx) => {
    for (const spec of cases) await insertHistoricCase(trx, sops, spec)
    for (const training of trainings) {
      await trx
        .insertInto('trainings')
        .values({
          ...training,
          participants: json(training.participants),
          participants_total: training.participants.reduce((sum, group) => sum + group.count, 0),
          participant_organisation_ids: [],
          created_at: now,
          updated_at: now,
          created_by_principal_id: firstPrincipal(training.organiser_organisation_id),
        })
        .execute()
    }
  })
  return cases.length
}
