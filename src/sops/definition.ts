import type { DataCategory, OrganisationKind, Purpose, Role } from '../db/schema.js'

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
  | 'safety_plan'
  | 'child_protection_handover'

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
  /** Reached only when the return fails: the way to an action further on never passes through it. */
  exit?: true
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

/** An organisation outside the case that a transition tells of itself: its kind, and whose country it is in. */
export interface Notification {
  organisation_kind: Extract<
    OrganisationKind,
    'embassy' | 'child_protection_authority' | 'national_referral_mechanism' | 'law_enforcement' | 'national_rapporteur'
  >
  /** `lead`: the country of the side leading the case after the transition, where the person is. */
  country: Side | 'lead'
  about: 'child_arriving' | 'child_not_returned' | 'person_missing' | 'retrafficking_suspected'
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
  effects?: ('lead_to_receiving' | 'withdraw_consents' | 'full_referral' | 'alert_both_sides')[]
  notify?: Notification[]
  inputs?: ('reason' | 'review_date')[]
  exchange?: { operation: PacketOperation; packet?: Exclude<PacketKind, 'referral'> }
}

/** Sending country × country of return; `*` for any country on one side. */
export interface Corridor {
  sending: string
  receiving: string
}

export interface SopReference {
  id: string
  version: number
}

export interface SopDefinition {
  id: string
  version: number
  title: string
  description?: string
  applies_to: 'adult' | 'child'
  /** Absent on a generic procedure; a national variant names the corridors it is for. */
  corridors?: Corridor[]
  /** The definition a variant was resolved from. */
  extends?: SopReference
  initial_step: string
  steps: Record<string, Step>
  transitions: Transition[]
}
