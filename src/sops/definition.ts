import type { DataCategory, Purpose, Role } from '../db/schema.js'

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
  | 'monitoring_visit'
  | 'reassessment'
  | 'sustainability_score'
  | 'closure_report'

/** The records that fulfil a scheduled obligation. */
export type ScheduledRecordKind = Extract<RecordKind, 'monitoring_visit' | 'reassessment'>

export type Guard =
  | { kind: 'consent_covers'; categories: DataCategory[]; purpose: Purpose }
  | { kind: 'guardian_consent' }
  | { kind: 'assessment_completed'; assessment: AssessmentKind; joint?: boolean }
  | {
      kind: 'assessment_outcome'
      assessment: AssessmentKind
      field: string
      equals: string | boolean
      recorded_after?: AssessmentKind
    }
  | { kind: 'risk_acceptable' }
  | { kind: 'record_present'; record: RecordKind }
  | { kind: 'record_field'; record: Extract<RecordKind, 'closure_report' | 'sustainability_score'>; field: string }

/** The packet operations; each is a transition of the procedure where the procedure opens it. */
export type PacketOperation = 'send' | 'acknowledge' | 'accept' | 'decline' | 'request_information'
export type PacketKind = 'enquiry' | 'referral' | 'information' | 'update'

export interface Step {
  title: string
  description: string
  responsible?: Side | 'lead'
  deadline?: string
  terminal?: boolean
  purposes?: Exclude<Purpose, 'statistics'>[]
  /** Obligations the case takes on when it first enters the step. */
  schedule?: Scheduled[]
}

export interface Scheduled {
  record: ScheduledRecordKind
  /** ISO 8601 duration from entering the step. */
  after: string
  responsible?: Side | 'lead'
}

export interface Transition {
  action: string
  title: string
  from: string[]
  /** A step; `$previous` for the step the case was in before the current one; `$current` to stay. */
  to: string
  side: Side | 'lead'
  roles: Role[]
  guards: Guard[]
  effects?: ('lead_to_receiving' | 'withdraw_consents' | 'full_referral')[]
  inputs?: ('reason' | 'review_date')[]
  exchange?: { operation: PacketOperation; packet?: Exclude<PacketKind, 'referral'> }
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
