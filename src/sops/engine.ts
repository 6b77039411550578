import type { DataCategory, Purpose, Role } from '../db/schema.js'
import { consentCovers } from '../disclosure/consent-scope.js'
import { type Localisable, type Params, withMessage } from '../i18n/catalogue.js'
import type {
  AssessmentKind,
  Guard,
  PacketOperation,
  RecordKind,
  Side,
  SopDefinition,
  Transition,
} from './definition.js'
import { recordKinds } from './records.js'

/** What the engine knows of a case: plain facts, gathered by the caller. */
export interface CaseFacts {
  step: string
  /** The step before the current one, where `resume` returns to. */
  previousStep: string | null
  leadSide: Side
  /** Active consents, each as the provisions it grants and whether a guardian consented too. */
  consents: readonly {
    guardian: boolean
    provisions: readonly {
      categories: readonly DataCategory[]
      recipients: readonly string[]
      purposes: readonly Purpose[]
    }[]
  }[]
  /** The receiving partner of the current referral, if any. */
  counterpartId: string | null
  /** Assessments, oldest first, with the side that recorded each and what it found. */
  assessments: readonly AssessmentFact[]
  records: ReadonlySet<RecordKind>
  /** The latest record of each kind, with what it says, for the guards that read a record's fields. */
  latestRecords?: ReadonlyMap<RecordKind, { id: string; data: Readonly<Record<string, unknown>> }>
}

export interface AssessmentFact {
  id: string
  kind: AssessmentKind
  side: Side
  data: Readonly<Record<string, unknown>>
}

export interface Actor {
  /** The side the actor's organisation is on in this case; `null` for an invited party. */
  side: Side | null
  roles: readonly Role[]
}

/** A precondition that does not hold: a stable code for machines and a sentence for people (in English, sayable in others). */
export interface Unmet extends Localisable {
  code: string
  /** For a record whose outcome does not allow the step: the record, its category, the field, what it says and what is needed. */
  record_id?: string
  category?: DataCategory
  field?: string
  expected?: string | boolean
  actual?: unknown
}

/** The operation that takes a transition: the packet operations for an exchange, else `performTransition`. */
export const operationOf: Record<PacketOperation, string> = {
  send: 'sendPacket',
  acknowledge: 'acknowledgePacket',
  accept: 'acceptPacket',
  decline: 'declinePacket',
  request_information: 'requestPacketInformation',
}

export interface ActionOption {
  action: string
  title: string
  to: string
  operation: string
  inputs: ('reason' | 'review_date')[]
  unmet: Unmet[]
}

export interface LaterAction {
  action: string
  title: string
  operation: string
  open_at: string[]
  /** The actions that lead from the current step to a step where this one is open. */
  path: string[]
  /** The guards that would refuse it if the case were there now. */
  unmet: Unmet[]
}

/** Every action open from the case's step: those the actor may take now, and the rest with what blocks them. */
export function evaluate(definition: SopDefinition, facts: CaseFacts, actor: Actor) {
  const allowed: ActionOption[] = []
  const refused: ActionOption[] = []
  for (const transition of definition.transitions) {
    if (!transition.from.includes(facts.step)) continue
    const unmet = [...actorUnmet(transition, facts, actor), ...guardsUnmet(transition, facts)]
    const option = {
      action: transition.action,
      title: transition.title,
      to: targetStep(transition, facts),
      operation: transitionOperation(transition),
      inputs: transition.inputs ?? [],
      unmet,
    }
    ;(unmet.length === 0 ? allowed : refused).push(option)
  }
  return { allowed, refused }
}

/**
 * The actions not open from the case's step, where each opens, how to get there, and which of its
 * guards fail now. A report that the return failed (a transition into an exit step) lies on no way
 * ahead, and is not among them.
 */
export function laterActions(definition: SopDefinition, facts: CaseFacts): LaterAction[] {
  const seen = new Set<string>(openHere(definition, facts.step))
  const later: LaterAction[] = []
  for (const transition of definition.transitions) {
    if (seen.has(transition.action) || definition.steps[transition.to]?.exit) continue
    seen.add(transition.action)
    const path = pathTo(definition, facts.step, transition.action)
    if (path === undefined) continue
    later.push({
      action: transition.action,
      title: transition.title,
      operation: transitionOperation(transition),
      open_at: openAt(definition, transition.action),
      path,
      unmet: transition.guards.flatMap((guard) => guardUnmet(guard, facts)),
    })
  }
  return later
}

