// Generated from openapi/openapi.yaml by scripts/problem-types.ts: do not edit.
import type { components, operations } from './types.js'

type ProblemType = components['schemas']['ProblemType']

/** The problem types any operation may answer with (the contract's `x-common-problem-types`). */
export const commonProblemTypes = ['urn:trm:problem:bad-request', 'urn:trm:problem:validation', 'urn:trm:problem:bad-url', 'urn:trm:problem:unauthenticated', 'urn:trm:problem:forbidden', 'urn:trm:problem:not-found', 'urn:trm:problem:request-timeout', 'urn:trm:problem:payload-too-large', 'urn:trm:problem:uri-too-long', 'urn:trm:problem:unsupported-media-type', 'urn:trm:problem:rate-limited', 'urn:trm:problem:headers-too-large', 'urn:trm:problem:internal', 'urn:trm:problem:database-unavailable'] as const satisfies readonly ProblemType[]

/** The problem types each operation may answer with besides the common ones (its `x-problem-types`). */
export const operationProblemTypes = {
  getLiveness: [],
  getReadiness: ['urn:trm:problem:not-ready'],
  getMe: [],
  listOrganisations: [],
  createOrganisation: ['urn:trm:problem:invalid-time-zone', 'urn:trm:problem:time-zone-required'],
  getOrganisation: [],
  listPrincipals: [],
  createPrincipal: [],
  listApiKeys: [],
  issueApiKey: ['urn:trm:problem:expired'],
  revokeApiKey: [],
  listCases: [],
  createCase: ['urn:trm:problem:idempotency-key-reused', 'urn:trm:problem:cannot-send'],
  getCase: ['urn:trm:problem:case-erased'],
  updateCase: ['urn:trm:problem:stale-version', 'urn:trm:problem:if-match-required', 'urn:trm:problem:case-erased', 'urn:trm:problem:not-lead'],
  inviteParty: ['urn:trm:problem:idempotency-key-reused', 'urn:trm:problem:case-erased', 'urn:trm:problem:cannot-invite', 'urn:trm:problem:unknown-partner', 'urn:trm:problem:already-party'],
  listConsents: ['urn:trm:problem:case-erased'],
  recordConsent: ['urn:trm:problem:idempotency-key-reused', 'urn:trm:problem:case-erased', 'urn:trm:problem:not-lead', 'urn:trm:problem:guardian-required', 'urn:trm:problem:invalid-consent', 'urn:trm:problem:unknown-recipient'],
  getConsent: ['urn:trm:problem:case-erased'],
  withdrawConsent: ['urn:trm:problem:idempotency-key-reused', 'urn:trm:problem:case-erased', 'urn:trm:problem:not-lead'],
  getConsentReceipt: ['urn:trm:problem:case-erased', 'urn:trm:problem:not-consent-holder', 'urn:trm:problem:not-acceptable'],
  sendPacket: ['urn:trm:problem:idempotency-key-reused', 'urn:trm:problem:case-erased', 'urn:trm:problem:action-not-open', 'urn:trm:problem:preconditions-unmet', 'urn:trm:problem:input-required', 'urn:trm:problem:no-receiving-partner', 'urn:trm:problem:packet-operation', 'urn:trm:problem:unknown-action', 'urn:trm:problem:recipient-cannot-receive', 'urn:trm:problem:purpose-not-served', 'urn:trm:problem:not-the-receiving-partner', 'urn:trm:problem:nothing-consented', 'urn:trm:problem:transfer-basis-required', 'urn:trm:problem:transfer-basis-invalid'],
  listPackets: [],
  getPacket: ['urn:trm:problem:case-erased'],
  acknowledgePacket: ['urn:trm:problem:stale-version', 'urn:trm:problem:if-match-required', 'urn:trm:problem:idempotency-key-reused', 'urn:trm:problem:case-erased', 'urn:trm:problem:not-recipient', 'urn:trm:problem:invalid-state', 'urn:trm:problem:action-not-open', 'urn:trm:problem:preconditions-unmet', 'urn:trm:problem:input-required', 'urn:trm:problem:no-receiving-partner', 'urn:trm:problem:nothing-consented', 'urn:trm:problem:transfer-basis-required', 'urn:trm:problem:transfer-basis-invalid'],
  acceptPacket: ['urn:trm:problem:stale-version', 'urn:trm:problem:if-match-required', 'urn:trm:problem:idempotency-key-reused', 'urn:trm:problem:case-erased', 'urn:trm:problem:not-recipient', 'urn:trm:problem:invalid-state', 'urn:trm:problem:action-not-open', 'urn:trm:problem:preconditions-unmet', 'urn:trm:problem:input-required', 'urn:trm:problem:no-receiving-partner', 'urn:trm:problem:nothing-consented', 'urn:trm:problem:transfer-basis-required', 'urn:trm:problem:transfer-basis-invalid'],
  declinePacket: ['urn:trm:problem:stale-version', 'urn:trm:problem:if-match-required', 'urn:trm:problem:idempotency-key-reused', 'urn:trm:problem:case-erased', 'urn:trm:problem:not-recipient', 'urn:trm:problem:invalid-state', 'urn:trm:problem:action-not-open', 'urn:trm:problem:preconditions-unmet', 'urn:trm:problem:input-required', 'urn:trm:problem:no-receiving-partner', 'urn:trm:problem:nothing-consented', 'urn:trm:problem:transfer-basis-required', 'urn:trm:problem:transfer-basis-invalid'],
  requestPacketInformation: ['urn:trm:problem:stale-version', 'urn:trm:problem:if-match-required', 'urn:trm:problem:idempotency-key-reused', 'urn:trm:problem:case-erased', 'urn:trm:problem:not-recipient', 'urn:trm:problem:invalid-state', 'urn:trm:problem:action-not-open', 'urn:trm:problem:preconditions-unmet', 'urn:trm:problem:input-required', 'urn:trm:problem:no-receiving-partner', 'urn:trm:problem:nothing-consented', 'urn:trm:problem:transfer-basis-required', 'urn:trm:problem:transfer-basis-invalid'],
  listCaseAudit: ['urn:trm:problem:case-erased'],
  verifyAuditTrail: [],
  getAuditSigningKeys: [],
  listSops: [],
  getSop: [],
  getSopDiagram: [],
  getNextActions: ['urn:trm:problem:case-erased'],
  performTransition: ['urn:trm:problem:stale-version', 'urn:trm:problem:if-match-required', 'urn:trm:problem:idempotency-key-reused', 'urn:trm:problem:case-erased', 'urn:trm:problem:action-not-open', 'urn:trm:problem:preconditions-unmet', 'urn:trm:problem:input-required', 'urn:trm:problem:no-receiving-partner', 'urn:trm:problem:packet-operation', 'urn:trm:problem:unknown-action'],
  migrateCaseProcedure: ['urn:trm:problem:stale-version', 'urn:trm:problem:if-match-required', 'urn:trm:problem:idempotency-key-reused', 'urn:trm:problem:case-erased', 'urn:trm:problem:not-lead', 'urn:trm:problem:unknown-procedure', 'urn:trm:problem:same-procedure', 'urn:trm:problem:case-finished', 'urn:trm:problem:procedure-does-not-apply', 'urn:trm:problem:step-not-in-procedure'],
  getTimeline: ['urn:trm:problem:case-erased'],
  getCaseProcedureDiagram: ['urn:trm:problem:case-erased'],
  listCaseRecords: ['urn:trm:problem:case-erased'],
  createCaseRecord: ['urn:trm:problem:idempotency-key-reused', 'urn:trm:problem:case-erased', 'urn:trm:problem:invalid-record', 'urn:trm:problem:not-a-side'],
  listRecordKinds: [],
  listLabels: [],
  listEscalations: [],
  listEvents: [],
  listWebhookEndpoints: [],
  createWebhookEndpoint: ['urn:trm:problem:idempotency-key-reused', 'urn:trm:problem:unsafe-target'],
  getWebhookEndpoint: [],
  updateWebhookEndpoint: ['urn:trm:problem:stale-version', 'urn:trm:problem:if-match-required', 'urn:trm:problem:unsafe-target'],
  rotateWebhookSecret: ['urn:trm:problem:idempotency-key-reused'],
  listWebhookDeliveries: [],
  redeliverWebhook: ['urn:trm:problem:idempotency-key-reused', 'urn:trm:problem:endpoint-disabled', 'urn:trm:problem:delivery-in-progress'],
  requestSafetyOverride: ['urn:trm:problem:idempotency-key-reused', 'urn:trm:problem:case-erased', 'urn:trm:problem:not-lead', 'urn:trm:problem:unknown-partner'],
  listProceedings: ['urn:trm:problem:case-erased'],
  createProceeding: ['urn:trm:problem:idempotency-key-reused', 'urn:trm:problem:case-erased', 'urn:trm:problem:not-a-side'],
  getProceeding: ['urn:trm:problem:case-erased'],
  updateProceeding: ['urn:trm:problem:stale-version', 'urn:trm:problem:if-match-required', 'urn:trm:problem:idempotency-key-reused', 'urn:trm:problem:case-erased', 'urn:trm:problem:not-a-side'],
  addHearing: ['urn:trm:problem:stale-version', 'urn:trm:problem:if-match-required', 'urn:trm:problem:idempotency-key-reused', 'urn:trm:problem:case-erased', 'urn:trm:problem:not-a-side', 'urn:trm:problem:invalid-hearing'],
  recordHearingOutcome: ['urn:trm:problem:stale-version', 'urn:trm:problem:if-match-required', 'urn:trm:problem:idempotency-key-reused', 'urn:trm:problem:case-erased', 'urn:trm:problem:not-a-side', 'urn:trm:problem:outcome-recorded'],
  listSafetyOverrides: [],
  getSafetyOverride: [],
  approveSafetyOverride: ['urn:trm:problem:idempotency-key-reused', 'urn:trm:problem:second-supervisor-required', 'urn:trm:problem:invalid-state'],
  listWithdrawalNotices: [],
  acknowledgeWithdrawal: ['urn:trm:problem:idempotency-key-reused'],
  listTransferAgreements: [],
  createTransferAgreement: ['urn:trm:problem:invalid-transfer-agreement'],
  listTransfers: [],
  exportSubjectAccess: ['urn:trm:problem:case-erased', 'urn:trm:problem:not-acceptable'],
  eraseCase: ['urn:trm:problem:idempotency-key-reused', 'urn:trm:problem:not-controller'],
  getIndicators: [],
  getIndicatorChart: [],
  listTrainings: [],
  createTraining: ['urn:trm:problem:idempotency-key-reused', 'urn:trm:problem:unknown-organisation'],
  getTraining: [],
  updateTraining: ['urn:trm:problem:stale-version', 'urn:trm:problem:if-match-required', 'urn:trm:problem:idempotency-key-reused', 'urn:trm:problem:not-organiser', 'urn:trm:problem:unknown-organisation'],
} as const satisfies { [K in keyof operations]: readonly ProblemType[] }

export type CommonProblemType = (typeof commonProblemTypes)[number]

/** The `type` of a problem that operation `K` may answer with. */
export type OperationProblemType<K extends keyof typeof operationProblemTypes> =
  | CommonProblemType
  | (typeof operationProblemTypes)[K][number]
