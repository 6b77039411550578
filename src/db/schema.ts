import type { ColumnType, Generated, Insertable, Selectable } from 'kysely'
import type { components } from '../../openapi/dist/types.js'
import type { Sealed } from '../crypto/keyring.js'

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>
type GivenTimestamp = ColumnType<Date, Date | string, Date | string>
type TimestampOrNull = ColumnType<Date | null, Date | string | null, Date | string | null>
/** A jsonb column: written as JSON text (see `json()`), read as the parsed value. */
type Json<T> = ColumnType<T, string, string>
type JsonOrNull<T> = ColumnType<T | null, string | null, string | null>
/** An identity column: int8, which drivers return as a string or a number. */
type Sequence = ColumnType<string | number, never, never>
type TransactionId = ColumnType<string, never, string>

type Schemas = components['schemas']
export type OrganisationKind = Schemas['OrganisationKind']
export type Role = Schemas['Role']
export type DataCategory = Schemas['DataCategory']
export type Purpose = Schemas['Purpose']
export type CaseProfile = Schemas['CaseProfile']
export type CaseSections = Schemas['CaseSections']
export type ConsentProvision = Schemas['ConsentProvision']
export type PacketStatus = Schemas['PacketStatus']
export type PacketStep = Schemas['PacketStep']
export type ErasureReason = 'data_subject_request' | 'end_of_retention'
export type PacketDecision = NonNullable<Schemas['PacketSummary']['decision']>

/** Serialises a value for a jsonb column; both drivers take JSON text for jsonb. */
export function json<T>(value: T): string {
  return JSON.stringify(value)
}

export interface OrganisationTable {
  id: Generated<string>
  name: string
  country: string
  kind: OrganisationKind
  can_send: boolean
  can_receive: boolean
  /** An IANA time zone: the calendar of the deadlines the organisation is responsible for. */
  time_zone: string
  created_at: Timestamp
}

export interface PrincipalTable {
  id: Generated<string>
  organisation_id: string
  name: string
  kind: 'staff' | 'system'
  roles: Role[]
  created_at: Timestamp
}

export interface ApiKeyTable {
  id: Generated<string>
  principal_id: string
  prefix: string
  /** SHA-256 of the key's secret part, hex. */
  secret_hash: string
  label: string
  created_at: Timestamp
  expires_at: Date | null
  revoked_at: Date | null
}

export interface SchemaMigrationTable {
  version: number
  name: string
  checksum: string
  applied_at: Timestamp
}

export interface CaseTable {
  id: Generated<string>
  seq: Sequence
  reference: string
  profile: Json<CaseProfile>
  /** Sealed with the case's data key (see `src/crypto/`); `Case` holds them opened. */
  sections: Json<Sealed | CaseSections>
  sending_organisation_id: string
  receiving_organisation_id: string | null
  lead_organisation_id: string
  version: Generated<number>
  created_at: Timestamp
  updated_at: Timestamp
  sop_id: string
  sop_version: number
  step: string
  previous_step: string | null
  step_entered_at: Timestamp
  step_due_at: TimestampOrNull
  data_key_id: string | null
  /** The case's data key wrapped under a master key; null once the case is erased. */
  data_key: JsonOrNull<Sealed>
  erased_at: TimestampOrNull
  erased_by_principal_id: string | null
  erasure_reason: ErasureReason | null
}

export interface CasePartyTable {
  case_id: string
  organisation_id: string
  role: 'sending' | 'receiving' | 'invited'
  since: Timestamp
}

export interface ConsentTable {
  id: Generated<string>
  case_id: string
  given_at: GivenTimestamp
  method: 'written' | 'oral'
  language: string
  /** Sealed with the case's data key, as are the guardian, the child's views and the withdrawal reason; `Consent` holds them opened. */
  interpreter: Json<Sealed | Schemas['Interpreter']>
  guardian: JsonOrNull<Sealed | Schemas['Guardian']>
  /** Free text sealed as the JSON text of its envelope (text written before sealing is the text itself). */
  child_views: string | null
  provisions: Json<ConsentProvision[]>
  expires_at: TimestampOrNull
  recorded_at: Timestamp
  recorded_by_principal_id: string
  recorded_by_organisation_id: string
  withdrawn_at: TimestampOrNull
  withdrawal_reason: string | null
  withdrawn_by_principal_id: string | null
  expiry_noticed_at: TimestampOrNull
  informed_of_transfer_risks: ColumnType<boolean, boolean | undefined, boolean>
}

