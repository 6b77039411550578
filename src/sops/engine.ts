import type { DataCategory, Purpose, Role } from '../db/schema.js'
import type { AssessmentKind, Guard, RecordKind, Side, SopDefinition, Transition } from './definition.js'

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
  /** The statuses the current referral packet has passed through. */
  packetStatuses: ReadonlySet<string>
  /** Completed assessments, with the side that recorded each. */
  assessments: readonly { kind: AssessmentKind; side: Side }[]
  records: ReadonlySet<RecordKind>
}

export interface Actor {
  /** The side the actor's organisation is on in this case; `null` for an invited party. */
  side: Side | null
  roles: readonly Role[]
}

/** A precondition that does not hold: a stable code for machines and a sentence for people. */
export interface Unmet {
  code: string
  message: string
}

export interface ActionOption {
  action: string
  title: string
  to: string
  inputs: ('reason' | 'review_date')[]
  unmet: Unmet[]
}

/** Every action open from the case's step: those the actor may take now, and the rest with what blocks them. */
export function evaluate(definition: SopDefinition, facts: CaseFacts, actor: Actor) {
  const allowed: ActionOption[] = []
  const refused: ActionOption[] = []
  for (const transition of definition.transitions) {
    if (!transition.from.includes(facts.step)) continue
    const unmet = [
      ...actorUnmet(transition, facts, actor),
      ...transition.guards.flatMap((guard) => guardUnmet(guard, facts)),
      ...(transition.to === '$previous' && facts.previousStep === null
        ? [{ code: 'step.previous', message: 'There is no earlier step to return to.' }]
        : []),
    ]
    const option = {
      action: transition.action,
      title: transition.title,
      to: targetStep(transition, facts),
      inputs: transition.inputs ?? [],
      unmet,
    }
    ;(unmet.length === 0 ? allowed : refused).push(option)
  }
  return { allowed, refused }
}

export function targetStep(transition: Transition, facts: CaseFacts): string {
  return transition.to === '$previous' ? (facts.previousStep ?? facts.step) : transition.to
}

function actorUnmet(transition: Transition, facts: CaseFacts, actor: Actor): Unmet[] {
  const unmet: Unmet[] = []
  const side = transition.side === 'lead' ? facts.leadSide : transition.side
  if (actor.side !== side) {
    unmet.push({ code: 'actor.side', message: `Only the ${side} partner can do this.` })
  }
  if (!transition.roles.some((role) => actor.roles.includes(role))) {
    unmet.push({ code: 'actor.role', message: `This needs the role ${transition.roles.join(' or ')}.` })
  }
  return unmet
}

const assessmentNames: Record<AssessmentKind, string> = {
  vulnerability: 'A vulnerability assessment',
  risk_and_needs: 'A risk and needs assessment',
  family: 'A family assessment in the country of return',
  best_interests_assessment: 'A best-interests assessment',
  best_interests_determination: 'A best-interests determination validating the return',
  fit_to_travel: 'A fit-to-travel assessment',
  skills: 'A skills assessment',
}

const recordNames: Record<RecordKind, string> = {
  return_decision: 'The voluntary return decision, after counselling',
  guardian_appointment: 'The appointment of a guardian',
  travel_documents: 'Valid travel documents',
  escort: 'The escort arrangement',
  reception: 'The reception arrangement on arrival (where, when, by whom)',
  handover_protocol: 'The hand-over protocol',
  reintegration_plan_draft: 'A draft reintegration plan',
  reintegration_plan_final: 'The final reintegration plan',
  closure_report: 'The final report',
}

function guardUnmet(guard: Guard, facts: CaseFacts): Unmet[] {
  switch (guard.kind) {
    case 'consent_covers': {
      const counterpart = facts.counterpartId
      return guard.categories
        .filter(
          (category) =>
            counterpart === null ||
            !facts.consents.some((consent) =>
              consent.provisions.some(
                (p) =>
                  p.categories.includes(category) &&
                  p.recipients.includes(counterpart) &&
                  p.purposes.includes(guard.purpose),
              ),
            ),
        )
        .map((category) => ({
          code: `consent.${category}`,
          message:
            counterpart === null
              ? `No receiving partner is chosen yet: send it the referral packet, under a consent to share ${category} data for ${guard.purpose}.`
              : `No active consent lets ${category} data go to the receiving partner for ${guard.purpose}.`,
        }))
    }
    case 'guardian_consent': {
      const counterpart = facts.counterpartId
      const given = facts.consents.some(
        (consent) =>
          consent.guardian &&
          counterpart !== null &&
          consent.provisions.some((p) => p.recipients.includes(counterpart)),
      )
      return given
        ? []
        : [
            {
              code: 'consent.guardian',
              message:
                'The guardian or legal representative has not consented to refer the child to the receiving partner.',
            },
          ]
    }
    case 'assessment_completed': {
      const sides = new Set(facts.assessments.filter((a) => a.kind === guard.assessment).map((a) => a.side))
      if (sides.size === 0) {
        return [
          { code: `assessment.${guard.assessment}`, message: `${assessmentNames[guard.assessment]} is not completed.` },
        ]
      }
      if (guard.joint && sides.size < 2) {
        const missing = sides.has('sending') ? 'receiving' : 'sending'
        return [
          {
            code: `assessment.${guard.assessment}.joint`,
            message: `${assessmentNames[guard.assessment]} is joint: the ${missing} partner has not contributed.`,
          },
        ]
      }
      return []
    }
    case 'packet':
      return facts.packetStatuses.has(guard.status)
        ? []
        : [{ code: `packet.${guard.status}`, message: `The referral packet has not been ${guard.status}.` }]
    case 'record_present':
      return facts.records.has(guard.record)
        ? []
        : [{ code: `record.${guard.record}`, message: `${recordNames[guard.record]} is not recorded.` }]
  }
}
