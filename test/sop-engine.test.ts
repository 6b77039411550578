import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t, { type Test } from 'tap'
import type { DataCategory, Purpose, Role } from '../src/db/schema.js'
import { addDuration } from '../src/sops/deadline.js'
import type { AssessmentKind, Guard, RecordKind, Side, SopDefinition, Transition } from '../src/sops/definition.js'
import { mermaidDiagram } from '../src/sops/diagram.js'
import { type Actor, type CaseFacts, evaluate } from '../src/sops/engine.js'
import { loadSops, SopDefinitionError } from '../src/sops/registry.js'

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
} satisfies Record<DataCategory, true>) as DataCategory[]

const otherSide = (side: Side): Side => (side === 'sending' ? 'receiving' : 'sending')
const isPrevious = (transition: Transition) => transition.to === '$previous'

// ---------------------------------------------------------------------------------------------
// The graph of a procedure

/** Steps with a transition (not `$previous`) into `step`: where a `$previous` transition from it may return to. */
function predecessors(definition: SopDefinition, step: string): string[] {
  return Object.keys(definition.steps).filter((from) =>
    definition.transitions.some((tr) => !isPrevious(tr) && tr.to === step && tr.from.includes(from)),
  )
}

/** Where one transition from `step` may lead; `$previous` to any step the case may have come from. */
function targets(definition: SopDefinition, transition: Transition, step: string): string[] {
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
  assessments: { kind: AssessmentKind; side: Side }[]
  packetStatuses: string[]
  records: RecordKind[]
}

/** Exactly what the guards ask for, nothing more. */
function needsOf(guards: readonly Guard[]): Needs {
  const needs: Needs = {
    counterpartId: COUNTERPART,
    provisions: [],
    guardianRecipient: null,
    assessments: [],
    packetStatuses: [],
    records: [],
  }
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
        needs.assessments.push({ kind: guard.assessment, side: 'sending' })
        if (guard.joint) needs.assessments.push({ kind: guard.assessment, side: 'receiving' })
        break
      case 'packet':
        needs.packetStatuses.push(guard.status)
        break
      case 'record_present':
        needs.records.push(guard.record)
        break
    }
  }
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
    packetStatuses: new Set(needs.packetStatuses),
    assessments: needs.assessments,
    records: new Set(needs.records),
  }
}

const nothing: Needs = {
  counterpartId: null,
  provisions: [],
  guardianRecipient: null,
  assessments: [],
  packetStatuses: [],
  records: [],
}

interface Variant {
  label: string
  needs: Needs
  codes: string[]
  /** A fragment each message must hold, where it says which fact is missing. */
  message?: RegExp
}

