import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t, { type Test } from 'tap'
import type { DataCategory, Purpose, Role } from '../src/db/schema.js'
import { addDuration } from '../src/sops/deadline.js'
import type {
  AssessmentKind,
  Guard,
  PacketOperation,
  RecordKind,
  Side,
  SopDefinition,
  Step,
  Transition,
} from '../src/sops/definition.js'
import { mermaidDiagram } from '../src/sops/diagram.js'
import {
  type Actor,
  type AssessmentFact,
  type CaseFacts,
  evaluate,
  laterActions,
  openAt,
  pathTo,
  type Unmet,
} from '../src/sops/engine.js'
import { recordDataErrors, recordKinds } from '../src/sops/records.js'
import { loadSops, SopDefinitionError, specificity } from '../src/sops/registry.js'

// Pure unit tests of the SOP engine, its two procedures, the registry, the diagram and deadlines:
// no database, no HTTP. Everything iterates the loaded definitions, so a new step, transition or
// guard is covered (or makes a test fail) without editing this file.

const registry = loadSops()
const definitions = registry.all()

const COUNTERPART = 'c0000000-0000-4000-8000-00000000beef' // the receiving partner of the referral
const SOMEONE_ELSE = 'c0000000-0000-4000-8000-00000000dead' // another partner
/**
 * What the guardian's consent in the facts covers: a category and purpose no `consent_covers` guard asks for
 * (checked below), so that taking the guardian's consent away never takes a guard's consent with it, and the
 * other way round.
 */
const GUARDIAN_PROVISION = { category: 'family', purpose: 'monitoring' } as const

/** Every role, every purpose: a record keyed by the union type, so TypeScript fails when one is added. */
const allRoles = Object.keys({
  caseworker: true,
  supervisor: true,
  dpo: true,
  auditor: true,
  admin: true,
} satisfies Record<Role, true>) as Role[]
const allPurposes = Object.keys({
  return_assistance: true,
  reintegration: true,
  monitoring: true,
  statistics: true,
} satisfies Record<Purpose, true>) as Purpose[]
const allDataCategories = Object.keys({
  identity: true,
  contact: true,
  health: true,
  psychosocial: true,
  family: true,
  legal: true,
  travel: true,
  reintegration: true,
  proceedings: true,
} satisfies Record<DataCategory, true>) as DataCategory[]

/** The operation of the contract that takes a transition: each packet operation has its own. */
const operationIds: Record<PacketOperation, string> = {
  send: 'sendPacket',
  acknowledge: 'acknowledgePacket',
  accept: 'acceptPacket',
  decline: 'declinePacket',
  request_information: 'requestPacketInformation',
}
const operationOf = (transition: Transition) =>
  transition.exchange ? operationIds[transition.exchange.operation] : 'performTransition'

/**
 * For each outcome a guard asks of an assessment, an outcome the same assessment can record that
 * does not let the step happen.
 */
const wrongOutcomes: Record<string, string | boolean> = {
  'best_interests_determination.outcome': 'return_not_in_best_interests',
  'family.outcome': 'family_unable_to_receive',
  'fit_to_travel.fit': false,
}

/** The category of personal data each assessment a guard reads is: a refusal naming the record names it too. */
const categoryOf: Partial<Record<AssessmentKind, DataCategory>> = {
  best_interests_determination: 'family',
  family: 'family',
  fit_to_travel: 'health',
  risk_and_needs: 'psychosocial',
}

const otherSide = (side: Side): Side => (side === 'sending' ? 'receiving' : 'sending')
const isPrevious = (transition: Transition) => transition.to === '$previous'
const staysPut = (transition: Transition) => transition.to === '$current'

// ---------------------------------------------------------------------------------------------
// The graph of a procedure

/** Steps with a transition (not `$previous`) into `step`: where a `$previous` transition from it may return to. */
function predecessors(definition: SopDefinition, step: string): string[] {
  return Object.keys(definition.steps).filter((from) =>
    definition.transitions.some((tr) => !isPrevious(tr) && !staysPut(tr) && tr.to === step && tr.from.includes(from)),
  )
}

/** Where one transition from `step` may lead; `$previous` to any step the case may have come from. */
function targets(definition: SopDefinition, transition: Transition, step: string): string[] {
  if (staysPut(transition)) return [step]
  return isPrevious(transition) ? predecessors(definition, step) : [transition.to]
}

function reachable(
  definition: SopDefinition,
  starts: readonly string[],
  follow: (transition: Transition) => boolean = () => true,
): Set<string> {
  const seen = new Set(starts)
  const queue = [...starts]
  for (let step = queue.shift(); step !== undefined; step = queue.shift()) {
    for (const transition of definition.transitions) {
      if (!transition.from.includes(step) || !follow(transition)) continue
      for (const next of targets(definition, transition, step)) {
        if (!seen.has(next)) {
          seen.add(next)
          queue.push(next)
        }
      }
    }
  }
  return seen
}

const handsOver = (transition: Transition) => transition.effects?.includes('lead_to_receiving') ?? false

/**
 * Which side may lead a case in each step: the sending side until a transition hands the lead over
 * (confirm_arrival), the receiving side after. A step reached both ways (on_hold) may be led by either.
 * `$previous` is not followed: resuming returns to the phase the case was in.
 */
function leadSidesAt(definition: SopDefinition, step: string): Side[] {
  const before = reachable(definition, [definition.initial_step], (tr) => !handsOver(tr) && !isPrevious(tr))
  const after = reachable(
    definition,
    definition.transitions.filter(handsOver).map((tr) => tr.to),
    (tr) => !isPrevious(tr),
  )
  const sides: Side[] = []
  if (before.has(step)) sides.push('sending')
  if (after.has(step)) sides.push('receiving')
  return sides
}

/** Steps only the receiving side can lead: reached after the hand-over and never before it. */
function receivingLedSteps(definition: SopDefinition): string[] {
  return Object.keys(definition.steps).filter((step) => {
    const sides = leadSidesAt(definition, step)
    return sides.length === 1 && sides[0] === 'receiving'
  })
}

const nonTerminalSteps = (definition: SopDefinition) =>
  Object.keys(definition.steps).filter((step) => !definition.steps[step]?.terminal)
const terminalSteps = (definition: SopDefinition) =>
  Object.keys(definition.steps).filter((step) => definition.steps[step]?.terminal)

// ---------------------------------------------------------------------------------------------
// Facts: built from the few things guards look at, so one of them can be taken away

interface Needs {
  counterpartId: string | null
  /** One provision each, all in one consent, without a guardian. */
  provisions: { category: string; purpose: string; recipient: string }[]
  /** The partner a guardian consented to refer the child to, in a consent of its own; null: no guardian consented. */
  guardianRecipient: string | null
  /** Oldest first, as the case recorded them. */
  assessments: AssessmentFact[]
  records: RecordKind[]
  /** The fields the latest record of a kind gives. */
  fields: { record: RecordKind; field: string }[]
}

let assessmentIds = 0
/** An assessment with an id of its own, as the case would have recorded it. */
function assessment(kind: AssessmentKind, data: Record<string, unknown>, side: Side = 'sending'): AssessmentFact {
  assessmentIds += 1
  return { id: `${kind}-${assessmentIds}`, kind, side, data }
}

/** The latest assessment of a kind in the facts, the one guards read. */
const latestOf = (needs: Needs, kind: AssessmentKind) => needs.assessments.findLast((a) => a.kind === kind)

/** Exactly what the guards ask for, nothing more; an assessment a guard wants recorded after another comes last. */
function needsOf(guards: readonly Guard[]): Needs {
  const needs: Needs = {
    counterpartId: COUNTERPART,
    provisions: [],
    guardianRecipient: null,
    assessments: [],
    records: [],
    fields: [],
  }
  const first: AssessmentFact[] = []
  const then: AssessmentFact[] = []
  const last: AssessmentFact[] = []
  for (const guard of guards) {
    switch (guard.kind) {
      case 'consent_covers':
        for (const category of guard.categories) {
          needs.provisions.push({ category, purpose: guard.purpose, recipient: COUNTERPART })
        }
        break
      case 'guardian_consent':
        needs.guardianRecipient = COUNTERPART
        break
      case 'assessment_completed':
        first.push(assessment(guard.assessment, {}, 'sending'))
        if (guard.joint) first.push(assessment(guard.assessment, {}, 'receiving'))
        break
      case 'assessment_outcome':
        ;(guard.recorded_after ? last : then).push(assessment(guard.assessment, { [guard.field]: guard.equals }))
        break
      case 'risk_acceptable':
        then.push(assessment('risk_and_needs', { level: 'low', mitigations: [] }))
        break
      case 'record_present':
        needs.records.push(guard.record)
        break
      case 'record_field':
        needs.fields.push({ record: guard.record, field: guard.field })
        break
    }
  }
  needs.assessments = [...first, ...then, ...last]
  return needs
}

function factsOf(needs: Needs, step: string, leadSide: Side, previousStep: string | null = null): CaseFacts {
  const consents: CaseFacts['consents'][number][] = []
  if (needs.provisions.length > 0) {
    consents.push({
      guardian: false,
      provisions: needs.provisions.map((p) => ({
        categories: [p.category as DataCategory],
        recipients: [p.recipient],
        purposes: [p.purpose as Purpose],
      })),
    })
  }
  if (needs.guardianRecipient !== null) {
    consents.push({
      guardian: true,
      provisions: [
        {
          categories: [GUARDIAN_PROVISION.category],
          recipients: [needs.guardianRecipient],
          purposes: [GUARDIAN_PROVISION.purpose],
        },
      ],
    })
  }
  return {
    step,
    previousStep,
    leadSide,
    consents,
    counterpartId: needs.counterpartId,
    assessments: needs.assessments,
    records: new Set(needs.records),
    latestRecords: new Map(
      needs.fields.map(({ record }) => [
        record,
        {
          id: `${record}-latest`,
          data: Object.fromEntries(needs.fields.filter((f) => f.record === record).map((f) => [f.field, 'given'])),
        },
      ]),
    ),
  }
}

const nothing: Needs = {
  counterpartId: null,
  provisions: [],
  guardianRecipient: null,
  assessments: [],
  records: [],
  fields: [],
}

interface Variant {
  label: string
  needs: Needs
  /** The unmet codes, in guard order; none: the variant still lets the action happen. */
  codes: string[]
  /** A fragment each message must hold, where it says which fact is missing. */
  message?: RegExp
  /** What the first unmet item must say of the record that refuses the step. */
  detail?: Partial<Unmet>
}

/** The codes of every guard of a transition that finds no assessment of `kind` at all. */
function codesWhenMissing(guards: readonly Guard[], kind: AssessmentKind): string[] {
  return guards.flatMap((guard) => {
    if (guard.kind === 'assessment_completed' || guard.kind === 'assessment_outcome') {
      return guard.assessment === kind ? [`assessment.${kind}`] : []
    }
    return guard.kind === 'risk_acceptable' && kind === 'risk_and_needs' ? ['assessment.risk_and_needs'] : []
  })
}

/**
 * For one guard: the facts with just that guard's fact taken away or contradicted (in each way it can
 * fail), and a few changes that must still let the action happen.
 */