function openHere(definition: SopDefinition, step: string): string[] {
  return definition.transitions.filter((t) => t.from.includes(step)).map((t) => t.action)
}

export function transitionOperation(transition: Transition): string {
  return transition.exchange ? operationOf[transition.exchange.operation] : 'performTransition'
}

/** The steps from which an action is open. */
export function openAt(definition: SopDefinition, action: string): string[] {
  return [...new Set(definition.transitions.filter((t) => t.action === action).flatMap((t) => t.from))]
}

/**
 * The shortest run of forward actions from a step to one where the action is open (ends, exits of a
 * failed return and returns to an earlier step are not followed); `undefined` when no such run exists.
 */
export function pathTo(definition: SopDefinition, from: string, action: string): string[] | undefined {
  const targets = new Set(openAt(definition, action))
  const paths = new Map<string, string[]>([[from, []]])
  const queue = [from]
  for (let step = queue.shift(); step !== undefined; step = queue.shift()) {
    const path = paths.get(step) ?? []
    if (targets.has(step)) return path
    for (const transition of definition.transitions) {
      if (!transition.from.includes(step) || transition.to.startsWith('$')) continue
      const next = definition.steps[transition.to]
      if (next?.terminal || next?.exit) continue
      if (!paths.has(transition.to)) {
        paths.set(transition.to, [...path, transition.action])
        queue.push(transition.to)
      }
    }
  }
  return undefined
}

/** The guards that fail now along a run of actions: what a case still lacks on the way to a step. */
export function unmetAlong(definition: SopDefinition, facts: CaseFacts, actions: readonly string[]): Unmet[] {
  const unmet = new Map<string, Unmet>()
  for (const action of actions) {
    const transition = definition.transitions.find((t) => t.action === action)
    if (!transition) continue
    for (const item of guardsUnmet(transition, facts)) if (!unmet.has(item.code)) unmet.set(item.code, item)
  }
  return [...unmet.values()]
}

export function targetStep(transition: Transition, facts: Pick<CaseFacts, 'step' | 'previousStep'>): string {
  if (transition.to === '$current') return facts.step
  return transition.to === '$previous' ? (facts.previousStep ?? facts.step) : transition.to
}

function guardsUnmet(transition: Transition, facts: CaseFacts): Unmet[] {
  return [
    ...transition.guards.flatMap((guard) => guardUnmet(guard, facts)),
    ...(transition.to === '$previous' && facts.previousStep === null
      ? [unmet('step.previous', 'unmet.step.previous')]
      : []),
  ]
}

function actorUnmet(transition: Transition, facts: CaseFacts, actor: Actor): Unmet[] {
  const details: Unmet[] = []
  const side = transition.side === 'lead' ? facts.leadSide : transition.side
  if (actor.side !== side) {
    details.push(unmet('actor.side', 'unmet.actor.side', { side: sideParam(side) }))
  }
  if (!transition.roles.some((role) => actor.roles.includes(role))) {
    details.push(unmet('actor.role', 'unmet.actor.role', { roles: { or: transition.roles } }))
  }
  return details
}

/** A refusal detail whose sentence is a message of the catalogue. */
export function unmet(code: string, key: string, params?: Params): Unmet {
  return withMessage({ code }, params ? { key, params } : { key })
}

function sideParam(side: Side) {
  return { code: side, vocabulary: 'side', lower: true }
}

function assessmentName(kind: AssessmentKind, lower = false) {
  return { key: `assessment.${kind}`, lower }
}

function latest(facts: CaseFacts, kind: AssessmentKind): AssessmentFact | undefined {
  return facts.assessments.findLast((assessment) => assessment.kind === kind)
}