export interface PacketTable {
  id: Generated<string>
  seq: Sequence
  case_id: string
  kind: Schemas['PacketKind']
  version: number
  sender_organisation_id: string
  recipient_organisation_id: string
  purpose: Purpose
  /** Sealed with the case's data key like the decision and the questions (the JSON text of its envelope). */
  note: string | null
  status: PacketStatus
  included_categories: DataCategory[]
  withheld: Json<Schemas['WithheldCategory'][]>
  content: Json<Sealed | Schemas['PacketContent']>
  content_hash: string
  consents_by_category: Json<Partial<Record<DataCategory, string[]>>>
  supersedes: string | null
  history: Json<PacketStep[]>
  acknowledgement: JsonOrNull<Schemas['PacketAcknowledgement']>
  decision: JsonOrNull<Sealed | PacketDecision>
  questions: JsonOrNull<Sealed | string[]>
  /** The legal basis the packet left the EU/EEA on; null for a packet that stayed inside it. */
  transfer: JsonOrNull<Schemas['TransferBasis']>
  /** The attachments the packet carried (their descriptions are in its sealed content). */
  attachment_ids: ColumnType<string[], string[] | undefined, string[]>
  revision: Generated<number>
  sent_at: Timestamp
  updated_at: Timestamp
}

export interface TransferAgreementTable {
  id: Generated<string>
  seq: Sequence
  exporter_organisation_id: string
  importer_organisation_id: string
  safeguard: Schemas['TransferSafeguard']
  reference: string
  /** Dates as `YYYY-MM-DD`; read them with `::text`, as drivers turn a date into a local midnight. */
  valid_from: string
  valid_until: string | null
  registered_by_principal_id: string
  created_at: Timestamp
}

export interface IdempotencyKeyTable {
  organisation_id: string
  key: string
  operation_id: string
  fingerprint: string
  status_code: number | null
  resource_id: string | null
  location: string | null
  created_at: Timestamp
}

export interface AuditRecordTable {
  id: Sequence
  /** The transaction that wrote the record: with `id`, its place in the sealed chain. */
  txid: TransactionId
  at: Timestamp
  action: string
  principal_id: string
  organisation_id: string
  request_id: string
  case_id: string | null
  resource_type: 'case' | 'consent' | 'packet' | 'safety_override' | 'attachment'
  resource_id: string
  details: Json<Record<string, unknown>>
}

export interface SafetyOverrideTable {
  id: Generated<string>
  seq: Sequence
  case_id: string
  organisation_id: string
  recipient_organisation_id: string
  reason: string
  note: string
  requested_by_principal_id: string
  requested_at: GivenTimestamp
  approved_by_principal_id: string | null
  approved_at: TimestampOrNull
  expires_at: GivenTimestamp
}

export interface CaseRecordTable {
  id: Generated<string>
  case_id: string
  kind: Schemas['CaseRecordKind']
  assessment: Schemas['AssessmentKind'] | null
  category: DataCategory
  side: 'sending' | 'receiving'
  data: Json<Sealed | Record<string, unknown>>
  recorded_at: Timestamp
  recorded_by_principal_id: string
  recorded_by_organisation_id: string
  /** What the record contributes to statistics, in clear (see `figuresOf`); null for most kinds. */
  figures: ColumnType<RecordFigures | null, string | null | undefined, string | null>
}

/** The non-identifying figures of a record that the indicators count. */
export interface RecordFigures {
  economic?: number
  social?: number
  psychosocial?: number
  reason?: string
}

export type AttachmentMediaType = Schemas['AttachmentMediaType']

/** What an attachment's sealed description holds. */
export interface AttachmentDescription {
  file_name: string
  sha256: string
}

export interface CaseAttachmentTable {
  id: string
  seq: Sequence
  case_id: string
  category: DataCategory
  media_type: AttachmentMediaType
  size_bytes: number
  /** Sealed with the case's data key; a row that is not sealed is never written. */
  description: Json<Sealed>
  /** Nonce, ciphertext and tag under the case's data key; null once the case is erased. */
  content: Buffer | null
  content_alg: 'A256GCM'
  content_kid: string
  uploaded_at: Timestamp
  uploaded_by_principal_id: string
  uploaded_by_organisation_id: string
}