function withoutGuard(needs: Needs, guard: Guard, guards: readonly Guard[]): Variant[] {
  switch (guard.kind) {
    case 'consent_covers':
      return guard.categories.flatMap((category) => {
        const covers = (p: Needs['provisions'][number]) => p.category === category && p.purpose === guard.purpose
        const code = `consent.${category}`
        const otherPurpose = allPurposes.find((purpose) => purpose !== guard.purpose) as Purpose
        return [
          {
            label: `no consent for ${category}`,
            needs: { ...needs, provisions: needs.provisions.filter((p) => !covers(p)) },
            codes: [code],
          },
          {
            label: `consent for ${category} names another recipient`,
            needs: {
              ...needs,
              provisions: needs.provisions.map((p) => (covers(p) ? { ...p, recipient: SOMEONE_ELSE } : p)),
            },
            codes: [code],
          },
          {
            label: `consent for ${category} is for ${otherPurpose}, not ${guard.purpose}`,
            needs: {
              ...needs,
              provisions: needs.provisions.map((p) => (covers(p) ? { ...p, purpose: otherPurpose } : p)),
            },
            codes: [code],
            message: new RegExp(`${category} data .* for ${guard.purpose}`),
          },
        ]
      })
    case 'guardian_consent':
      return [
        {
          label: 'no guardian consent',
          needs: { ...needs, guardianRecipient: null },
          codes: ['consent.guardian'],
          message: /has not consented to refer the child to the receiving partner/,
        },
        {
          label: 'the guardian consented to refer the child to another partner',
          needs: { ...needs, guardianRecipient: SOMEONE_ELSE },
          codes: ['consent.guardian'],
          message: /has not consented to refer the child to the receiving partner/,
        },
      ]
    case 'assessment_completed': {
      const kind = guard.assessment
      const variants: Variant[] = [
        {
          label: `no ${kind} assessment`,
          needs: { ...needs, assessments: needs.assessments.filter((a) => a.kind !== kind) },
          codes: codesWhenMissing(guards, kind),
          message: /is not recorded\.$/,
        },
      ]
      if (guard.joint) {
        for (const side of ['sending', 'receiving'] as const) {
          variants.push({
            label: `${kind} assessment only by the ${side} side (it is joint)`,
            needs: { ...needs, assessments: needs.assessments.filter((a) => a.kind !== kind || a.side === side) },
            codes: [`assessment.${kind}.joint`],
            message: new RegExp(`the ${otherSide(side)} partner has not contributed`),
          })
        }
      }
      return variants
    }
    case 'assessment_outcome': {
      const { assessment: kind, field, equals } = guard
      const wrong = wrongOutcomes[`${kind}.${field}`] as string | boolean
      const right = latestOf(needs, kind) as AssessmentFact
      // In the place of the one the guard reads, so that no other guard sees a newer assessment.
      const instead = (replacement: AssessmentFact) => ({
        ...needs,
        assessments: needs.assessments.map((a) => (a === right ? replacement : a)),
      })
      const wrongOne = assessment(kind, { ...right.data, [field]: wrong })
      const silent = assessment(kind, {})
      const variants: Variant[] = [
        {
          label: `no ${kind} assessment`,
          needs: { ...needs, assessments: needs.assessments.filter((a) => a.kind !== kind) },
          codes: codesWhenMissing(guards, kind),
          message: new RegExp(`saying ${field} = ${JSON.stringify(equals)} is not recorded\\.$`),
          detail: { field, expected: equals },
        },
        {
          label: `the ${kind} assessment says ${field} = ${JSON.stringify(wrong)}`,
          needs: instead(wrongOne),
          codes: [`assessment.${kind}.${field}`],
          message: new RegExp(`\\(record ${wrongOne.id}\\) says ${field} = ${JSON.stringify(wrong)}; this step needs`),
          detail: { record_id: wrongOne.id, category: categoryOf[kind], field, expected: equals, actual: wrong },
        },
        {
          label: `the ${kind} assessment does not say ${field}`,
          needs: instead(silent),
          codes: [`assessment.${kind}.${field}`],
          detail: { record_id: silent.id, category: categoryOf[kind], field, expected: equals, actual: null },
        },
        {
          label: `the ${kind} assessment says ${JSON.stringify(equals)}, the one before it ${JSON.stringify(wrong)}`,
          needs: {
            ...needs,
            assessments: needs.assessments.flatMap((a) =>
              a === right ? [assessment(kind, { ...right.data, [field]: wrong }), right] : [a],
            ),
          },
          codes: [],
        },
        {
          label: `the ${kind} assessment said ${JSON.stringify(equals)}, a later one says ${JSON.stringify(wrong)}`,
          needs: {
            ...needs,
            assessments: needs.assessments.flatMap((a) => (a === right ? [right, wrongOne] : [a])),
          },
          codes: [`assessment.${kind}.${field}`],
          detail: { record_id: wrongOne.id, actual: wrong },
        },
      ]
      const after = guard.recorded_after
      if (after) {
        const before = latestOf(needs, after)
        const anew = assessment(after, before ? { ...before.data } : {})
        variants.push(
          {
            label: `a ${after} assessment recorded after the ${kind}`,
            needs: { ...needs, assessments: [...needs.assessments, anew] },
            codes: [`assessment.${kind}.revalidate`],
            message: new RegExp(`must be made again after the latest .*\\(record ${anew.id}\\)\\.$`),
            detail: { record_id: right.id, category: categoryOf[kind] },
          },
          {
            label: `a ${after} assessment recorded after the ${kind}, and the ${kind} made again`,
            needs: { ...needs, assessments: [...needs.assessments, anew, assessment(kind, { ...right.data })] },
            codes: [],
          },
        )
      }
      return variants
    }
    case 'risk_acceptable': {
      const high = assessment('risk_and_needs', { level: 'high', mitigations: [] })
      const withRisk = (...added: AssessmentFact[]) => ({ ...needs, assessments: [...needs.assessments, ...added] })
      return [
        {
          label: 'no risk and needs assessment',
          needs: { ...needs, assessments: needs.assessments.filter((a) => a.kind !== 'risk_and_needs') },
          codes: codesWhenMissing(guards, 'risk_and_needs'),
          message: /^A risk and needs assessment is not recorded\.$/,
        },
        {
          label: 'a later risk assessment rates the risk high and names no mitigation',
          needs: withRisk(high),
          codes: ['assessment.risk_and_needs.level'],
          message: new RegExp(`\\(record ${high.id}\\) rates the risk high and names no mitigation`),
          detail: {
            record_id: high.id,
            category: 'psychosocial',
            field: 'level',
            expected: 'low or medium, or high with mitigations',
            actual: 'high',
          },
        },
        {
          label: 'a high risk with mitigations',
          needs: withRisk(assessment('risk_and_needs', { level: 'high', mitigations: ['escorted all the way'] })),
          codes: [],
        },
        {
          label: 'a medium risk without mitigations',
          needs: withRisk(assessment('risk_and_needs', { level: 'medium', mitigations: [] })),
          codes: [],
        },
        {
          label: 'a high risk without mitigations, then reassessed low',
          needs: withRisk(high, assessment('risk_and_needs', { level: 'low', mitigations: [] })),
          codes: [],
        },
      ]
    }
    case 'record_present':
      return [
        {
          label: `no ${guard.record} record`,
          needs: { ...needs, records: needs.records.filter((r) => r !== guard.record) },
          codes: [`record.${guard.record}`],
          message: /is not recorded\.$/,
        },
      ]
    case 'record_field':
      return [
        {
          label: `no ${guard.record} giving ${guard.field}`,
          needs: {
            ...needs,
            fields: needs.fields.filter((f) => f.record !== guard.record || f.field !== guard.field),
          },
          codes: [`record.${guard.record}.${guard.field}`],
        },
      ]
  }
}

// ---------------------------------------------------------------------------------------------
// Asserting one action's outcome

function optionFor(definition: SopDefinition, facts: CaseFacts, actor: Actor, action: string) {
  const { allowed, refused } = evaluate(definition, facts, actor)
  return {
    allowed: allowed.filter((o) => o.action === action),
    refused: refused.filter((o) => o.action === action),
  }
}

function assertAllowed(
  t: Test,
  definition: SopDefinition,
  facts: CaseFacts,
  actor: Actor,
  transition: Transition,
  to: string,
  label: string,
) {
  const { allowed, refused } = optionFor(definition, facts, actor, transition.action)
  t.equal(refused.length, 0, `${label}: not refused`)
  t.equal(allowed.length, 1, `${label}: allowed`)
  t.equal(allowed[0]?.to, to, `${label}: leads to ${to}`)
  t.equal(allowed[0]?.operation, operationOf(transition), `${label}: taken by ${operationOf(transition)}`)
  t.same(allowed[0]?.inputs, transition.inputs ?? [], `${label}: asks for its inputs`)
  t.same(allowed[0]?.unmet, [], `${label}: nothing unmet`)
}