/** For one guard: the facts with just that guard's fact taken away (in each way it can go missing). */
function withoutGuard(needs: Needs, guard: Guard): Variant[] {
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
          codes: [`assessment.${kind}`],
          message: /is not completed/,
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
    case 'packet':
      return [
        {
          label: `packet never ${guard.status}`,
          needs: { ...needs, packetStatuses: needs.packetStatuses.filter((s) => s !== guard.status) },
          codes: [`packet.${guard.status}`],
        },
      ]
    case 'record_present':
      return [
        {
          label: `no ${guard.record} record`,
          needs: { ...needs, records: needs.records.filter((r) => r !== guard.record) },
          codes: [`record.${guard.record}`],
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
}

// ---------------------------------------------------------------------------------------------
// 1. Every transition, every step it starts from

/** What blocks each action when no fact holds (the actor on the right side, with a role allowed), in guard order. */
const unmetWhenNothingHolds: Record<string, Record<string, string[]>> = {
  'adult-return': {
    decide_return: ['record.return_decision'],
    send_referral: ['consent.identity', 'packet.sent'],
    acknowledge_referral: ['packet.acknowledged'],
    accept_referral: ['assessment.risk_and_needs', 'packet.accepted'],
    decline_referral: ['packet.declined'],
    refer_elsewhere: [],
    confirm_ready: [
      'record.travel_documents',
      'assessment.fit_to_travel',
      'record.escort',
      'record.reception',
      'record.reintegration_plan_draft',
    ],
    confirm_departure: [],
    confirm_arrival: [],
    finalise_plan: ['record.reintegration_plan_final'],
    close: ['record.closure_report'],
    withdraw: [],
    put_on_hold: [],
    resume: [],
    cancel: [],
  },
  'child-return': {
    decide_return: ['record.return_decision', 'assessment.best_interests_determination', 'record.guardian_appointment'],
    send_referral: ['consent.identity', 'consent.guardian', 'packet.sent'],
    acknowledge_referral: ['packet.acknowledged'],
    accept_referral: ['assessment.risk_and_needs', 'assessment.family', 'packet.accepted'],
    decline_referral: ['packet.declined'],
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
    ],
    confirm_arrival: [],
    finalise_plan: ['record.reintegration_plan_final'],
    close: ['record.closure_report'],
    withdraw: [],
    put_on_hold: [],
    resume: [],
    cancel: [],
  },
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
              const to = previousStep ?? transition.to
              const facts = (n: Needs) => factsOf(n, from, leadSide, previousStep)
              const where = `${leadSide} leads${previousStep ? `, came from ${previousStep}` : ''}`

              for (const role of transition.roles) {
                assertAllowed(t, definition, facts(needs), { side, roles: [role] }, transition, to, `${where}, ${role}`)
              }
              for (const variant of transition.guards.flatMap((guard) => withoutGuard(needs, guard))) {
                assertRefused(
                  t,
                  definition,
                  facts(variant.needs),
                  actor,
                  transition.action,
                  variant.codes,
                  `${where}, ${variant.label}`,
                  variant.message,
                )
              }
              // Consents name the receiving partner: before there is one, no consent guard holds, even a
              // guardian's consent that names the partner the referral will go to.
              if (transition.guards.some((g) => g.kind === 'consent_covers' || g.kind === 'guardian_consent')) {
                const codes = transition.guards.flatMap((g) =>
                  g.kind === 'consent_covers'
                    ? g.categories.map((c) => `consent.${c}`)
                    : g.kind === 'guardian_consent'
                      ? ['consent.guardian']
                      : [],
                )
                assertRefused(
                  t,
                  definition,
                  facts({ ...needs, counterpartId: null }),
                  actor,
                  transition.action,
                  codes,
                  `${where}, no receiving partner yet`,
                )
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
              const row = unmetWhenNothingHolds[definition.id]?.[transition.action] ?? ['(no row in the table)']
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
// 2. The child's safeguards before departure

t.test('child: confirm_departure needs every child safeguard', async (t) => {
  const child = registry.current('child')
  const adult = registry.current('adult')
  t.equal(child.id, 'child-return')
  // Everything a case has by ready_to_travel, except the child safeguards.
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
    packetStatuses: new Set(['sent', 'acknowledged', 'accepted']),
    assessments: [
      { kind: 'risk_and_needs', side: 'sending' },
      { kind: 'risk_and_needs', side: 'receiving' },
      { kind: 'fit_to_travel', side: 'sending' },
    ],
    records: new Set(['return_decision', 'travel_documents', 'reception', 'reintegration_plan_draft']),
  }
  const caseworker: Actor = { side: 'sending', roles: ['caseworker'] }
  const { allowed, refused } = evaluate(child, facts, caseworker)
  t.same(
    refused.find((o) => o.action === 'confirm_departure')?.unmet,
    [
      {
        code: 'assessment.best_interests_determination',
        message: 'A best-interests determination validating the return is not completed.',
      },
      { code: 'assessment.family', message: 'A family assessment in the country of return is not completed.' },
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
    ['put_on_hold', 'withdraw'],
    'the caseworker may still pause the case or record that the child withdraws',
  )
  t.same(refused.map((o) => o.action).sort(), ['cancel', 'confirm_departure'], 'cancel is blocked only by the role')
  t.same(
    refused.find((o) => o.action === 'cancel')?.unmet.map((u) => u.code),
    ['actor.role'],
  )

  t.ok(
    evaluate(adult, facts, caseworker).allowed.some((o) => o.action === 'confirm_departure'),
    'an adult with the same facts may depart',
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
  const caseworker: Actor = { side: 'sending', roles: ['caseworker'] }
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
      'a guardian consent, but no receiving partner yet',
      [{ guardian: true, provisions: [provision([COUNTERPART])] }],
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
// 3. Continuum of care

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

    t.test('after arrival, the sending side takes no action but as lead', async (t) => {
      const afterArrival = receivingLedSteps(definition)
      t.ok(afterArrival.includes('arrived') && afterArrival.includes('reintegration'), 'arrived and reintegration')
      t.notOk(afterArrival.includes('departed'), 'departed is still led by the sending side')
      for (const step of afterArrival) {
        if (!steps[step]?.terminal) {
          t.not(steps[step]?.responsible, 'sending', `${step}: the sending side is not responsible`)
        }
        for (const tr of definition.transitions.filter((tr) => tr.from.includes(step))) {
          t.not(tr.side, 'sending', `${tr.action} from ${step} is not taken by the sending side`)
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
// 4. Registry

const definitionsDir = new URL('../src/sops/definitions/', import.meta.url)
const definitionFiles = readdirSync(definitionsDir)
  .filter((file) => file.endsWith('.json'))
  .sort()
  .map((file) => ({ file, json: JSON.parse(readFileSync(new URL(file, definitionsDir), 'utf8')) as SopDefinition }))

t.test('registry: both procedures load', async (t) => {
  t.same(
    definitions.map((d) => `${d.id}@${d.version}`),
    ['adult-return@1', 'child-return@1'],
  )
  t.equal(registry.current('adult').id, 'adult-return')
  t.equal(registry.current('child').id, 'child-return')
  t.equal(registry.find('child-return', 1)?.applies_to, 'child')
  t.equal(registry.find('child-return', 2), undefined)
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
    'a role that does not exist (schema)',
    (d) => {
      ;(d.transitions[0] as Transition).roles = ['janitor' as Role]
    },
    /does not match sop\.schema\.json: \/transitions\/0\/roles\/0 /,
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

// ---------------------------------------------------------------------------------------------
// 5. Diagram

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
          const line = `${from} --> ${transition.to} : ${transition.action}`
          t.ok(lines.includes(line), line)
        }
      }
    }
    t.notOk(
      lines.some((line) => line.includes('$previous')),
      'no arrow to $previous',
    )
    for (const step of terminalSteps(definition)) t.ok(lines.includes(`${step} --> [*]`), `${step} --> [*]`)
    for (const step of nonTerminalSteps(definition)) {
      t.notOk(lines.includes(`${step} --> [*]`), `${step} is not an end`)
    }
  })
}

// ---------------------------------------------------------------------------------------------
// 6. Deadlines

t.test('addDuration', async (t) => {
  const cases: [from: string, duration: string, due: string, why: string][] = [
    ['2026-01-01T00:00:00.000Z', 'P30D', '2026-01-31T00:00:00.000Z', '30 days'],
    ['2026-02-15T09:30:00.000Z', 'P30D', '2026-03-17T09:30:00.000Z', '30 days across a short February'],
    ['2026-03-15T10:00:00.000Z', 'P1M', '2026-04-15T10:00:00.000Z', 'a calendar month'],
    // JavaScript's Date does not clamp to the end of the month: 31 January + 1 month is "31 February",
    // which rolls over into March (2026 is not a leap year: 3 March). ISO 8601 / Temporal would give
    // 28 February. For deadlines the roll-over is up to three days later than a clamped month.
    ['2026-01-31T10:00:00.000Z', 'P1M', '2026-03-03T10:00:00.000Z', 'Jan 31 + 1 month rolls over to March 3'],
    ['2028-01-31T10:00:00.000Z', 'P1M', '2028-03-02T10:00:00.000Z', 'in a leap year, to March 2'],
    ['2026-03-15T10:00:00.000Z', 'P1Y', '2027-03-15T10:00:00.000Z', 'a calendar year'],
    ['2028-02-29T10:00:00.000Z', 'P1Y', '2029-03-01T10:00:00.000Z', 'Feb 29 + 1 year rolls over to March 1'],
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
