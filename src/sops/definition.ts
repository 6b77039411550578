import type { DataCategory, PacketStatus, Purpose, Role } from '../db/schema.js'

/** Types of a procedure as `sop.schema.json` allows it; the loader validates files against that schema. */
export type Side = 'sending' | 'receiving'
export type AssessmentKind =
  | 'vulnerability'
  | 'risk_and_needs'
  | 'family'
  | 'best_interests_assessment'
  | 'best_interests_determination'
  | 'fit_to_travel'
  | 'skills'
export type RecordKind =
  | 'return_decision'
  | 'guardian_appointment'
  | 'travel_documents'
  | 'escort'
  | 'reception'
  | 'handover_protocol'
  | 'reintegration_plan_draft'
  | 'reintegration_plan_final'
  | 'closure_report'

export type Guard =
  | { kind: 'consent_covers'; categories: DataCategory[]; purpose: Purpose }
  | { kind: 'guardian_consent' }
  | { kind: 'assessment_completed'; assessment: AssessmentKind; joint?: boolean }
  | { kind: 'packet'; status: Extract<PacketStatus, 'sent' | 'acknowledged' | 'accepted' | 'declined'> }
  | { kind: 'record_present'; record: RecordKind }

export interface Step {
  title: string
  description: string
  responsible?: Side | 'lead'
  deadline?: string
  terminal?: boolean
}

export interface Transition {
  action: string
  title: string
  from: string[]
  /** A step, or `$previous` for the step the case was in before the current one. */
  to: string
  side: Side | 'lead'
  roles: Role[]
  guards: Guard[]
  effects?: ('lead_to_receiving' | 'withdraw_consents')[]
  inputs?: ('reason' | 'review_date')[]
}

export interface SopDefinition {
  id: string
  version: number
  title: string
  description?: string
  applies_to: 'adult' | 'child'
  initial_step: string
  steps: Record<string, Step>
  transitions: Transition[]
}