function guardUnmet(guard: Guard, facts: CaseFacts): Unmet[] {
  switch (guard.kind) {
    case 'consent_covers': {
      const counterpart = facts.counterpartId
      return guard.categories
        .filter(
          (category) =>
            !facts.consents.some((consent) =>
              counterpart === null
                ? consent.provisions.some(
                    (p) =>
                      p.categories.includes(category) && p.purposes.includes(guard.purpose) && p.recipients.length > 0,
                  )
                : consentCovers(consent, category, counterpart, [guard.purpose]),
            ),
        )
        .map((category) =>
          unmet(`consent.${category}`, counterpart === null ? 'unmet.consent.recipient' : 'unmet.consent.counterpart', {
            category: { code: category, vocabulary: 'category', lower: true },
            purpose: { code: guard.purpose, vocabulary: 'purpose', lower: true },
          }),
        )
    }
    case 'guardian_consent': {
      const counterpart = facts.counterpartId
      const given = facts.consents.some(
        (consent) =>
          consent.guardian &&
          (counterpart === null || consent.provisions.some((p) => p.recipients.includes(counterpart))),
      )
      return given ? [] : [unmet('consent.guardian', 'unmet.consent.guardian')]
    }
    case 'assessment_completed': {
      const sides = new Set(facts.assessments.filter((a) => a.kind === guard.assessment).map((a) => a.side))
      if (sides.size === 0) {
        return [
          unmet(`assessment.${guard.assessment}`, 'unmet.assessment.missing', {
            assessment: assessmentName(guard.assessment),
          }),
        ]
      }
      if (guard.joint && sides.size < 2) {
        const missing = sides.has('sending') ? 'receiving' : 'sending'
        return [
          unmet(`assessment.${guard.assessment}.joint`, 'unmet.assessment.joint', {
            assessment: assessmentName(guard.assessment),
            side: sideParam(missing),
          }),
        ]
      }
      return []
    }
    case 'assessment_outcome': {
      const found = latest(facts, guard.assessment)
      if (!found) {
        return [
          withMessage(
            { code: `assessment.${guard.assessment}`, field: guard.field, expected: guard.equals },
            {
              key: 'unmet.assessment.outcome_missing',
              params: {
                assessment: assessmentName(guard.assessment),
                field: guard.field,
                expected: JSON.stringify(guard.equals),
              },
            },
          ),
        ]
      }
      const actual = found.data[guard.field]
      if (actual !== guard.equals) {
        return [
          withMessage(
            {
              code: `assessment.${guard.assessment}.${guard.field}`,
              record_id: found.id,
              category: recordKinds.assessments[guard.assessment].category,
              field: guard.field,
              expected: guard.equals,
              actual: actual ?? null,
            },
            {
              key: 'unmet.assessment.outcome',
              params: {
                assessment: assessmentName(guard.assessment, true),
                record: found.id,
                field: guard.field,
                actual: JSON.stringify(actual ?? null),
                expected: JSON.stringify(guard.equals),
              },
            },
          ),
        ]
      }
      const after = guard.recorded_after
      const before = after ? latest(facts, after) : undefined
      if (after && before && facts.assessments.indexOf(before) > facts.assessments.indexOf(found)) {
        return [
          withMessage(
            {
              code: `assessment.${guard.assessment}.revalidate`,
              record_id: found.id,
              category: recordKinds.assessments[guard.assessment].category,
            },
            {
              key: 'unmet.assessment.revalidate',
              params: {
                assessment: assessmentName(guard.assessment),
                earlier: assessmentName(after, true),
                record: before.id,
              },
            },
          ),
        ]
      }
      return []
    }
    case 'risk_acceptable': {
      const found = latest(facts, 'risk_and_needs')
      if (!found) {
        return [
          unmet('assessment.risk_and_needs', 'unmet.assessment.missing', {
            assessment: assessmentName('risk_and_needs'),
          }),
        ]
      }
      const mitigations = Array.isArray(found.data.mitigations) ? found.data.mitigations : []
      if (found.data.level === 'high' && mitigations.length === 0) {
        return [
          withMessage(
            {
              code: 'assessment.risk_and_needs.level',
              record_id: found.id,
              category: recordKinds.assessments.risk_and_needs.category,
              field: 'level',
              expected: 'low or medium, or high with mitigations',
              actual: 'high',
            },
            { key: 'unmet.assessment.high_risk', params: { record: found.id } },
          ),
        ]
      }
      return []
    }
    case 'record_present':
      return facts.records.has(guard.record)
        ? []
        : [unmet(`record.${guard.record}`, 'unmet.record.missing', { kind: { key: `record.${guard.record}` } })]
    case 'record_field': {
      const found = facts.latestRecords?.get(guard.record)
      const value = found?.data[guard.field]
      if (value !== undefined && value !== null) return []
      const kind = { key: `record.${guard.record}` }
      return [
        {
          ...(found
            ? unmet(`record.${guard.record}.${guard.field}`, 'unmet.record.field_missing', {
                kind: { ...kind, lower: true },
                record: found.id,
                field: guard.field,
              })
            : unmet(`record.${guard.record}.${guard.field}`, 'unmet.record.field_not_recorded', {
                kind,
                field: guard.field,
              })),
          field: guard.field,
          category: recordKinds.records[guard.record].category,
          ...(found ? { record_id: found.id, actual: null } : {}),
        },
      ]
    }
  }
}