export interface CaseTransitionTable {
  id: Sequence
  case_id: string
  action: string
  from_step: string | null
  to_step: string
  at: Timestamp
  principal_id: string
  organisation_id: string
  lead_organisation_id: string
  note: string | null
  reason: string | null
  review_date: ColumnType<string | null, string | null, string | null>
}

export interface EscalationTable {
  id: Generated<string>
  kind: Schemas['EscalationKind']
  case_id: string
  step: string
  due_at: GivenTimestamp
  responsible_organisation_id: string
  withdrawal_notice_id: string | null
  obligation_id: string | null
  raised_at: Timestamp
}

export interface CaseObligationTable {
  id: Generated<string>
  case_id: string
  kind: Schemas['ScheduledObligation']['kind']
  schedule_key: string | null
  hearing_id: string | null
  due_at: GivenTimestamp
  responsible_organisation_id: string
  created_at: GivenTimestamp
  fulfilled_at: TimestampOrNull
  fulfilled_by_record_id: string | null
}

export interface ProceedingTable {
  id: Generated<string>
  seq: Sequence
  case_id: string
  kind: Schemas['ProceedingKind']
  country: string
  authority: string
  reference: string | null
  stage: Schemas['ProceedingStage']
  person_roles: Schemas['PersonRoleInProceeding'][]
  protection_measures: Schemas['ProtectionMeasure'][]
  remote_participation: Schemas['RemoteParticipation']
  notes: string | null
  version: Generated<number>
  created_at: GivenTimestamp
  updated_at: GivenTimestamp
  created_by_principal_id: string
  created_by_organisation_id: string
}

export interface ProceedingHearingTable {
  id: Generated<string>
  seq: Sequence
  proceeding_id: string
  case_id: string
  scheduled_at: GivenTimestamp
  purpose: Schemas['HearingPurpose']
  participation: Schemas['HearingParticipation']
  notes: string | null
  outcome: Schemas['HearingOutcome']['outcome'] | null
  outcome_recorded_at: TimestampOrNull
  created_at: GivenTimestamp
  created_by_principal_id: string
  created_by_organisation_id: string
}

/** A transaction id (xid8), which drivers return as a decimal string. */

export interface EventTable {
  id: Generated<string>
  txid: TransactionId
  seq: Sequence
  type: Schemas['EventType']
  occurred_at: Timestamp
  /** Null for an event that concerns no case (`audit.checkpoint`). */
  case_id: string | null
  organisation_ids: string[]
  data: Json<Schemas['EventData']>
}

export interface EventAudienceTable {
  organisation_id: string
  txid: string
  seq: string
  event_id: string
}

export interface EventRelayPositionTable {
  id: ColumnType<boolean, never, never>
  txid: string
  seq: string
}

export interface WebhookEndpointTable {
  id: Generated<string>
  seq: Sequence
  organisation_id: string
  url: string
  description: string | null
  event_types: Schemas['EventType'][]
  enabled: boolean
  disabled_reason: Schemas['WebhookEndpoint']['disabled_reason']
  failed_deliveries: Generated<number>
  version: Generated<number>
  created_at: Timestamp
  updated_at: Timestamp
}

export interface WebhookSecretTable {
  id: Generated<string>
  endpoint_id: string
  secret: string
  created_at: Timestamp
  expires_at: TimestampOrNull
}

export interface WebhookDeliveryTable {
  id: Generated<string>
  seq: Sequence
  endpoint_id: string
  event_id: string
  status: Schemas['WebhookDeliveryStatus']
  queued_at: TimestampOrNull
  next_attempt_at: TimestampOrNull
  created_at: Timestamp
  updated_at: Timestamp
}

export interface WebhookAttemptTable {
  id: Sequence
  delivery_id: string
  at: Timestamp
  status_code: number | null
  error: string | null
  duration_ms: number
}

export interface WithdrawalNoticeTable {
  id: Generated<string>
  seq: Sequence
  /** Null on the notice of an erasure. */
  consent_id: string | null
  case_id: string
  cause: 'withdrawn' | 'expired' | 'erased'
  organisation_id: string
  categories: DataCategory[]
  withdrawn_at: GivenTimestamp
  acknowledge_by: GivenTimestamp
  acknowledged_at: TimestampOrNull
  acknowledged_by_principal_id: string | null
  acknowledgement_action: 'deleted' | 'restricted' | null
  acknowledgement_note: string | null
}