function assertRefused(
  t: Test,
  definition: SopDefinition,
  facts: CaseFacts,
  actor: Actor,
  action: string,
  codes: readonly string[],
  label: string,
  message?: RegExp,
  detail?: Partial<Unmet>,
) {
  const { allowed, refused } = optionFor(definition, facts, actor, action)
  t.equal(allowed.length, 0, `${label}: not allowed`)
  t.equal(refused.length, 1, `${label}: refused`)
  const unmet = refused[0]?.unmet ?? []
  t.same(
    unmet.map((u) => u.code),
    codes,
    `${label}: unmet ${codes.join(', ')}`,
  )
  t.ok(
    unmet.every((u) => /^[A-Z].*\.$/.test(u.message)),
    `${label}: each unmet code has a sentence for people`,
  )
  if (message) t.match(unmet[0]?.message, message, `${label}: the message says what is missing`)
  if (detail) {
    const shown = Object.fromEntries(Object.keys(detail).map((key) => [key, unmet[0]?.[key as keyof Unmet]]))
    t.strictSame(shown, detail, `${label}: names the record, the field, what it says and what is needed`)
  } else {
    t.ok(
      unmet.every((u) => u.record_id === undefined || u.code.startsWith('assessment.')),
      `${label}: only an assessment names a record`,
    )
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Every transition, every step it starts from

/** What blocks each action when no fact holds (the actor on the right side, with a role allowed), in guard order. */
/** Where an action's guards differ by the step it is taken from: closing after an exit needs no sustainability score. */
const unmetWhenNothingHoldsFrom: Record<string, string[]> = Object.fromEntries(
  ['missing', 'retrafficking_suspected', 'alternative_durable_solution'].map((step) => [
    `close from ${step}`,
    ['record.closure_report', 'record.closure_report.reason'],
  ]),
)

const unmetWhenNothingHolds: Record<string, Record<string, string[]>> = {
  'adult-return': {
    decide_return: ['record.return_decision'],
    send_referral: ['consent.identity'],
    acknowledge_referral: [],
    request_information: [],
    answer_information: [],
    accept_referral: ['assessment.risk_and_needs'],
    decline_referral: [],
    refer_elsewhere: [],
    confirm_ready: [
      'record.travel_documents',
      'assessment.fit_to_travel',
      'record.escort',
      'record.reception',
      'record.reintegration_plan_draft',
    ],
    confirm_departure: ['assessment.fit_to_travel', 'assessment.risk_and_needs'],
    confirm_arrival: [],
    finalise_plan: ['record.reintegration_plan_final'],
    close: ['record.closure_report', 'record.closure_report.reason', 'record.sustainability_score'],
    withdraw: [],
    put_on_hold: [],
    resume: [],
    cancel: [],
    send_update: [],
    report_no_show: [],
    rebook_departure: [],
    report_missing: [],
    person_found: [],
    report_retrafficking: ['record.safety_plan'],
    report_return_not_possible: [],
  },
  'child-return': {
    decide_return: ['record.return_decision', 'assessment.best_interests_determination', 'record.guardian_appointment'],
    send_referral: ['consent.identity', 'consent.guardian'],
    acknowledge_referral: [],
    request_information: [],
    answer_information: [],
    accept_referral: ['assessment.risk_and_needs', 'assessment.family', 'assessment.best_interests_determination'],
    decline_referral: [],
    confirm_ready: [
      'record.travel_documents',
      'assessment.fit_to_travel',
      'record.escort',
      'record.reception',
      'record.reintegration_plan_draft',
    ],
    confirm_departure: [
      'assessment.best_interests_determination',
      'assessment.family',
      'consent.guardian',
      'record.escort',
      'record.handover_protocol',
      'assessment.fit_to_travel',
      'assessment.risk_and_needs',
    ],
    confirm_arrival: [],
    finalise_plan: ['record.reintegration_plan_final'],
    close: ['record.closure_report', 'record.closure_report.reason', 'record.sustainability_score'],
    withdraw: [],
    put_on_hold: [],
    resume: [],
    cancel: [],
    send_update: [],
    report_no_show: [],
    rebook_departure: [],
    report_missing: [],
    person_found: [],
    report_retrafficking: ['record.safety_plan'],
    report_return_not_possible: [],
    confirm_handback: ['record.child_protection_handover'],
  },
}

/**
 * A national variant blocks as its base does, but for the actions it adds guards to: those rows
 * are written out here, the rest come from the base's table.
 */
const variantUnmetWhenNothingHolds: Record<string, Record<string, string[]>> = {
  'child-return-pl-ua': {}, // shorter deadlines, no guard of its own
}
for (const definition of definitions) {
  if (!definition.extends) continue
  unmetWhenNothingHolds[definition.id] = {
    ...unmetWhenNothingHolds[definition.extends.id],
    ...variantUnmetWhenNothingHolds[definition.id],
  }
}

t.test('the table of unmet codes has a row for every action of every procedure, and no other', async (t) => {
  t.same(Object.keys(unmetWhenNothingHolds).sort(), definitions.map((d) => d.id).sort(), 'a table for each procedure')
  for (const definition of definitions) {
    t.same(
      Object.keys(unmetWhenNothingHolds[definition.id] ?? {}).sort(),
      [...new Set(definition.transitions.map((tr) => tr.action))].sort(),
      `${definition.id}: a row for each action`,
    )
  }
})

t.test('every outcome a guard asks for can be recorded, and so can the outcome that refuses it', async (t) => {
  for (const definition of definitions) {
    for (const tr of definition.transitions) {
      for (const guard of tr.guards) {
        if (guard.kind !== 'assessment_outcome') continue
        const key = `${guard.assessment}.${guard.field}`
        const wrong = wrongOutcomes[key]
        t.not(wrong, undefined, `${definition.id}: ${tr.action}: a wrong outcome for ${key} in the table`)
        t.not(wrong, guard.equals, `${definition.id}: ${tr.action}: which differs from ${JSON.stringify(guard.equals)}`)
        const kind = recordKinds.assessments[guard.assessment]
        t.equal(kind.category, categoryOf[guard.assessment], `${guard.assessment} is ${kind.category} data`)
        for (const value of [guard.equals, wrong]) {
          t.same(
            recordDataErrors(kind, { [guard.field]: value }),
            [],
            `${definition.id}: ${tr.action}: ${guard.assessment} may record ${guard.field} = ${JSON.stringify(value)}`,
          )
        }
      }
    }
  }
})

for (const definition of definitions) {
  t.test(`${definition.id}: every transition from every step`, async (t) => {
    for (const transition of definition.transitions) {
      for (const from of transition.from) {
        t.test(`${transition.action} from ${from}`, async (t) => {
          const leadSides = leadSidesAt(definition, from)
          t.ok(leadSides.length > 0, `${from} is reachable, so some side leads it`)
          const previousSteps = isPrevious(transition) ? predecessors(definition, from) : [null]
          t.ok(previousSteps.length > 0, 'somewhere to return to')
          const needs = needsOf(transition.guards)
          for (const leadSide of leadSides) {
            const side = transition.side === 'lead' ? leadSide : transition.side
            const actor: Actor = { side, roles: [transition.roles[0] as Role] }
            for (const previousStep of previousSteps) {
              // `$previous` returns to a step led by the side leading now.
              if (previousStep !== null && !leadSidesAt(definition, previousStep).includes(leadSide)) continue
              // `$current` keeps the case in its step (an update of the accepted referral).
              const to = previousStep ?? (staysPut(transition) ? from : transition.to)
              const facts = (n: Needs) => factsOf(n, from, leadSide, previousStep)
              const where = `${leadSide} leads${previousStep ? `, came from ${previousStep}` : ''}`

              for (const role of transition.roles) {
                assertAllowed(t, definition, facts(needs), { side, roles: [role] }, transition, to, `${where}, ${role}`)
              }
              for (const variant of transition.guards.flatMap((guard) =>
                withoutGuard(needs, guard, transition.guards),
              )) {
                if (variant.codes.length === 0) {
                  assertAllowed(
                    t,
                    definition,
                    facts(variant.needs),
                    actor,
                    transition,
                    to,
                    `${where}, ${variant.label}`,
                  )
                  continue
                }
                assertRefused(
                  t,
                  definition,
                  facts(variant.needs),
                  actor,
                  transition.action,
                  variant.codes,
                  `${where}, ${variant.label}`,
                  variant.message,
                  variant.detail,
                )
              }
              // Before a receiving partner is known, a consent to share covers the category for whichever
              // partner it names (the partner the enquiry goes to then becomes the counterpart); a consent that
              // names no one for that category and purpose does not. The guardian's consent counts likewise.
              if (transition.guards.some((g) => g.kind === 'consent_covers' || g.kind === 'guardian_consent')) {
                const unknown = facts({ ...needs, counterpartId: null })
                const label = `${where}, no receiving partner yet`
                assertAllowed(t, definition, unknown, actor, transition, to, label)
                const codes = transition.guards.flatMap((g) =>
                  g.kind === 'consent_covers' ? g.categories.map((c) => `consent.${c}`) : [],
                )
                if (codes.length > 0) {
                  assertRefused(
                    t,
                    definition,
                    { ...unknown, consents: unknown.consents.filter((c) => c.guardian) },
                    actor,
                    transition.action,
                    codes,
                    `${label}, and no consent to share with anyone`,
                  )
                }
                if (transition.guards.some((g) => g.kind === 'guardian_consent')) {
                  assertRefused(
                    t,
                    definition,
                    facts({ ...needs, counterpartId: null, guardianRecipient: null }),
                    actor,
                    transition.action,
                    ['consent.guardian'],
                    `${label}, and no guardian consent`,
                  )
                }
              }
              for (const guard of transition.guards) {
                if (guard.kind !== 'assessment_completed' || guard.joint) continue
                const byReceiving = needs.assessments.map((a) =>
                  a.kind === guard.assessment ? { ...a, side: 'receiving' as const } : a,
                )
                assertAllowed(
                  t,
                  definition,
                  facts({ ...needs, assessments: byReceiving }),
                  actor,
                  transition,
                  to,
                  `${where}, ${guard.assessment} (not joint) by the receiving side`,
                )
              }
              for (const wrong of [otherSide(side), null]) {
                assertRefused(
                  t,
                  definition,
                  facts(needs),
                  { side: wrong, roles: transition.roles },
                  transition.action,
                  ['actor.side'],
                  `${where}, actor on the ${wrong ?? 'no (invited)'} side`,
                  new RegExp(`Only the ${side} partner`),
                )
              }
              const wrongRoles = allRoles.filter((role) => !transition.roles.includes(role))
              t.ok(wrongRoles.includes('dpo'), 'a data protection officer does not move cases')
              for (const role of wrongRoles) {
                assertRefused(
                  t,
                  definition,
                  facts(needs),
                  { side, roles: [role] },
                  transition.action,
                  ['actor.role'],
                  `${where}, a ${role}`,
                )
              }
              const row = unmetWhenNothingHoldsFrom[`${transition.action} from ${from}`] ??
                unmetWhenNothingHolds[definition.id]?.[transition.action] ?? ['(no row in the table)']
              if (row.length === 0) {
                assertAllowed(t, definition, facts(nothing), actor, transition, to, `${where}, nothing holds`)
              } else {
                assertRefused(t, definition, facts(nothing), actor, transition.action, row, `${where}, nothing holds`)
              }
            }
            if (isPrevious(transition)) {
              // Resuming returns to the step before; a case with none recorded has nowhere to go back to.
              assertRefused(
                t,
                definition,
                factsOf(needs, from, leadSide, null),
                actor,
                transition.action,
                ['step.previous'],
                `${leadSide} leads, no earlier step recorded`,
                /no earlier step/,
              )
              assertRefused(
                t,
                definition,
                factsOf(needs, from, leadSide, null),
                { side: otherSide(side), roles: [] },
                transition.action,
                ['actor.side', 'actor.role', 'step.previous'],
                `${leadSide} leads, no earlier step recorded, wrong side and role: every reason, the step last`,
              )
            }
          }
        })
      }
    }
  })
}

t.test('an action is not offered from a step it does not start from', async (t) => {
  for (const definition of definitions) {
    for (const step of Object.keys(definition.steps)) {
      const facts = factsOf(nothing, step, 'sending', null)
      const { allowed, refused } = evaluate(definition, facts, { side: 'sending', roles: allRoles })
      t.same(
        [...allowed, ...refused].map((o) => o.action).sort(),
        definition.transitions
          .filter((tr) => tr.from.includes(step))
          .map((tr) => tr.action)
          .sort(),
        `${definition.id}: the actions from ${step}`,
      )
    }
  }
})

// ---------------------------------------------------------------------------------------------
// 2. Packet operations are transitions of the procedure

/** Each procedure's exchange: which action each packet operation takes, what it sends and where it leads. */
const exchanges: Record<
  string,
  Record<string, { operation: PacketOperation; packet?: string; from: string[]; to: string }>
> = {
  'adult-return': {
    send_referral: { operation: 'send', packet: 'enquiry', from: ['return_decided'], to: 'referral_sent' },
    acknowledge_referral: { operation: 'acknowledge', from: ['referral_sent'], to: 'acknowledged' },
    request_information: { operation: 'request_information', from: ['acknowledged'], to: 'information_requested' },
    answer_information: {
      operation: 'send',
      packet: 'information',
      from: ['information_requested'],
      to: 'acknowledged',
    },
    accept_referral: { operation: 'accept', from: ['acknowledged', 'information_requested'], to: 'accepted' },
    decline_referral: { operation: 'decline', from: ['acknowledged', 'information_requested'], to: 'declined' },
    send_update: {
      operation: 'send',
      packet: 'update',
      from: ['accepted', 'ready_to_travel', 'departed', 'arrived', 'reintegration'],
      to: '$current',
    },
  },
  'child-return': {
    send_referral: { operation: 'send', packet: 'enquiry', from: ['return_decided'], to: 'referral_sent' },
    acknowledge_referral: { operation: 'acknowledge', from: ['referral_sent'], to: 'acknowledged' },
    request_information: { operation: 'request_information', from: ['acknowledged'], to: 'information_requested' },
    answer_information: {
      operation: 'send',
      packet: 'information',
      from: ['information_requested'],
      to: 'acknowledged',
    },
    accept_referral: { operation: 'accept', from: ['acknowledged', 'information_requested'], to: 'accepted' },
    // A child whose referral is declined is not returned: no other partner is tried, and the child is
    // handed back to the child protection authority of the country where the child is.
    decline_referral: {
      operation: 'decline',
      from: ['acknowledged', 'information_requested'],
      to: 'handback_to_child_protection',
    },
    send_update: {
      operation: 'send',
      packet: 'update',
      from: ['accepted', 'ready_to_travel', 'departed', 'arrived', 'reintegration'],
      to: '$current',
    },
  },
}

for (const definition of definitions) {
  t.test(`${definition.id}: the packet operations are its transitions`, async (t) => {
    const expected = exchanges[definition.id] ?? exchanges[definition.extends?.id ?? ''] ?? {}
    const withExchange = definition.transitions.filter((tr) => tr.exchange)
    t.same(withExchange.map((tr) => tr.action).sort(), Object.keys(expected).sort(), 'exactly these actions exchange')
    for (const tr of withExchange) {
      const want = expected[tr.action]
      t.same(
        { operation: tr.exchange?.operation, packet: tr.exchange?.packet, from: tr.from, to: tr.to },
        want,
        `${tr.action}: ${want?.operation} ${want?.packet ?? ''}`,
      )
    }
    const full = definition.transitions.filter((tr) => tr.effects?.includes('full_referral'))
    t.same(
      full.map((tr) => tr.action),
      ['accept_referral'],
      'the full referral follows only the acceptance',
    )
    for (const step of Object.keys(definition.steps)) {
      const operations = definition.transitions
        .filter((tr) => tr.exchange && tr.from.includes(step))
        .map((tr) => tr.exchange?.operation)
      t.equal(new Set(operations).size, operations.length, `${step}: each packet operation takes one action`)
    }
  })

  t.test(`${definition.id}: an update keeps the case in its step`, async (t) => {
    const update = definition.transitions.find((tr) => tr.action === 'send_update') as Transition
    for (const step of openAt(definition, 'send_update')) {
      const facts = factsOf(nothing, step, leadSidesAt(definition, step)[0] as Side, null)
      const sending: Actor = { side: 'sending', roles: ['caseworker'] }
      assertAllowed(t, definition, facts, sending, update, step, `${step}: the sending partner sends an update`)
      assertRefused(
        t,
        definition,
        facts,
        { side: 'receiving', roles: ['caseworker'] },
        'send_update',
        ['actor.side'],
        `${step}: the receiving partner does not`,
      )
    }
    t.same(
      Object.keys(definition.steps).filter(
        (step) => !openAt(definition, 'send_update').includes(step) && !definition.steps[step]?.terminal,
      ),
      [
        'identified',
        'return_decided',
        'referral_sent',
        'acknowledged',
        'information_requested',
        'on_hold',
        'no_show',
        'missing',
        'retrafficking_suspected',
        'alternative_durable_solution',
        ...(definition.id === 'adult-return' ? ['declined'] : ['handback_to_child_protection']),
      ],
      'no update before the acceptance, nor on hold, nor once the return has failed',
    )
  })
}

// ---------------------------------------------------------------------------------------------
// 3. Where an action opens, and the way there

t.test('openAt: the steps from which an action is open', async (t) => {
  const adult = registry.current('adult')
  const child = registry.current('child')
  t.same(openAt(adult, 'send_referral'), ['return_decided'])
  t.same(openAt(adult, 'accept_referral'), ['acknowledged', 'information_requested'])
  t.same(openAt(adult, 'refer_elsewhere'), ['declined'])
  t.same(openAt(child, 'refer_elsewhere'), [], 'a child is not referred elsewhere')
  t.same(openAt(adult, 'resume'), ['on_hold'])
  t.same(openAt(adult, 'fly_to_the_moon'), [], 'an unknown action is open nowhere')
})

t.test('pathTo: the shortest run of forward actions to a step where the action is open', async (t) => {
  const adult = registry.current('adult')
  const child = registry.current('child')
  const table: [SopDefinition, from: string, action: string, path: string[] | undefined, why: string][] = [
    [adult, 'return_decided', 'send_referral', [], 'open here: nothing to do first'],
    [adult, 'identified', 'send_referral', ['decide_return'], 'one step on'],
    [
      adult,
      'identified',
      'accept_referral',
      ['decide_return', 'send_referral', 'acknowledge_referral'],
      'through the enquiry and its acknowledgement',
    ],
    [
      adult,
      'information_requested',
      'confirm_ready',
      ['accept_referral'],
      'accepting is open while information is requested',
    ],
    [
      adult,
      'identified',
      'confirm_arrival',
      [
        'decide_return',
        'send_referral',
        'acknowledge_referral',
        'accept_referral',
        'confirm_ready',
        'confirm_departure',
      ],
      'the whole way to departure',
    ],
    [
      adult,
      'declined',
      'accept_referral',
      ['refer_elsewhere', 'send_referral', 'acknowledge_referral'],
      'a declined referral goes to another partner',
    ],
    [adult, 'identified', 'resume', ['put_on_hold'], 'resuming needs a hold'],
    [
      adult,
      'identified',
      'send_update',
      ['decide_return', 'send_referral', 'acknowledge_referral', 'accept_referral'],
      'updates follow the acceptance',
    ],
    [adult, 'arrived', 'send_referral', undefined, 'no way back to the referral after arrival'],
    [adult, 'on_hold', 'confirm_ready', undefined, 'resuming is not followed: where it returns depends on the case'],
    [adult, 'closed', 'close', undefined, 'nothing leaves a terminal step'],
    [adult, 'identified', 'fly_to_the_moon', undefined, 'an unknown action'],
    [child, 'acknowledged', 'refer_elsewhere', undefined, 'a child is not referred elsewhere'],
    [child, 'acknowledged', 'confirm_departure', ['accept_referral', 'confirm_ready'], 'the child is accepted first'],
  ]
  for (const [definition, from, action, path, why] of table) {
    t.same(pathTo(definition, from, action), path, `${definition.id}: ${action} from ${from}: ${why}`)
  }
})

t.test('exits of a failed return: never on the way ahead, and open wherever the person may be', async (t) => {
  for (const definition of definitions) {
    const exits = Object.keys(definition.steps).filter((step) => definition.steps[step]?.exit)
    t.same(
      exits,
      ['no_show', 'missing', 'retrafficking_suspected', 'alternative_durable_solution'],
      `${definition.id}: the exit steps`,
    )
    const actions = [...new Set(definition.transitions.map((tr) => tr.action))]
    for (const from of nonTerminalSteps(definition).filter((step) => !exits.includes(step))) {
      for (const action of actions) {
        let step = from
        for (const taken of pathTo(definition, from, action) ?? []) {
          const tr = definition.transitions.find(
            (candidate) => candidate.action === taken && candidate.from.includes(step),
          )
          t.ok(tr && !definition.steps[tr.to]?.exit, `${definition.id}: the way from ${from} to ${action} avoids exits`)
          step = tr?.to ?? step
        }
      }
      const later = laterActions(definition, factsOf(nothing, from, 'sending')).map((l) => l.action)
      for (const report of ['report_no_show', 'report_missing', 'report_retrafficking', 'report_return_not_possible']) {
        t.notOk(later.includes(report), `${definition.id}: from ${from}, ${report} is not an action ahead`)
      }
    }
    const missingFrom = openAt(definition, 'report_missing')
    t.same(
      nonTerminalSteps(definition).filter((step) => !missingFrom.includes(step)),
      ['on_hold', 'missing'],
      `${definition.id}: a person may be reported missing from every step but a hold (resume first) and missing itself`,
    )
    t.same(
      definition.transitions.filter((tr) => tr.action === 'report_missing').map((tr) => [tr.side, tr.effects]),
      [
        ['lead', ['alert_both_sides']],
        ['receiving', ['alert_both_sides']],
      ],
      `${definition.id}: the lead reports, or the receiving partner a person who did not arrive; both sides are alerted`,
    )
    t.same(openAt(definition, 'person_found'), ['missing'])
    t.equal(
      definition.transitions.find((tr) => tr.action === 'person_found')?.to,
      '$previous',
      'found: back where it was',
    )
  }
  const child = registry.current('child')
  t.same(
    pathTo(child, 'identified', 'confirm_handback'),
    ['decide_return', 'send_referral', 'acknowledge_referral', 'decline_referral'],
    'a child declined is handed back to child protection',
  )
  t.same(
    child.transitions.find((tr) => tr.action === 'accept_referral')?.notify,
    [{ organisation_kind: 'child_protection_authority', country: 'receiving', about: 'child_arriving' }],
    "a child's acceptance tells the child protection authority of the receiving country",
  )
})

t.test('laterActions: the actions further on, where they open, the way there, what they need', async (t) => {
  const adult = registry.current('adult')
  const child = registry.current('child')
  const shape = (definition: SopDefinition, facts: CaseFacts) =>
    laterActions(definition, facts).map(({ action, operation, open_at, path }) => ({
      action,
      operation,
      open_at,
      path,
    }))
  const toAccept = ['decide_return', 'send_referral', 'acknowledge_referral']
  t.same(
    shape(adult, factsOf(nothing, 'identified', 'sending')),
    [
      { action: 'send_referral', operation: 'sendPacket', open_at: ['return_decided'], path: ['decide_return'] },
      {
        action: 'acknowledge_referral',
        operation: 'acknowledgePacket',
        open_at: ['referral_sent'],
        path: ['decide_return', 'send_referral'],
      },
      {
        action: 'request_information',
        operation: 'requestPacketInformation',
        open_at: ['acknowledged'],
        path: toAccept,
      },
      {
        action: 'answer_information',
        operation: 'sendPacket',
        open_at: ['information_requested'],
        path: [...toAccept, 'request_information'],
      },
      {
        action: 'accept_referral',
        operation: 'acceptPacket',
        open_at: ['acknowledged', 'information_requested'],
        path: toAccept,
      },
      {
        action: 'decline_referral',
        operation: 'declinePacket',
        open_at: ['acknowledged', 'information_requested'],
        path: toAccept,
      },
      {
        action: 'refer_elsewhere',
        operation: 'performTransition',
        open_at: ['declined'],
        path: [...toAccept, 'decline_referral'],
      },
      {
        action: 'confirm_ready',
        operation: 'performTransition',
        open_at: ['accepted'],
        path: [...toAccept, 'accept_referral'],
      },
      {
        action: 'confirm_departure',
        operation: 'performTransition',
        open_at: ['ready_to_travel'],
        path: [...toAccept, 'accept_referral', 'confirm_ready'],
      },
      {
        action: 'confirm_arrival',
        operation: 'performTransition',
        open_at: ['departed'],
        path: [...toAccept, 'accept_referral', 'confirm_ready', 'confirm_departure'],
      },
      {
        action: 'finalise_plan',
        operation: 'performTransition',
        open_at: ['arrived'],
        path: [...toAccept, 'accept_referral', 'confirm_ready', 'confirm_departure', 'confirm_arrival'],
      },
      {
        action: 'close',
        operation: 'performTransition',
        open_at: ['reintegration', 'missing', 'retrafficking_suspected', 'alternative_durable_solution'],
        path: [
          ...toAccept,
          'accept_referral',
          'confirm_ready',
          'confirm_departure',
          'confirm_arrival',
          'finalise_plan',
        ],
      },
      { action: 'resume', operation: 'performTransition', open_at: ['on_hold'], path: ['put_on_hold'] },
      {
        action: 'send_update',
        operation: 'sendPacket',
        open_at: ['accepted', 'ready_to_travel', 'departed', 'arrived', 'reintegration'],
        path: [...toAccept, 'accept_referral'],
      },
    ],
    'an adult just identified: every action ahead, in the order of the procedure, none open here',
  )
  const later = laterActions(adult, factsOf(nothing, 'identified', 'sending'))
  const unmetOf = (action: string) => later.find((l) => l.action === action)?.unmet.map((u) => u.code)
  t.same(unmetOf('send_referral'), ['consent.identity'], 'the enquiry will need a consent for identity data')
  t.same(unmetOf('accept_referral'), ['assessment.risk_and_needs'], 'the acceptance, the risk assessment')
  t.same(unmetOf('confirm_departure'), ['assessment.fit_to_travel', 'assessment.risk_and_needs'], 'departure both')
  t.same(unmetOf('acknowledge_referral'), [], 'acknowledging needs nothing')

  t.same(
    shape(adult, factsOf(nothing, 'arrived', 'receiving')),
    [
      {
        action: 'close',
        operation: 'performTransition',
        open_at: ['reintegration', 'missing', 'retrafficking_suspected', 'alternative_durable_solution'],
        path: ['finalise_plan'],
      },
      { action: 'resume', operation: 'performTransition', open_at: ['on_hold'], path: ['put_on_hold'] },
    ],
    'after arrival: only what lies ahead, nothing of the referral behind',
  )
  t.same(
    shape(child, factsOf(nothing, 'ready_to_travel', 'sending')).map((l) => [l.action, l.path]),
    [
      ['confirm_arrival', ['confirm_departure']],
      ['finalise_plan', ['confirm_departure', 'confirm_arrival']],
      ['close', ['confirm_departure', 'confirm_arrival', 'finalise_plan']],
      ['resume', ['put_on_hold']],
    ],
    'a child ready to travel',
  )

  // What a later action will need, read from the records the case holds now.
  const negative = assessment('best_interests_determination', { outcome: 'return_not_in_best_interests' })
  const facts = factsOf(
    {
      ...nothing,
      counterpartId: COUNTERPART,
      assessments: [assessment('family', { outcome: 'family_able_to_receive' }), negative],
    },
    'return_decided',
    'sending',
  )
  const accept = laterActions(child, facts).find((l) => l.action === 'accept_referral')
  t.same(accept?.path, ['send_referral', 'acknowledge_referral'])
  t.same(
    accept?.unmet.map(({ message: _, ...rest }) => rest),
    [
      { code: 'assessment.risk_and_needs' },
      {
        code: 'assessment.best_interests_determination.outcome',
        record_id: negative.id,
        category: 'family',
        field: 'outcome',
        expected: 'return_in_best_interests',
        actual: 'return_not_in_best_interests',
      },
    ],
    'the child cannot be accepted on a determination against the return: named with its record',
  )
})

// ---------------------------------------------------------------------------------------------
// 4. The child's safeguards, read from what the records say

const caseworker: Actor = { side: 'sending', roles: ['caseworker'] }

t.test('child: confirm_departure needs every child safeguard', async (t) => {
  const child = registry.current('child')
  const adult = registry.current('adult')
  t.equal(child.id, 'child-return')
  // Everything an adult's case has by ready_to_travel, but none of the child safeguards.
  const facts: CaseFacts = {
    step: 'ready_to_travel',
    previousStep: 'accepted',
    leadSide: 'sending',
    consents: [
      {
        guardian: false,
        provisions: [{ categories: ['identity'], recipients: [COUNTERPART], purposes: ['return_assistance'] }],
      },
    ],
    counterpartId: COUNTERPART,
    assessments: [
      assessment('risk_and_needs', { level: 'low', mitigations: [] }, 'sending'),
      assessment('risk_and_needs', { level: 'low', mitigations: [] }, 'receiving'),
      assessment('fit_to_travel', { fit: true }),
    ],
    records: new Set(['return_decision', 'travel_documents', 'reception', 'reintegration_plan_draft']),
  }
  const { allowed, refused } = evaluate(child, facts, caseworker)
  t.same(
    refused.find((o) => o.action === 'confirm_departure')?.unmet,
    [
      {
        code: 'assessment.best_interests_determination',
        message: 'A best-interests determination saying outcome = "return_in_best_interests" is not recorded.',
        field: 'outcome',
        expected: 'return_in_best_interests',
      },
      {
        code: 'assessment.family',
        message:
          'A family assessment in the country of return saying outcome = "family_able_to_receive" is not recorded.',
        field: 'outcome',
        expected: 'family_able_to_receive',
      },
      {
        code: 'consent.guardian',
        message: 'The guardian or legal representative has not consented to refer the child to the receiving partner.',
      },
      { code: 'record.escort', message: 'The escort arrangement is not recorded.' },
      { code: 'record.handover_protocol', message: 'The hand-over protocol is not recorded.' },
    ],
    'exactly the five safeguards, each with a sentence',
  )
  t.same(
    allowed.map((o) => o.action).sort(),
    ['put_on_hold', 'report_missing', 'report_no_show', 'send_update', 'withdraw'],
    'the caseworker may still update the referral, pause the case, report a no-show or a disappearance, or record that the child withdraws',
  )
  t.same(
    refused.map((o) => o.action).sort(),
    ['cancel', 'confirm_departure', 'report_retrafficking', 'report_return_not_possible'],
    'cancel and a return found not possible are blocked only by the role, suspected re-trafficking by the safety plan',
  )
  t.same(
    refused.find((o) => o.action === 'cancel')?.unmet.map((u) => u.code),
    ['actor.role'],
  )

  t.ok(
    evaluate(adult, facts, caseworker).allowed.some((o) => o.action === 'confirm_departure'),
    'an adult with the same facts may depart',
  )
})

t.test('child: the best-interests determination must follow the latest family assessment', async (t) => {
  const child = registry.current('child')
  const accept = child.transitions.find((tr) => tr.action === 'accept_referral') as Transition
  const receiving: Actor = { side: 'receiving', roles: ['caseworker'] }
  const jointRisk = () => [
    assessment('risk_and_needs', { level: 'low', mitigations: [] }, 'sending'),
    assessment('risk_and_needs', { level: 'low', mitigations: [] }, 'receiving'),
  ]
  const family = (outcome: string) => assessment('family', { outcome })
  const bid = (outcome: string) => assessment('best_interests_determination', { outcome })
  const able = 'family_able_to_receive'
  const positive = 'return_in_best_interests'

  const run = (label: string, sequence: AssessmentFact[], unmet: Omit<Unmet, 'message'>[], message?: RegExp) => {
    const facts: CaseFacts = {
      ...factsOf(nothing, 'acknowledged', 'sending'),
      counterpartId: COUNTERPART,
      assessments: [...jointRisk(), ...sequence],
    }
    if (unmet.length === 0) {
      assertAllowed(t, child, facts, receiving, accept, 'accepted', label)
      return
    }
    const refused = optionFor(child, facts, receiving, 'accept_referral').refused[0]
    t.same(
      refused?.unmet.map(({ message: _, ...rest }) => rest),
      unmet,
      label,
    )
    if (message) t.match(refused?.unmet[0]?.message, message, `${label}: says why`)
  }

  run('the family, then the determination', [family(able), bid(positive)], [])
  const early = bid(positive)
  const familyAfter = family(able)
  run(
    'the determination before the family assessment',
    [early, familyAfter],
    [{ code: 'assessment.best_interests_determination.revalidate', record_id: early.id, category: 'family' }],
    new RegExp(
      `^A best-interests determination must be made again after the latest family assessment in the country of return \\(record ${familyAfter.id}\\)\\.$`,
    ),
  )
  const first = bid(positive)
  run(
    'a family assessment made again after the determination',
    [family(able), first, family(able)],
    [{ code: 'assessment.best_interests_determination.revalidate', record_id: first.id, category: 'family' }],
  )
  run('and the determination made again after it', [family(able), bid(positive), family(able), bid(positive)], [])
  const unable = family('family_unable_to_receive')
  run(
    'the family cannot receive the child',
    [unable, bid(positive)],
    [
      {
        code: 'assessment.family.outcome',
        record_id: unable.id,
        category: 'family',
        field: 'outcome',
        expected: able,
        actual: 'family_unable_to_receive',
      },
    ],
    new RegExp(
      `^The latest family assessment in the country of return \\(record ${unable.id}\\) says outcome = "family_unable_to_receive"; this step needs "family_able_to_receive"\\.$`,
    ),
  )
  run('a pending family assessment, then a positive one', [family('pending'), family(able), bid(positive)], [])
  const pending = bid('pending')
  run(
    'a determination still pending',
    [family(able), pending],
    [
      {
        code: 'assessment.best_interests_determination.outcome',
        record_id: pending.id,
        category: 'family',
        field: 'outcome',
        expected: positive,
        actual: 'pending',
      },
    ],
  )
  const against = bid('return_not_in_best_interests')
  run(
    'a positive determination overturned by a later one',
    [family(able), bid(positive), against],
    [
      {
        code: 'assessment.best_interests_determination.outcome',
        record_id: against.id,
        category: 'family',
        field: 'outcome',
        expected: positive,
        actual: 'return_not_in_best_interests',
      },
    ],
  )
  run(
    'no family assessment and no determination',
    [],
    [
      { code: 'assessment.family', field: 'outcome', expected: able },
      { code: 'assessment.best_interests_determination', field: 'outcome', expected: positive },
    ],
  )
})

t.test('departure: fit to travel, and a risk that is acceptable', async (t) => {
  const adult = registry.current('adult')
  const depart = adult.transitions.find((tr) => tr.action === 'confirm_departure') as Transition
  const run = (label: string, sequence: AssessmentFact[], unmet: Omit<Unmet, 'message'>[], message?: RegExp) => {
    const facts: CaseFacts = {
      ...factsOf(nothing, 'ready_to_travel', 'sending', 'accepted'),
      counterpartId: COUNTERPART,
      assessments: sequence,
    }
    if (unmet.length === 0) {
      assertAllowed(t, adult, facts, caseworker, depart, 'departed', label)
      return
    }
    const refused = optionFor(adult, facts, caseworker, 'confirm_departure').refused[0]
    t.same(
      refused?.unmet.map(({ message: _, ...rest }) => rest),
      unmet,
      label,
    )
    if (message) t.match(refused?.unmet[0]?.message, message, `${label}: says why`)
  }
  const fit = () => assessment('fit_to_travel', { fit: true })
  const risk = (level: string, mitigations: string[] = []) => assessment('risk_and_needs', { level, mitigations })

  run('fit, low risk', [fit(), risk('low')], [])
  run('fit, medium risk', [fit(), risk('medium')], [])
  run('fit, high risk with a mitigation', [fit(), risk('high', ['an escort all the way'])], [])
  const high = risk('high')
  run(
    'fit, high risk and no mitigation',
    [fit(), high],
    [
      {
        code: 'assessment.risk_and_needs.level',
        record_id: high.id,
        category: 'psychosocial',
        field: 'level',
        expected: 'low or medium, or high with mitigations',
        actual: 'high',
      },
    ],
    new RegExp(
      `^The latest risk and needs assessment \\(record ${high.id}\\) rates the risk high and names no mitigation\\.$`,
    ),
  )
  const worse = risk('high')
  run(
    'a low risk reassessed high',
    [fit(), risk('low'), worse],
    [
      {
        code: 'assessment.risk_and_needs.level',
        record_id: worse.id,
        category: 'psychosocial',
        field: 'level',
        expected: 'low or medium, or high with mitigations',
        actual: 'high',
      },
    ],
  )
  run('a high risk reassessed low', [fit(), risk('high'), risk('low')], [])
  const unfit = assessment('fit_to_travel', { fit: false, conditions: 'Recovering from surgery.' })
  run(
    'not fit to travel',
    [unfit, risk('low')],
    [
      {
        code: 'assessment.fit_to_travel.fit',
        record_id: unfit.id,
        category: 'health',
        field: 'fit',
        expected: true,
        actual: false,
      },
    ],
    new RegExp(
      `^The latest fit-to-travel assessment \\(record ${unfit.id}\\) says fit = false; this step needs true\\.$`,
    ),
  )
  run('unfit, then found fit', [assessment('fit_to_travel', { fit: false }), fit(), risk('low')], [])
  run(
    'no assessment at all',
    [],
    [{ code: 'assessment.fit_to_travel', field: 'fit', expected: true }, { code: 'assessment.risk_and_needs' }],
  )
})

t.test('child: only a guardian consent naming the receiving partner counts', async (t) => {
  const child = registry.current('child')
  // confirm_departure from ready_to_travel with every fact but the guardian's consent.
  const transition = child.transitions.find(
    (tr) => tr.action === 'confirm_departure' && tr.from.includes('ready_to_travel'),
  ) as Transition
  t.ok(
    transition.guards.some((g) => g.kind === 'guardian_consent'),
    'confirm_departure asks for the guardian consent',
  )
  const needs = needsOf(transition.guards)
  const provision = (recipients: string[]) => ({
    categories: ['identity' as const],
    recipients,
    purposes: ['return_assistance' as const],
  })
  const table: [label: string, consents: CaseFacts['consents'], counterpartId: string | null, holds: boolean][] = [
    [
      'a guardian consent naming the receiving partner',
      [{ guardian: true, provisions: [provision([COUNTERPART])] }],
      COUNTERPART,
      true,
    ],
    [
      'a guardian consent naming it among other recipients, in its second provision',
      [{ guardian: true, provisions: [provision([SOMEONE_ELSE]), provision([SOMEONE_ELSE, COUNTERPART])] }],
      COUNTERPART,
      true,
    ],
    [
      'a guardian consent naming only another partner',
      [{ guardian: true, provisions: [provision([SOMEONE_ELSE])] }],
      COUNTERPART,
      false,
    ],
    [
      'a guardian consent for another partner and a consent without a guardian for the receiving partner',
      [
        { guardian: true, provisions: [provision([SOMEONE_ELSE])] },
        { guardian: false, provisions: [provision([COUNTERPART])] },
      ],
      COUNTERPART,
      false,
    ],
    [
      'a consent without a guardian naming the receiving partner',
      [{ guardian: false, provisions: [provision([COUNTERPART])] }],
      COUNTERPART,
      false,
    ],
    ['a guardian consent with no provisions', [{ guardian: true, provisions: [] }], COUNTERPART, false],
    [
      'a guardian consent naming another partner, while no receiving partner is known',
      [{ guardian: true, provisions: [provision([SOMEONE_ELSE])] }],
      null,
      true,
    ],
    [
      'a consent without a guardian, while no receiving partner is known',
      [{ guardian: false, provisions: [provision([COUNTERPART])] }],
      null,
      false,
    ],
    ['no consent at all', [], COUNTERPART, false],
  ]
  for (const [label, consents, counterpartId, holds] of table) {
    const facts: CaseFacts = { ...factsOf(needs, 'ready_to_travel', 'sending', 'accepted'), consents, counterpartId }
    if (holds) {
      assertAllowed(t, child, facts, caseworker, transition, transition.to, label)
    } else {
      assertRefused(t, child, facts, caseworker, transition.action, ['consent.guardian'], label, /receiving partner/)
    }
  }
})

t.test('the guardian consent of the facts covers nothing a consent_covers guard asks for', async (t) => {
  // Otherwise a "no consent for ..." cell above would still find its consent in the guardian's.
  for (const definition of definitions) {
    for (const tr of definition.transitions) {
      for (const guard of tr.guards) {
        if (guard.kind !== 'consent_covers') continue
        t.notOk(
          guard.purpose === GUARDIAN_PROVISION.purpose && guard.categories.includes(GUARDIAN_PROVISION.category),
          `${definition.id}: ${tr.action} asks for ${guard.categories.join(', ')} for ${guard.purpose}`,
        )
      }
    }
  }
})

// ---------------------------------------------------------------------------------------------
// 5. Continuum of care

const ISO_DURATION = /^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$/

for (const definition of definitions) {
  t.test(`${definition.id}: continuum of care`, async (t) => {
    const steps = definition.steps

    t.test('only confirm_arrival hands the lead to the receiving side, on arrival', async (t) => {
      const handing = definition.transitions.filter(handsOver)
      t.same(
        handing.map((tr) => tr.action),
        ['confirm_arrival'],
        'only confirm_arrival carries lead_to_receiving',
      )
      for (const tr of handing) {
        t.equal(tr.side, 'receiving', 'the receiving side confirms arrival')
        t.same(tr.from, ['departed'], 'it starts from departed')
        t.notOk(steps[tr.to]?.terminal, 'it leads to a step where care goes on')
      }
    })

    t.test('every step that waits for someone says who and by when', async (t) => {
      const from = new Date('2026-01-01T00:00:00.000Z')
      for (const [name, step] of Object.entries(steps)) {
        if (step.terminal) {
          t.equal(step.responsible, undefined, `${name} is terminal: nobody is responsible`)
          t.equal(step.deadline, undefined, `${name} is terminal: no deadline`)
          continue
        }
        t.ok(step.responsible, `${name}: a responsible side`)
        t.match(step.deadline, ISO_DURATION, `${name}: an ISO 8601 duration (${step.deadline})`)
        t.ok(addDuration(from, step.deadline ?? '').getTime() > from.getTime(), `${name}: the deadline is later`)
      }
    })

    t.test('after arrival, the sending side moves the case only as lead; it may still send updates', async (t) => {
      const afterArrival = receivingLedSteps(definition)
      t.ok(afterArrival.includes('arrived') && afterArrival.includes('reintegration'), 'arrived and reintegration')
      t.notOk(afterArrival.includes('departed'), 'departed is still led by the sending side')
      for (const step of afterArrival) {
        if (!steps[step]?.terminal) {
          t.not(steps[step]?.responsible, 'sending', `${step}: the sending side is not responsible`)
        }
        for (const tr of definition.transitions.filter((tr) => tr.from.includes(step) && tr.side === 'sending')) {
          t.equal(tr.to, '$current', `${tr.action} from ${step}, by the sending side, keeps the case in its step`)
          t.same(tr.exchange, { operation: 'send', packet: 'update' }, `${tr.action} from ${step} sends an update`)
        }
      }
    })

    t.test('the responsible side can move the case on from each step', async (t) => {
      for (const step of nonTerminalSteps(definition)) {
        const responsible = steps[step]?.responsible
        const sides = responsible === 'lead' ? leadSidesAt(definition, step) : [responsible as Side]
        for (const side of sides) {
          const onward = definition.transitions.filter(
            (tr) =>
              tr.from.includes(step) &&
              !['withdraw', 'put_on_hold'].includes(tr.action) &&
              !staysPut(tr) &&
              (tr.side === side || tr.side === 'lead'),
          )
          t.ok(onward.length > 0, `${step}: the ${side} side has a way on (${onward.map((tr) => tr.action)})`)
        }
      }
    })

    t.test('every step is reachable, and every step can still end', async (t) => {
      const all = reachable(definition, [definition.initial_step])
      t.same([...all].sort(), Object.keys(steps).sort(), 'every step is reachable from the initial step')
      const terminal = terminalSteps(definition)
      t.ok(terminal.length > 0, 'there are terminal steps')
      for (const step of nonTerminalSteps(definition)) {
        const ends = [...reachable(definition, [step])].filter((s) => terminal.includes(s))
        t.ok(ends.length > 0, `${step} can reach a terminal step (${ends})`)
        const endsWithoutWithdrawing = [...reachable(definition, [step], (tr) => tr.action !== 'withdraw')].filter(
          (s) => terminal.includes(s),
        )
        t.ok(
          endsWithoutWithdrawing.length > 0,
          `${step} can end even if the person does not withdraw (${endsWithoutWithdrawing})`,
        )
      }
    })

    t.test('the person may always withdraw', async (t) => {
      const withdraw = definition.transitions.filter((tr) => tr.action === 'withdraw')
      t.equal(withdraw.length, 1, 'one withdraw transition')
      const tr = withdraw[0] as Transition
      t.same([...tr.from].sort(), nonTerminalSteps(definition).sort(), 'open from every non-terminal step')
      t.same(tr.guards, [], 'nothing has to hold first')
      t.equal(tr.side, 'lead', 'whichever side leads records it')
      t.ok(steps[tr.to]?.terminal, 'it ends the case')
      t.ok(tr.effects?.includes('withdraw_consents'), 'consents to share go with it')
      for (const step of nonTerminalSteps(definition)) {
        for (const leadSide of leadSidesAt(definition, step)) {
          const facts = factsOf(nothing, step, leadSide, null)
          for (const role of tr.roles) {
            assertAllowed(t, definition, facts, { side: leadSide, roles: [role] }, tr, tr.to, `${step}, ${role}`)
          }
        }
      }
    })

    t.test('consent guards name real categories and purposes', async (t) => {
      // A typo would be a guard no consent can ever satisfy. The schema refuses one (see the registry
      // tests); this checks the loaded definitions against the TypeScript types as well.
      for (const tr of definition.transitions) {
        for (const guard of tr.guards) {
          if (guard.kind !== 'consent_covers') continue
          for (const category of guard.categories)
            t.ok(allDataCategories.includes(category), `${tr.action}: ${category}`)
          t.ok(allPurposes.includes(guard.purpose), `${tr.action}: ${guard.purpose}`)
        }
      }
    })
  })
}

// ---------------------------------------------------------------------------------------------
// 6. Registry

const definitionsDir = new URL('../src/sops/definitions/', import.meta.url)
const definitionFiles = readdirSync(definitionsDir)
  .filter((file) => file.endsWith('.json'))
  .sort()
  .map((file) => ({ file, json: JSON.parse(readFileSync(new URL(file, definitionsDir), 'utf8')) as SopDefinition }))

t.test('registry: both procedures load', async (t) => {
  t.same(
    definitions.map((d) => `${d.id}@${d.version}`),
    ['adult-return@2', 'child-return@2', 'child-return-pl-ua@1'],
  )
  t.equal(registry.current('adult').id, 'adult-return')
  t.equal(registry.current('child').id, 'child-return')
  t.equal(registry.find('child-return', 2)?.applies_to, 'child')
  t.equal(registry.find('child-return', 1), undefined, 'version 1 is no longer shipped')
  t.equal(registry.find('child-return', 3), undefined)
  for (const { file, json } of definitionFiles) {
    t.equal(file, `${json.id}.v${json.version}.json`, `${file} is named by its id and version`)
  }
})

function tempDir(t: Test, files: { file: string; json: unknown }[]): URL {
  const dir = mkdtempSync(join(tmpdir(), 'trm-sops-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const { file, json } of files) writeFileSync(join(dir, file), JSON.stringify(json, null, 2))
  return pathToFileURL(`${dir}/`)
}

function loadError(dir: URL): unknown {
  try {
    loadSops(dir)
    return undefined
  } catch (error) {
    return error
  }
}

type Breakage = [label: string, breakIt: (d: SopDefinition) => void, expected: RegExp]
const firstNonTerminal = (d: SopDefinition) => nonTerminalSteps(d)[0] as string
type ConsentCovers = Extract<Guard, { kind: 'consent_covers' }>
/** The first consent_covers guard of a definition (every procedure has one, on send_referral). */
function firstConsentGuard(d: SopDefinition): ConsentCovers {
  for (const tr of d.transitions) {
    for (const guard of tr.guards) if (guard.kind === 'consent_covers') return guard
  }
  throw new Error(`${d.id} has no consent_covers guard to break`)
}
/** The first transition that a packet operation takes (every procedure has them). */
function exchangeOf(d: SopDefinition, operation: PacketOperation): Transition {
  const found = d.transitions.find((tr) => tr.exchange?.operation === operation)
  if (!found) throw new Error(`${d.id} has no transition taken by ${operation}`)
  return found
}
const breakages: Breakage[] = [
  [
    'a transition to an unknown step',
    (d) => {
      ;(d.transitions[0] as Transition).to = 'nowhere'
    },
    /leads to unknown step nowhere/,
  ],
  [
    'a transition from an unknown step',
    (d) => {
      ;(d.transitions[0] as Transition).from.push('limbo')
    },
    /starts from unknown step limbo/,
  ],
  [
    'a non-terminal step without a deadline',
    (d) => {
      delete d.steps[firstNonTerminal(d)]?.deadline
    },
    /step \w+ needs a responsible side and a deadline/,
  ],
  [
    'a non-terminal step without a responsible side',
    (d) => {
      delete d.steps[firstNonTerminal(d)]?.responsible
    },
    /step \w+ needs a responsible side and a deadline/,
  ],
  [
    'a terminal step with a deadline',
    (d) => {
      const step = d.steps[terminalSteps(d)[0] as string]
      if (step) step.deadline = 'P1D'
    },
    /terminal step \w+ has a responsible side or deadline/,
  ],
  [
    'a step with no way out',
    (d) => {
      d.steps.limbo = { title: 'Limbo', description: 'Nobody can leave.', responsible: 'sending', deadline: 'P1D' }
    },
    /step limbo has no way out/,
  ],
  [
    'a transition leaving a terminal step',
    (d) => {
      ;(d.transitions[0] as Transition).from.push(terminalSteps(d)[0] as string)
    },
    /leaves terminal step/,
  ],
  [
    'the same action twice from a step',
    (d) => {
      d.transitions.push(structuredClone(d.transitions[0] as Transition))
    },
    /two transitions \w+ from \w+/,
  ],
  [
    'an unknown initial step',
    (d) => {
      d.initial_step = 'nowhere'
    },
    /initial step nowhere is not a step/,
  ],
  [
    'an unknown guard kind (schema)',
    (d) => {
      ;(d.transitions[0] as Transition).guards.push({ kind: 'horoscope' } as unknown as Guard)
    },
    /does not match sop\.schema\.json: \/transitions\/0\/guards\/\d+ /,
  ],
  [
    'a deadline that is not an ISO 8601 duration (schema)',
    (d) => {
      const step = d.steps[firstNonTerminal(d)]
      if (step) step.deadline = '30 days'
    },
    /does not match sop\.schema\.json: \/steps\/\w+\/deadline must match pattern/,
  ],
  [
    'a consent guard naming a misspelt category (schema)',
    (d) => {
      firstConsentGuard(d).categories = ['identity', 'helth' as DataCategory]
    },
    /does not match sop\.schema\.json: .*\/transitions\/\d+\/guards\/\d+\/categories\/1 must be equal to one of the allowed values/,
  ],
  [
    'a consent guard naming a category twice (schema)',
    (d) => {
      firstConsentGuard(d).categories = ['identity', 'identity']
    },
    /does not match sop\.schema\.json: .*\/transitions\/\d+\/guards\/\d+\/categories must NOT have duplicate items/,
  ],
  [
    'a consent guard naming a purpose outside the vocabulary (schema)',
    (d) => {
      firstConsentGuard(d).purpose = 'return' as Purpose
    },
    /does not match sop\.schema\.json: .*\/transitions\/\d+\/guards\/\d+\/purpose must be equal to one of the allowed values/,
  ],
  [
    'a send that does not name the packet it sends',
    (d) => {
      delete exchangeOf(d, 'send').exchange?.packet
    },
    /send_referral: a send names the packet it sends, and no other operation does/,
  ],
  [
    'an acknowledgement that names a packet',
    (d) => {
      exchangeOf(d, 'acknowledge').exchange = { operation: 'acknowledge', packet: 'enquiry' }
    },
    /acknowledge_referral: a send names the packet it sends, and no other operation does/,
  ],
  [
    'two actions taken by the same packet operation from one step',
    (d) => {
      d.transitions.push({ ...structuredClone(exchangeOf(d, 'send')), action: 'send_another_enquiry' })
    },
    /two transitions from return_decided take send/,
  ],
  [
    'two actions accepting from one step',
    (d) => {
      const accept = structuredClone(exchangeOf(d, 'accept'))
      d.transitions.push({ ...accept, action: 'accept_again', from: ['information_requested'], effects: [] })
    },
    /two transitions from information_requested take accept/,
  ],
  [
    'the full referral on a transition that does not accept',
    (d) => {
      ;(d.transitions[0] as Transition).effects = ['full_referral']
    },
    /decide_return: only accepting an enquiry sends the full referral/,
  ],
  [
    'the full referral with the enquiry',
    (d) => {
      exchangeOf(d, 'send').effects = ['full_referral']
    },
    /send_referral: only accepting an enquiry sends the full referral/,
  ],
  [
    'an exchange by an operation that does not exist (schema)',
    (d) => {
      exchangeOf(d, 'acknowledge').exchange = { operation: 'forward' as PacketOperation }
    },
    /does not match sop\.schema\.json: \/transitions\/\d+\/exchange\/operation must be equal to one of the allowed values/,
  ],
  [
    'a send of the full referral itself (schema: it only follows an acceptance)',
    (d) => {
      exchangeOf(d, 'send').exchange = { operation: 'send', packet: 'referral' as 'enquiry' }
    },
    /does not match sop\.schema\.json: \/transitions\/\d+\/exchange\/packet must be equal to one of the allowed values/,
  ],
  [
    'an outcome guard without the value it needs (schema)',
    (d) => {
      ;(d.transitions[0] as Transition).guards.push({
        kind: 'assessment_outcome',
        assessment: 'family',
        field: 'outcome',
      } as unknown as Guard)
    },
    /does not match sop\.schema\.json: \/transitions\/0\/guards\/\d+ /,
  ],
  [
    'a notification to a kind of organisation that is no authority (schema)',
    (d) => {
      ;(d.transitions[0] as Transition).notify = [
        { organisation_kind: 'iom_mission' as 'embassy', country: 'lead', about: 'person_missing' },
      ]
    },
    /does not match sop\.schema\.json: \/transitions\/0\/notify\/0\/organisation_kind must be equal to one of the allowed values/,
  ],
  [
    'a notification to a country that is no side (schema)',
    (d) => {
      ;(d.transitions[0] as Transition).notify = [
        { organisation_kind: 'embassy', country: 'PL' as 'lead', about: 'person_missing' },
      ]
    },
    /does not match sop\.schema\.json: \/transitions\/0\/notify\/0\/country must be equal to one of the allowed values/,
  ],
  [
    'a role that does not exist (schema)',
    (d) => {
      ;(d.transitions[0] as Transition).roles = ['janitor' as Role]
    },
    /does not match sop\.schema\.json: \/transitions\/0\/roles\/0 /,
  ],
  [
    'a final step that schedules visits',
    (d) => {
      ;(d.steps.closed as Step).schedule = [{ record: 'monitoring_visit', after: 'P1M' }]
    },
    /terminal step closed schedules obligations/,
  ],
  [
    'a scheduled visit due after a duration that is not one (schema)',
    (d) => {
      ;(d.steps.arrived as Step).schedule = [{ record: 'monitoring_visit', after: '1 month' }]
    },
    /does not match sop\.schema\.json: \/steps\/arrived\/schedule\/0\/after /,
  ],
]

t.test('registry: the schema knows exactly the data categories and purposes of the code', async (t) => {
  const schema = JSON.parse(readFileSync(new URL('../src/sops/sop.schema.json', import.meta.url), 'utf8'))
  const consentCovers = schema.$defs.guard.oneOf.find(
    (branch: { properties: { kind: { const: string } } }) => branch.properties.kind.const === 'consent_covers',
  )
  t.same([...consentCovers.properties.categories.items.enum].sort(), [...allDataCategories].sort(), 'categories')
  t.same([...consentCovers.properties.purpose.enum].sort(), [...allPurposes].sort(), 'purposes')
})

t.test('registry: a broken definition is refused, naming the file', async (t) => {
  t.doesNotThrow(() => loadSops(tempDir(t, definitionFiles)), 'unbroken copies load from another folder')
  for (const { file } of definitionFiles) {
    for (const [label, breakIt, expected] of breakages) {
      const files = definitionFiles.map((f) => {
        const json = structuredClone(f.json)
        if (f.file === file) breakIt(json)
        return { file: f.file, json }
      })
      const error = loadError(tempDir(t, files))
      t.type(error, SopDefinitionError, `${file}, ${label}: a SopDefinitionError`)
      const message = error instanceof Error ? error.message : ''
      t.ok(message.startsWith(`${file}`), `${file}, ${label}: names the file (${message})`)
      t.match(message, expected, `${file}, ${label}: says what is wrong`)
    }
  }

  const onlyAdult = definitionFiles.filter((f) => f.json.applies_to === 'adult')
  const error = loadError(tempDir(t, onlyAdult))
  t.type(error, SopDefinitionError, 'a folder without a procedure for children is refused')
  t.match((error as Error).message, /no procedure applies to a child/)

  const twice = [...definitionFiles, { file: 'zz-copy.json', json: definitionFiles[0]?.json }]
  t.type(loadError(tempDir(t, twice)), SopDefinitionError, 'two files with the same id and version are refused')

  const dir = mkdtempSync(join(tmpdir(), 'trm-sops-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'notes'))
  writeFileSync(join(dir, 'README.md'), 'not a procedure')
  for (const { file, json } of definitionFiles) writeFileSync(join(dir, file), JSON.stringify(json))
  t.equal(loadSops(pathToFileURL(`${dir}/`)).all().length, definitionFiles.length, 'only .json files are read')
})

/** A folder with copies of the generic definitions and these variants in its `variants/`. */
function withVariants(t: Test, variants: { file: string; json: unknown }[]): URL {
  const dir = tempDir(t, definitionFiles)
  mkdirSync(new URL('variants/', dir))
  for (const { file, json } of variants) writeFileSync(new URL(`variants/${file}`, dir), JSON.stringify(json))
  return dir
}

function childVariant(id: string, corridors: { sending: string; receiving: string }[], extra: object = {}) {
  return {
    file: `${id}.v1.json`,
    json: {
      id,
      version: 1,
      extends: { id: 'child-return', version: 2 },
      title: `Variant ${id}`,
      description: 'For the test.',
      corridors,
      ...extra,
    },
  }
}

t.test('registry: a case opens on the most specific procedure for its corridor', async (t) => {
  const cases: [appliesTo: 'adult' | 'child', sending: string, receiving: string, id: string][] = [
    ['child', 'PL', 'UA', 'child-return-pl-ua'],
    ['child', 'PL', 'AL', 'child-return'],
    ['adult', 'PL', 'UA', 'adult-return'],
    ['child', 'AT', 'UA', 'child-return'],
    ['child', 'UA', 'PL', 'child-return'],
  ]
  for (const [appliesTo, sending, receiving, id] of cases) {
    t.equal(registry.select(appliesTo, { sending, receiving }).id, id, `a ${appliesTo}, ${sending}→${receiving}: ${id}`)
  }

  const sops = loadSops(
    withVariants(t, [
      childVariant('exact', [{ sending: 'PL', receiving: 'UA' }]),
      childVariant('to-ukraine', [{ sending: '*', receiving: 'UA' }]),
      childVariant('from-poland', [
        { sending: 'PL', receiving: '*' },
        { sending: 'DE', receiving: 'AL' },
      ]),
    ]),
  )
  const ranked: [sending: string, receiving: string, id: string, why: string][] = [
    ['PL', 'UA', 'exact', 'the exact corridor beats a country of return and a sending country'],
    ['AT', 'UA', 'to-ukraine', 'the country of return beats the generic procedure'],
    ['PL', 'AL', 'from-poland', 'the sending country beats the generic procedure'],
    ['DE', 'AL', 'from-poland', 'any corridor a variant names'],
    ['AT', 'AL', 'child-return', 'no variant: the generic procedure'],
  ]
  for (const [sending, receiving, id, why] of ranked) {
    t.equal(sops.select('child', { sending, receiving }).id, id, `${sending}→${receiving}: ${id} (${why})`)
  }
  t.equal(sops.select('adult', { sending: 'PL', receiving: 'UA' }).id, 'adult-return', 'an adult: the adult procedure')
  t.equal(
    specificity({ corridors: [{ sending: 'PL', receiving: 'UA' }] }, { sending: 'PL', receiving: 'AL' }),
    undefined,
  )
})

t.test('registry: a variant resolves into its base with its own changes', async (t) => {
  const base = registry.find('child-return', 2) as SopDefinition
  const variant = registry.find('child-return-pl-ua', 1) as SopDefinition
  t.same(variant.extends, { id: 'child-return', version: 2 })
  t.same(variant.corridors, [{ sending: 'PL', receiving: 'UA' }])
  t.equal(variant.applies_to, 'child')
  t.match(variant.description, /[Ii]llustrative/, 'says that it is an example')
  t.equal(variant.steps.referral_sent?.deadline, 'P3D', 'the Ukrainian side acknowledges within 3 days')
  t.equal(base.steps.referral_sent?.deadline, 'P5D', 'the generic procedure keeps 5 days')
  t.equal(variant.steps.departed?.deadline, 'P1D', 'and confirms the arrival within a day')
  t.equal(base.steps.departed?.deadline, 'P3D', 'the generic procedure keeps 3 days')
  t.equal(variant.steps.departed?.responsible, 'receiving', 'a step keeps what the variant does not change')
  t.same(Object.keys(variant.steps), Object.keys(base.steps), 'the same steps')
  t.same(variant.transitions, base.transitions, 'the same transitions')
  for (const [name, step] of Object.entries(base.steps)) {
    if (name !== 'referral_sent' && name !== 'departed') t.same(variant.steps[name], step, `${name}: as in the base`)
  }

  const loaded = loadSops(
    withVariants(t, [
      childVariant('stricter', [{ sending: 'AT', receiving: 'MA' }], {
        guards: { confirm_arrival: [{ kind: 'record_present', record: 'handover_protocol' }] },
        transitions: [
          {
            action: 'notify_embassy',
            title: 'Notify the embassy',
            from: ['accepted'],
            to: '$current',
            side: 'sending',
            roles: ['caseworker'],
            guards: [],
          },
        ],
      }),
    ]),
  )
  const extended = loaded.find('stricter', 1) as SopDefinition
  const arrival = (d: SopDefinition) => d.transitions.find((tr) => tr.action === 'confirm_arrival')?.guards
  t.same(
    arrival(extended),
    [...(arrival(base) ?? []), { kind: 'record_present', record: 'handover_protocol' }],
    "a variant's guards come after the base's",
  )
  t.same(arrival(loaded.find('child-return', 2) as SopDefinition), arrival(base), 'and the base is not changed')
  t.equal(extended.transitions.at(-1)?.action, 'notify_embassy', 'a transition of its own is added')
  t.equal(extended.transitions.length, base.transitions.length + 1)
})

t.test('registry: variants that could tie, or do not fit their base, are refused', async (t) => {
  const refused: [label: string, variants: { file: string; json: unknown }[], expected: RegExp][] = [
    [
      'two variants for one corridor',
      [
        childVariant('one', [{ sending: 'PL', receiving: 'UA' }]),
        childVariant('two', [{ sending: 'PL', receiving: 'UA' }]),
      ],
      /both apply to a child in the corridor PL→UA/,
    ],
    [
      'two variants for one country of return',
      [
        childVariant('one', [{ sending: '*', receiving: 'UA' }]),
        childVariant('two', [{ sending: '*', receiving: 'UA' }]),
      ],
      /both apply to a child in the corridor \*→UA/,
    ],
    [
      'the id of a generic procedure',
      [{ ...childVariant('child-return', [{ sending: 'PL', receiving: 'UA' }]), file: 'child-return.v3.json' }],
      /child-return is a generic procedure; a variant has an id of its own/,
    ],
    [
      'a variant for every corridor',
      [childVariant('all', [{ sending: '*', receiving: '*' }])],
      /variant\.schema\.json/,
    ],
    [
      'an unknown base',
      [{ ...childVariant('xy', [{ sending: 'PL', receiving: 'UA' }]), file: 'x.v1.json' }].map((v) => ({
        ...v,
        json: { ...v.json, extends: { id: 'child-return', version: 9 } },
      })),
      /extends child-return@9, which is not a generic definition/,
    ],
    [
      'an unknown step',
      [childVariant('xy', [{ sending: 'PL', receiving: 'UA' }], { steps: { nowhere: { deadline: 'P1D' } } })],
      /step nowhere is not a step of child-return@2/,
    ],
    [
      'a guard for an unknown action',
      [childVariant('xy', [{ sending: 'PL', receiving: 'UA' }], { guards: { fly: [{ kind: 'risk_acceptable' }] } })],
      /fly is not an action of child-return@2/,
    ],
    [
      'a deadline on a final step',
      [childVariant('xy', [{ sending: 'PL', receiving: 'UA' }], { steps: { closed: { deadline: 'P1D' } } })],
      /terminal step closed/,
    ],
    [
      'a copy of a full definition',
      [{ file: 'x.v1.json', json: definitionFiles.find((f) => f.json.id === 'child-return')?.json }],
      /variant\.schema\.json/,
    ],
  ]
  for (const [label, variants, expected] of refused) {
    const error = loadError(withVariants(t, variants))
    t.type(error, SopDefinitionError, `${label}: refused`)
    t.match(error instanceof Error ? error.message : '', expected, `${label}: says why`)
  }
  const generic = definitionFiles.map((f) =>
    f.json.id === 'child-return' ? { ...f, json: { ...f.json, corridors: [{ sending: 'PL', receiving: 'UA' }] } } : f,
  )
  t.match(
    loadError(tempDir(t, generic)),
    { message: /a definition for some corridors is a variant/ },
    'corridors belong to variants',
  )
  const twoGeneric = [
    ...definitionFiles,
    {
      file: 'other-child.v1.json',
      json: { ...definitionFiles.find((f) => f.json.id === 'child-return')?.json, id: 'other-child', version: 1 },
    },
  ]
  t.match(
    loadError(tempDir(t, twoGeneric)),
    { message: /both the generic procedure for a child/ },
    'two generic procedures for children tie',
  )
})

// ---------------------------------------------------------------------------------------------
// 7. Diagram

for (const definition of definitions) {
  t.test(`${definition.id}: the Mermaid diagram`, async (t) => {
    const lines = mermaidDiagram(definition)
      .split('\n')
      .map((line) => line.trim())
    t.equal(lines[0], 'stateDiagram-v2')
    t.ok(lines.includes(`[*] --> ${definition.initial_step}`), 'the initial step')
    for (const transition of definition.transitions) {
      for (const from of transition.from) {
        if (isPrevious(transition)) {
          t.ok(
            lines.includes(`note right of ${from} : ${transition.action} returns to the step before`),
            `${transition.action} from ${from} as a note`,
          )
        } else {
          const label = [
            transition.action,
            ...(transition.exchange ? [operationOf(transition)] : []),
            ...(transition.effects?.includes('alert_both_sides') ? ['alerts both sides'] : []),
            ...(transition.notify ?? []).map((n) => `notifies ${n.organisation_kind} (${n.country})`),
          ].join(' · ')
          const line = `${from} --> ${staysPut(transition) ? from : transition.to} : ${label}`
          t.ok(lines.includes(line), line)
        }
      }
    }
    for (const line of [
      'return_decided --> referral_sent : send_referral · sendPacket',
      'referral_sent --> acknowledged : acknowledge_referral · acknowledgePacket',
      'acknowledged --> information_requested : request_information · requestPacketInformation',
      'information_requested --> acknowledged : answer_information · sendPacket',
      'acknowledged --> accepted : accept_referral · acceptPacket',
      'information_requested --> accepted : accept_referral · acceptPacket',
      'accepted --> accepted : send_update · sendPacket',
      'reintegration --> reintegration : send_update · sendPacket',
    ]) {
      t.ok(
        lines.some((drawn) => drawn === line || drawn.startsWith(`${line} · notifies `)),
        `packet operations are arrows of the diagram, named with their operation: ${line}`,
      )
    }
    const exits =
      definition.applies_to === 'child'
        ? [
            'acknowledged --> accepted : accept_referral · acceptPacket · notifies child_protection_authority (receiving)',
            'acknowledged --> handback_to_child_protection : decline_referral · declinePacket · notifies child_protection_authority (sending)',
            'accepted --> missing : report_missing · alerts both sides · notifies child_protection_authority (lead)',
            'departed --> missing : report_missing · alerts both sides · notifies child_protection_authority (receiving)',
            'arrived --> retrafficking_suspected : report_retrafficking · notifies national_referral_mechanism (lead) · notifies child_protection_authority (lead)',
            'handback_to_child_protection --> not_returned : confirm_handback',
          ]
        : [
            'accepted --> missing : report_missing · alerts both sides',
            'departed --> missing : report_missing · alerts both sides',
            'arrived --> retrafficking_suspected : report_retrafficking · notifies national_referral_mechanism (lead)',
          ]
    for (const line of [
      ...exits,
      'ready_to_travel --> no_show : report_no_show',
      'no_show --> accepted : rebook_departure',
      'no_show --> alternative_durable_solution : report_return_not_possible',
      'alternative_durable_solution --> closed : close',
      'note right of missing : person_found returns to the step before',
    ]) {
      t.ok(lines.includes(line), `an exit, its alerts and notices are in the diagram: ${line}`)
    }
    t.notOk(
      lines.some((line) => line.includes('$previous') || line.includes('$current')),
      'no arrow to $previous or $current',
    )
    for (const step of terminalSteps(definition)) t.ok(lines.includes(`${step} --> [*]`), `${step} --> [*]`)
    for (const step of nonTerminalSteps(definition)) {
      t.notOk(lines.includes(`${step} --> [*]`), `${step} is not an end`)
    }
  })
}

t.test('the contract shows the current diagram of each procedure', async (t) => {
  const contract = readFileSync(new URL('../openapi/openapi.yaml', import.meta.url), 'utf8')
  for (const appliesTo of ['adult', 'child'] as const) {
    const definition = registry.current(appliesTo)
    t.ok(
      contract.includes(`(\`${definition.id}\` version ${definition.version})`),
      `${definition.id}: the contract names version ${definition.version}`,
    )
    const drawn = mermaidDiagram(definition)
      .trimEnd()
      .split('\n')
      .map((line) => `      ${line}`)
      .join('\n')
    t.ok(contract.includes(drawn), `${definition.id}: the procedures tag holds the diagram as GET /v1/sops draws it`)
  }
})

// ---------------------------------------------------------------------------------------------
// 8. Deadlines

t.test('addDuration', async (t) => {
  const cases: [from: string, duration: string, due: string, why: string][] = [
    ['2026-01-01T00:00:00.000Z', 'P30D', '2026-01-31T00:00:00.000Z', '30 days'],
    ['2026-02-15T09:30:00.000Z', 'P30D', '2026-03-17T09:30:00.000Z', '30 days across a short February'],
    ['2026-03-15T10:00:00.000Z', 'P1M', '2026-04-15T10:00:00.000Z', 'a calendar month'],
    // A month from the last day of a month is the last day of the next, as people count (not "31
    // February" rolled over into March).
    ['2026-01-31T10:00:00.000Z', 'P1M', '2026-02-28T10:00:00.000Z', 'Jan 31 + 1 month is the last day of February'],
    ['2028-01-31T10:00:00.000Z', 'P1M', '2028-02-29T10:00:00.000Z', 'in a leap year, February 29'],
    ['2026-03-15T10:00:00.000Z', 'P1Y', '2027-03-15T10:00:00.000Z', 'a calendar year'],
    ['2028-02-29T10:00:00.000Z', 'P1Y', '2029-02-28T10:00:00.000Z', 'Feb 29 + 1 year is February 28'],
    ['2026-03-28T12:00:00.000Z', 'PT36H', '2026-03-30T00:00:00.000Z', '36 hours, in UTC (no daylight saving)'],
    ['2026-06-15T23:59:59.000Z', 'PT1S', '2026-06-16T00:00:00.000Z', 'one second, past midnight'],
    ['2026-06-15T12:00:00.000Z', 'P2W', '2026-06-29T12:00:00.000Z', 'two weeks'],
    ['2026-12-31T00:00:00.000Z', 'P1D', '2027-01-01T00:00:00.000Z', 'into the next year'],
    ['2026-01-01T00:00:00.000Z', 'P1Y2M3DT4H5M6S', '2027-03-04T04:05:06.000Z', 'every part'],
  ]
  for (const [from, duration, due, why] of cases) {
    const start = new Date(from)
    t.equal(addDuration(start, duration).toISOString(), due, `${from} + ${duration} = ${due}: ${why}`)
    t.equal(start.toISOString(), from, `${duration}: the start is not changed`)
  }
  for (const invalid of [
    '',
    'P',
    'PT',
    'P1DT',
    '30D',
    'p30d',
    'P1.5D',
    'P-1D',
    'PT1D',
    'P1D1Y',
    ' P1D',
    'P1D ',
    'P30',
  ]) {
    t.throws(() => addDuration(new Date(), invalid), /not an ISO 8601 duration/, `${JSON.stringify(invalid)} throws`)
  }
})

t.test('addDuration on the calendar of a time zone', async (t) => {
  const cases: [from: string, duration: string, zone: string, due: string, why: string][] = [
    // 09:00 in Warsaw is 08:00 UTC in winter.
    [
      '2027-01-31T08:00:00.000Z',
      'P1M',
      'Europe/Warsaw',
      '2027-02-28T08:00:00.000Z',
      '31 January + 1 month: 28 February, 09:00',
    ],
    [
      '2028-01-31T08:00:00.000Z',
      'P1M',
      'Europe/Warsaw',
      '2028-02-29T08:00:00.000Z',
      'in a leap year: 29 February, 09:00',
    ],
    // 00:30 on 31 March in Warsaw is still 30 March in UTC: the month ends by the local date.
    [
      '2027-03-30T22:30:00.000Z',
      'P1M',
      'Europe/Warsaw',
      '2027-04-29T22:30:00.000Z',
      '31 March 00:30 local + 1 month: 30 April',
    ],
    [
      '2027-03-30T22:30:00.000Z',
      'P1M',
      'UTC',
      '2027-04-30T22:30:00.000Z',
      'the same moment in UTC: 30 March + 1 month',
    ],
    // Summer time starts on the last Sunday of March (28 March 2027): a day is 23 hours, 24 hours is 13:00.
    [
      '2027-03-27T11:00:00.000Z',
      'P1D',
      'Europe/Warsaw',
      '2027-03-28T10:00:00.000Z',
      'P1D keeps 12:00 across the change',
    ],
    ['2027-03-27T11:00:00.000Z', 'PT24H', 'Europe/Warsaw', '2027-03-28T11:00:00.000Z', 'PT24H is elapsed time: 13:00'],
    [
      '2027-03-27T01:30:00.000Z',
      'P1D',
      'Europe/Warsaw',
      '2027-03-28T01:30:00.000Z',
      '02:30 does not exist on 28 March: 03:30',
    ],
    // Winter time returns on the last Sunday of October (31 October 2027): that day is 25 hours.
    [
      '2027-10-30T10:00:00.000Z',
      'P1D',
      'Europe/Warsaw',
      '2027-10-31T11:00:00.000Z',
      'P1D keeps 12:00 back to winter time',
    ],
    // The same moment, 22:30 UTC on 30 April: already 1 May in Kyiv (UTC+3), still 30 April in Casablanca (UTC+1).
    [
      '2027-04-30T22:30:00.000Z',
      'P1M',
      'Europe/Kyiv',
      '2027-05-31T22:30:00.000Z',
      'Kyiv: 1 May 01:30 + 1 month = 1 June 01:30',
    ],
    [
      '2027-04-30T22:30:00.000Z',
      'P1M',
      'Africa/Casablanca',
      '2027-05-30T22:30:00.000Z',
      'Casablanca: 30 April 23:30 + 1 month = 30 May 23:30',
    ],
  ]
  for (const [from, duration, zone, due, why] of cases) {
    t.equal(
      addDuration(new Date(from), duration, zone).toISOString(),
      due,
      `${from} + ${duration} in ${zone} = ${due}: ${why}`,
    )
  }
  t.throws(() => addDuration(new Date(), 'P1D', 'Europe/Atlantis'), /not an IANA time zone/, 'an unknown zone throws')
  t.throws(() => addDuration(new Date(), 'P1D', '+02:00'), /not an IANA time zone/, 'an offset is not a zone')
})