export interface TrainingTable {
  id: Generated<string>
  seq: Sequence
  kind: Schemas['TrainingKind']
  /** A date as `YYYY-MM-DD`; read it with `::text`, as drivers turn a date into a local midnight. */
  held_on: string
  place: string
  country: string
  topic: string
  organiser_organisation_id: string
  participants: Json<Schemas['TrainingParticipants'][]>
  participants_total: number
  participant_organisation_ids: string[]
  ngo_partner_ids: string[]
  improved_centre_ids: string[]
  version: Generated<number>
  created_at: GivenTimestamp
  updated_at: GivenTimestamp
  created_by_principal_id: string
}

export interface DB {
  organisations: OrganisationTable
  principals: PrincipalTable
  api_keys: ApiKeyTable
  schema_migrations: SchemaMigrationTable
  cases: CaseTable
  case_parties: CasePartyTable
  consents: ConsentTable
  packets: PacketTable
  idempotency_keys: IdempotencyKeyTable
  audit_records: AuditRecordTable
  case_records: CaseRecordTable
  case_attachments: CaseAttachmentTable
  case_transitions: CaseTransitionTable
  escalations: EscalationTable
  events: EventTable
  event_audiences: EventAudienceTable
  event_relay_position: EventRelayPositionTable
  webhook_endpoints: WebhookEndpointTable
  webhook_secrets: WebhookSecretTable
  webhook_deliveries: WebhookDeliveryTable
  webhook_attempts: WebhookAttemptTable
  withdrawal_notices: WithdrawalNoticeTable
  safety_overrides: SafetyOverrideTable
  transfer_agreements: TransferAgreementTable
  case_obligations: CaseObligationTable
  proceedings: ProceedingTable
  proceeding_hearings: ProceedingHearingTable
  trainings: TrainingTable
}

export type Organisation = Selectable<OrganisationTable>
export type NewOrganisation = Insertable<OrganisationTable>
export type Principal = Selectable<PrincipalTable>
export type NewPrincipal = Insertable<PrincipalTable>
export type ApiKey = Selectable<ApiKeyTable>
export type NewApiKey = Insertable<ApiKeyTable>
/** A case's row as stored: its sections sealed. */
export type CaseRow = Selectable<CaseTable>
/** A case with its sections opened. */
export type Case = Omit<CaseRow, 'sections'> & { sections: CaseSections }
export type CaseParty = Selectable<CasePartyTable>
/** A consent's row as stored: its free text sealed. */
export type ConsentRow = Selectable<ConsentTable>
/** A consent with its free text opened. */
export type Consent = Omit<ConsentRow, 'interpreter' | 'guardian'> & {
  interpreter: Schemas['Interpreter']
  guardian: Schemas['Guardian'] | null
}
export type PacketRowSealed = Selectable<PacketTable>
export type Packet = Omit<PacketRowSealed, 'content' | 'decision' | 'questions'> & {
  content: Schemas['PacketContent']
  decision: PacketDecision | null
  questions: string[] | null
}
export type AuditRecord = Selectable<AuditRecordTable>
export type NewAuditRecord = Insertable<AuditRecordTable>
export type CaseRecordRow = Selectable<CaseRecordTable>
export type CaseRecord = Omit<CaseRecordRow, 'data'> & { data: Record<string, unknown> }
export type SafetyOverride = Selectable<SafetyOverrideTable>
export type TransferAgreement = Selectable<TransferAgreementTable>
export type CaseAttachmentRow = Selectable<CaseAttachmentTable>
export type CaseTransition = Selectable<CaseTransitionTable>
export type NewCaseTransition = Insertable<CaseTransitionTable>
export type Escalation = Selectable<EscalationTable>
export type NewEscalation = Insertable<EscalationTable>
export type Event = Selectable<EventTable>
export type WebhookEndpoint = Selectable<WebhookEndpointTable>
export type WebhookSecret = Selectable<WebhookSecretTable>
export type WebhookDelivery = Selectable<WebhookDeliveryTable>
export type WebhookAttempt = Selectable<WebhookAttemptTable>
export type WithdrawalNotice = Selectable<WithdrawalNoticeTable>
export type CaseObligation = Selectable<CaseObligationTable>
export type Proceeding = Selectable<ProceedingTable>
export type ProceedingHearing = Selectable<ProceedingHearingTable>
export type Training = Selectable<TrainingTable>
