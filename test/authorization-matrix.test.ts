/**
 * The authorisation matrix: every operation of the contract × who calls it (own organisation,
 * the packet's recipient after reading, after acknowledging and after accepting, an invited party,
 * unrelated organisations, the hub, no key, a revoked key) × the caller's role, each cell answered
 * by real HTTP on a real database.
 *
 * TABLE below is the specification. Where it is stricter than the contract's wording, the
 * comment on the row says why.
 */
import { randomUUID } from 'node:crypto'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import type { Kysely } from 'kysely'
import t from 'tap'
import type { DB } from '../src/db/schema.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { recordEvent } from '../src/events/outbox.js'
import { contract } from '../src/http/contract.js'
import { demoKeys, startTestApp, type TestApp } from './fixtures/app.js'
import { feedUntil } from './fixtures/feed.js'
import { assessmentData, recordData } from './fixtures/referral.js'

// ─── Who calls ───────────────────────────────────────────────────────────────────────────────

const ROLES = ['caseworker', 'supervisor', 'dpo', 'auditor', 'admin'] as const
type Role = (typeof ROLES)[number]

/** Relations in which the caller acts with one of the five roles. */
const ROLE_RELATIONS = [
  'own',
  'counterpart',
  'counterpartAcknowledged',
  'counterpartAccepted',
  'invited',
  'unrelated',
  'unrelatedSender',
  'hub',
] as const
type RoleRelation = (typeof ROLE_RELATIONS)[number]
type Relation = RoleRelation | 'anonymous' | 'revoked'

const ORG = demoOrganisationIds

/**
 * own: IOM Poland, which opened and leads the case and sent the enquiry.
 * counterpart: IOM Ukraine, recipient of an enquiry it has only read (received), neither acknowledged
 *   nor answered: a party to the packet, NOT a party to the case (it becomes one by acknowledging).
 * counterpartAcknowledged: IOM Ukraine after acknowledging that enquiry, not (yet) accepting it: a
 *   party to the case with the role `receiving` (the joint assessment), the case's receiving side for
 *   the procedure, but not its receiving organisation of record and not the lead.
 * counterpartAccepted: IOM Ukraine on a case whose enquiry it acknowledged and accepted (a party, the
 *   receiving organisation of record, not the lead), facing the full referral that followed its
 *   acceptance (read; a packet that is not an enquiry is read, never answered).
 * invited: the Kyiv shelter, invited to the case by IOM Poland; no consent covers it, and no packet is for it.
 * unrelated: IOM Morocco, a receiving-side partner with nothing to do with the case.
 * unrelatedSender: Border Guard Poland, a sending-side partner in the same country, not a party.
 * hub: the hub operator's own organisation (where the hub admin sits).
 */
const RELATION_ORGANISATION: Record<RoleRelation, string> = {
  own: ORG.iomPoland,
  counterpart: ORG.iomUkraine,
  counterpartAcknowledged: ORG.iomUkraine,
  counterpartAccepted: ORG.iomUkraine,
  invited: ORG.kyivShelter,
  unrelated: ORG.iomMorocco,
  unrelatedSender: ORG.borderGuardPoland,
  hub: ORG.hub,
}

/** Demo principals that already hold a role; the other (organisation, role) pairs are created by the hub admin. */
const DEMO_PRINCIPAL_KEYS: Record<string, Partial<Record<Role, string | undefined>>> = {
  [ORG.iomPoland]: { caseworker: demoKeys.demoiomplcw1, supervisor: demoKeys.demoiomplsv1, dpo: demoKeys.demoiompldpo },
  [ORG.iomUkraine]: { caseworker: demoKeys.demoiomuacw1, supervisor: demoKeys.demoiomuasv1 },
  [ORG.kyivShelter]: { caseworker: demoKeys.demoshuacw01 },
  [ORG.iomMorocco]: { caseworker: demoKeys.demoiommacw1 },
  [ORG.borderGuardPoland]: { caseworker: demoKeys.demobgplcw01 },
  [ORG.hub]: { admin: demoKeys.demohubadmin },
}

const admin = demoKeys.demohubadmin as string
const sender = demoKeys.demoiomplcw1 as string
const recipient = demoKeys.demoiomuacw1 as string
const invitedParty = demoKeys.demoshuacw01 as string
const supervisor = demoKeys.demoiomplsv1 as string
const secondSupervisor = demoKeys.demoiomplsv2 as string
const DEMO_SENDER_PRINCIPAL = '00000000-0000-4000-8001-000000000101'

// ─── The table ───────────────────────────────────────────────────────────────────────────────

/** Expected status per role, in the order of ROLES: caseworker, supervisor, dpo, auditor, admin. */
type PerRole = readonly [number, number, number, number, number]
type Row = Record<RoleRelation, PerRole> & { anonymous: number; revoked: number }

const ALL_200: PerRole = [200, 200, 200, 200, 200]
const ALL_403: PerRole = [403, 403, 403, 403, 403]
/** Open to every authenticated caller, whatever its relation to any case. */
const ANY_AUTHENTICATED: Row = {
  own: ALL_200,
  counterpart: ALL_200,
  counterpartAcknowledged: ALL_200,
  counterpartAccepted: ALL_200,
  invited: ALL_200,
  unrelated: ALL_200,
  unrelatedSender: ALL_200,
  hub: ALL_200,
  anonymous: 401,
  revoked: 401,
}
/** Hub-administration operations: only the hub operator's admin. */
const HUB_ADMIN_ONLY = (status: number): Row => ({
  own: ALL_403, // judgement: an `admin` principal of a partner organisation is not the hub admin
  counterpart: ALL_403,
  counterpartAcknowledged: ALL_403,
  counterpartAccepted: ALL_403,
  invited: ALL_403,
  unrelated: ALL_403,
  unrelatedSender: ALL_403,
  hub: [403, 403, 403, 403, status],
  anonymous: 401,
  revoked: 401,
})
/** The same for every organisation: what an organisation may do with what is its own, by role. */
const ANY_ORGANISATION = (perRole: PerRole): Row => ({
  own: perRole,
  counterpart: perRole,
  counterpartAcknowledged: perRole,
  counterpartAccepted: perRole,
  invited: perRole,
  unrelated: perRole,
  unrelatedSender: perRole,
  hub: perRole,
  anonymous: 401,
  revoked: 401,
})
/**
 * A webhook endpoint of IOM Poland (`own`): only its caseworker or supervisor; the roles that may
 * never manage webhooks are refused first (403), any other organisation's caseworker or supervisor
 * learns nothing of the endpoint (404).
 */
const OWN_ENDPOINT = (status: number): Row => ({
  own: [status, status, 403, 403, 403],
  counterpart: [404, 404, 403, 403, 403],
  counterpartAcknowledged: [404, 404, 403, 403, 403],
  counterpartAccepted: [404, 404, 403, 403, 403],
  invited: [404, 404, 403, 403, 403],
  unrelated: [404, 404, 403, 403, 403],
  unrelatedSender: [404, 404, 403, 403, 403],
  hub: [404, 404, 403, 403, 403],
  anonymous: 401,
  revoked: 401,
})
/** Reading a case's procedure, timeline or records: the reading roles of any party to the case. */
const CASE_PARTY_READS: Row = {
  own: [200, 200, 200, 200, 403],
  counterpart: [404, 404, 404, 404, 403], // a recipient that only read the packet is not a party
  counterpartAcknowledged: [200, 200, 200, 200, 403], // a party from its acknowledgement
  counterpartAccepted: [200, 200, 200, 200, 403],
  invited: [200, 200, 200, 200, 403],
  unrelated: [404, 404, 404, 404, 403],
  unrelatedSender: [404, 404, 404, 404, 403],
  hub: [404, 404, 404, 404, 403],
  anonymous: 401,
  revoked: 401,
}

/**
 * Accepting, declining or asking for information: the recipient's caseworker or supervisor, once it
 * has acknowledged. A recipient that only read the packet passes authorisation but the lifecycle
 * refuses (409): acknowledgement comes first.
 */
const ANSWER_AFTER_ACKNOWLEDGEMENT: Row = {
  own: ALL_403, // the sender sees the packet but may not answer it
  counterpart: [409, 409, 403, 403, 403], // read, not acknowledged: not yet open to an answer
  counterpartAcknowledged: [200, 200, 403, 403, 403], // accepting: both sides recorded the joint risk assessment
  counterpartAccepted: [409, 409, 403, 403, 403], // the full referral: only an enquiry is answered
  invited: [404, 404, 403, 403, 403],
  unrelated: [404, 404, 403, 403, 403],
  unrelatedSender: [404, 404, 403, 403, 403],
  hub: [404, 404, 403, 403, 403],
  anonymous: 401,
  revoked: 401,
}

/**
 * A change of IOM Poland's proceeding: its caseworker or supervisor. Any other party, the receiving
 * side included, may change only a proceeding it may read, and no consent covers proceedings here:
 * for them it does not exist (404).
 */
const CHANGE_OWN_PROCEEDING = (status: number): Row => ({
  own: [status, status, 403, 403, 403],
  counterpart: [404, 404, 403, 403, 403],
  counterpartAcknowledged: [404, 404, 403, 403, 403],
  counterpartAccepted: [404, 404, 403, 403, 403],
  invited: [404, 404, 403, 403, 403],
  unrelated: [404, 404, 403, 403, 403],
  unrelatedSender: [404, 404, 403, 403, 403],
  hub: [404, 404, 403, 403, 403],
  anonymous: 401,
  revoked: 401,
})

/**
 * Conventions encoded here:
 * - 401 for no key or a revoked key, on every non-public operation, before anything else.
 * - 403 when the caller's role may never do this: decided before the resource is looked up, so it
 *   is the same for an existing and a non-existent resource (checked by the probe below).
 * - 404 for any organisation that is not a party to the case (not its sender, not a recipient that
 *   acknowledged a packet of it, not invited) or to the packet (not its sender or recipient): it must
 *   not learn that the resource exists.
 * - 403 for a party that may see the resource but may not do this (not the lead, not the recipient).
 * - 409 where authorisation let the caller through and the packet's lifecycle or the case's
 *   procedure refused: an answer to a packet that is not (or no longer) open to it, or an action of
 *   the procedure whose side or role the caller does not hold (with `unmet`, checked below).
 */
const TABLE: Record<string, Row> = {
  // Operations: public.
  getLiveness: { ...ANY_AUTHENTICATED, anonymous: 200, revoked: 200 },
  getReadiness: { ...ANY_AUTHENTICATED, anonymous: 200, revoked: 200 },

  // Identity and directory: any authenticated caller.
  getMe: ANY_AUTHENTICATED,
  listOrganisations: ANY_AUTHENTICATED,
  getOrganisation: ANY_AUTHENTICATED,

  // Hub administration.
  createOrganisation: HUB_ADMIN_ONLY(201),
  listPrincipals: HUB_ADMIN_ONLY(200),
  createPrincipal: HUB_ADMIN_ONLY(201),
  listApiKeys: HUB_ADMIN_ONLY(200),
  issueApiKey: HUB_ADMIN_ONLY(201),
  revokeApiKey: HUB_ADMIN_ONLY(200),

  // Cases.
  listCases: {
    own: [200, 200, 200, 200, 403],
    counterpart: [200, 200, 200, 200, 403], // 200, but without the case (checked below)
    counterpartAcknowledged: [200, 200, 200, 200, 403], // with the case (checked below)
    counterpartAccepted: [200, 200, 200, 200, 403],
    invited: [200, 200, 200, 200, 403], // a party: the case is listed
    unrelated: [200, 200, 200, 200, 403],
    unrelatedSender: [200, 200, 200, 200, 403],
    hub: [200, 200, 200, 200, 403],
    anonymous: 401,
    revoked: 401,
  },
  createCase: {
    own: [201, 201, 403, 403, 403],
    counterpart: ALL_403, // IOM Ukraine cannot send
    counterpartAcknowledged: ALL_403,
    counterpartAccepted: ALL_403,
    invited: ALL_403, // the shelter cannot send
    unrelated: ALL_403, // IOM Morocco cannot send
    unrelatedSender: [201, 201, 403, 403, 403], // Border Guard Poland can send: its own new case
    hub: ALL_403, // the hub cannot send
    anonymous: 401,
    revoked: 401,
  },
  getCase: {
    own: [200, 200, 200, 200, 403],
    counterpart: [404, 404, 404, 404, 403], // a packet recipient is not a party until it acknowledges
    counterpartAcknowledged: [200, 200, 200, 200, 403], // only the consented sections (checked below)
    counterpartAccepted: [200, 200, 200, 200, 403], // only the consented sections (checked below)
    invited: [200, 200, 200, 200, 403], // a party, but no section is consented to it (checked below)
    unrelated: [404, 404, 404, 404, 403],
    unrelatedSender: [404, 404, 404, 404, 403],
    hub: [404, 404, 404, 404, 403],
    anonymous: 401,
    revoked: 401,
  },
  updateCase: {
    own: [200, 200, 403, 403, 403],
    counterpart: [404, 404, 403, 403, 403],
    counterpartAcknowledged: ALL_403, // a party, but not the lead
    counterpartAccepted: ALL_403, // a party, but not the lead
    invited: ALL_403,
    unrelated: [404, 404, 403, 403, 403],
    unrelatedSender: [404, 404, 403, 403, 403],
    hub: [404, 404, 403, 403, 403],
    anonymous: 401,
    revoked: 401,
  },
  inviteParty: {
    own: [201, 201, 403, 403, 403],
    counterpart: [404, 404, 403, 403, 403], // a packet recipient is not a party until it acknowledges
    // Only the sending partner and the receiving partner that accepted may invite: a recipient that has
    // only acknowledged has not taken the case on yet.
    counterpartAcknowledged: ALL_403,
    counterpartAccepted: [201, 201, 403, 403, 403], // the receiving party may invite
    invited: ALL_403, // an invited party may not invite others
    unrelated: [404, 404, 403, 403, 403],
    unrelatedSender: [404, 404, 403, 403, 403],
    hub: [404, 404, 403, 403, 403],
    anonymous: 401,
    revoked: 401,
  },
  listCaseAudit: {
    own: [403, 403, 200, 200, 403],
    counterpart: [403, 403, 404, 404, 403],
    counterpartAcknowledged: [403, 403, 200, 200, 403],
    counterpartAccepted: [403, 403, 200, 200, 403],
    invited: [403, 403, 200, 200, 403],
    unrelated: [403, 403, 404, 404, 403],
    unrelatedSender: [403, 403, 404, 404, 403],
    hub: [403, 403, 404, 404, 403],
    anonymous: 401,
    revoked: 401,
  },
  // The whole trail's chain, for the data protection officer of any organisation: the answer holds
  // counts, hashes and record numbers, no personal data and nothing of any case.
  verifyAuditTrail: ANY_ORGANISATION([403, 403, 200, 403, 403]),
  // The public keys that sign the audit checkpoints: public, like the checkpoints themselves.
  getAuditSigningKeys: { ...ANY_AUTHENTICATED, anonymous: 200, revoked: 200 },

  // Consents.
  listConsents: CASE_PARTY_READS,
  getConsent: CASE_PARTY_READS,
  // A receipt is for the person: only the staff of the organisation holding the consent (the sending
  // partner, which recorded it) print it; other parties see the consent but do not issue its receipt.
  getConsentReceipt: {
    own: [200, 200, 200, 403, 403],
    counterpart: [404, 404, 404, 403, 403],
    counterpartAcknowledged: ALL_403,
    counterpartAccepted: ALL_403,
    invited: ALL_403,
    unrelated: [404, 404, 404, 403, 403],
    unrelatedSender: [404, 404, 404, 403, 403],
    hub: [404, 404, 404, 403, 403],
    anonymous: 401,
    revoked: 401,
  },
  recordConsent: {
    own: [201, 201, 403, 403, 403],
    counterpart: [404, 404, 403, 403, 403],
    counterpartAcknowledged: ALL_403,
    counterpartAccepted: ALL_403,
    invited: ALL_403,
    unrelated: [404, 404, 403, 403, 403],
    unrelatedSender: [404, 404, 403, 403, 403],
    hub: [404, 404, 403, 403, 403],
    anonymous: 401,
    revoked: 401,
  },
  withdrawConsent: {
    own: [200, 200, 403, 403, 403],
    counterpart: [404, 404, 403, 403, 403],
    counterpartAcknowledged: ALL_403,
    counterpartAccepted: ALL_403,
    invited: ALL_403,
    unrelated: [404, 404, 403, 403, 403],
    unrelatedSender: [404, 404, 403, 403, 403],
    hub: [404, 404, 403, 403, 403],
    anonymous: 401,
    revoked: 401,
  },

  // Packets.
  // Sending is a transition of the procedure. The target is a case whose sending is open: for the
  // sender, the enquiry to IOM Albania once the return is decided; for the receiving partner after its
  // acknowledgement (not open at that step) and after its acceptance (an update, the sending side's
  // to send), and for the invited party (on neither side), the procedure refuses (409 with `unmet`).
  sendPacket: {
    own: [201, 201, 403, 403, 403],
    counterpart: [404, 404, 403, 403, 403],
    counterpartAcknowledged: [409, 409, 403, 403, 403],
    counterpartAccepted: [409, 409, 403, 403, 403],
    invited: [409, 409, 403, 403, 403],
    unrelated: [404, 404, 403, 403, 403],
    unrelatedSender: [404, 404, 403, 403, 403],
    hub: [404, 404, 403, 403, 403],
    anonymous: 401,
    revoked: 401,
  },
  listPackets: {
    own: [200, 200, 200, 200, 403], // outbox holds the packet
    counterpart: [200, 200, 200, 200, 403], // inbox holds the packet
    counterpartAcknowledged: [200, 200, 200, 200, 403], // inbox holds the packet
    counterpartAccepted: [200, 200, 200, 200, 403],
    invited: [200, 200, 200, 200, 403], // inbox without the packet
    unrelated: [200, 200, 200, 200, 403], // inbox without it
    unrelatedSender: [200, 200, 200, 200, 403],
    hub: [200, 200, 200, 200, 403],
    anonymous: 401,
    revoked: 401,
  },
  getPacket: {
    own: [200, 200, 200, 200, 403],
    counterpart: [200, 200, 200, 200, 403],
    counterpartAcknowledged: [200, 200, 200, 200, 403],
    counterpartAccepted: [200, 200, 200, 200, 403],
    invited: [404, 404, 404, 404, 403], // judgement: a party to the case, but not to a packet between two others
    unrelated: [404, 404, 404, 404, 403],
    unrelatedSender: [404, 404, 404, 404, 403],
    hub: [404, 404, 404, 404, 403],
    anonymous: 401,
    revoked: 401,
  },
  acknowledgePacket: {
    own: ALL_403, // the sender sees the packet but may not answer it
    counterpart: [200, 200, 403, 403, 403],
    counterpartAcknowledged: [409, 409, 403, 403, 403], // the recipient may, but it already acknowledged
    counterpartAccepted: [409, 409, 403, 403, 403], // the full referral: only an enquiry is acknowledged
    invited: [404, 404, 403, 403, 403],
    unrelated: [404, 404, 403, 403, 403],
    unrelatedSender: [404, 404, 403, 403, 403],
    hub: [404, 404, 403, 403, 403],
    anonymous: 401,
    revoked: 401,
  },
  acceptPacket: ANSWER_AFTER_ACKNOWLEDGEMENT,
  declinePacket: ANSWER_AFTER_ACKNOWLEDGEMENT,
  requestPacketInformation: ANSWER_AFTER_ACKNOWLEDGEMENT,

  // Procedures: the definitions are reference data, open to every role, the hub's admin included.
  listSops: ANY_AUTHENTICATED,
  getSop: ANY_AUTHENTICATED,
  // The picture of a procedure: published like the contract, which holds the same procedures.
  getSopDiagram: { ...ANY_AUTHENTICATED, anonymous: 200, revoked: 200 },
  listRecordKinds: ANY_AUTHENTICATED,
  listLabels: ANY_AUTHENTICATED,
  getNextActions: CASE_PARTY_READS,
  getTimeline: CASE_PARTY_READS,
  // A case's picture is read like the case: steps and dates only (no section data, checked below).
  getCaseProcedureDiagram: CASE_PARTY_READS,
  // Every party reads the records of the categories it may see (checked below); only the two sides keep them.
  listCaseRecords: CASE_PARTY_READS,
  // Attachments: listed by the reading roles of any party, each item through the disclosure policy.
  listCaseAttachments: CASE_PARTY_READS,
  // A health attachment IOM Poland uploaded; in the accepted scenario it went to IOM Ukraine in an
  // update, under the consent that covers health: only there may the receiving side download it.
  getCaseAttachment: {
    own: [200, 200, 200, 200, 403],
    counterpart: [404, 404, 404, 404, 403], // not a party to the case
    counterpartAcknowledged: [404, 404, 404, 404, 403], // a party, but the attachment never travelled to it
    counterpartAccepted: [200, 200, 200, 200, 403], // it travelled, under consent
    invited: [404, 404, 404, 404, 403], // a party no consent and no packet names
    unrelated: [404, 404, 404, 404, 403],
    unrelatedSender: [404, 404, 404, 404, 403],
    hub: [404, 404, 404, 404, 403],
    anonymous: 401,
    revoked: 401,
  },
  // Uploading: like recording, the sending and the receiving side.
  uploadCaseAttachment: {
    own: [201, 201, 403, 403, 403],
    counterpart: [404, 404, 403, 403, 403],
    counterpartAcknowledged: [201, 201, 403, 403, 403],
    counterpartAccepted: [201, 201, 403, 403, 403],
    invited: ALL_403, // a party, but on neither side
    unrelated: [404, 404, 403, 403, 403],
    unrelatedSender: [404, 404, 403, 403, 403],
    hub: [404, 404, 403, 403, 403],
    anonymous: 401,
    revoked: 401,
  },
  createCaseRecord: {
    own: [201, 201, 403, 403, 403], // the sending side
    counterpart: [404, 404, 403, 403, 403],
    counterpartAcknowledged: [201, 201, 403, 403, 403], // the receiving side from its acknowledgement
    counterpartAccepted: [201, 201, 403, 403, 403], // the receiving side
    invited: ALL_403, // a party, but on neither side
    unrelated: [404, 404, 403, 403, 403],
    unrelatedSender: [404, 404, 403, 403, 403],
    hub: [404, 404, 403, 403, 403],
    anonymous: 401,
    revoked: 401,
  },
  // `put_on_hold` (no guards; side `lead`, the sending partner until arrival) on a fresh case: only the
  // lead's caseworker or supervisor may. The procedure decides between parties (409 with `unmet`);
  // the role check comes first (403), the party check next (404).
  performTransition: {
    own: [200, 200, 403, 403, 403],
    counterpart: [404, 404, 403, 403, 403],
    counterpartAcknowledged: [409, 409, 403, 403, 403], // the receiving side, not the lead
    counterpartAccepted: [409, 409, 403, 403, 403], // the receiving side, not the lead (until arrival)
    invited: [409, 409, 403, 403, 403], // a party on neither side
    unrelated: [404, 404, 403, 403, 403],
    unrelatedSender: [404, 404, 403, 403, 403],
    hub: [404, 404, 403, 403, 403],
    anonymous: 401,
    revoked: 401,
  },
  // Moving a case to another version of its procedure: only a supervisor (403 for every other role,
  // before the case is looked up), of the organisation that leads the case (403 for another party,
  // 404 for a non-party). The shipped procedures have no other version for an adult, so the lead's
  // supervisor passes authorisation and is refused the move to the version the case already follows
  // (422 `same-procedure`); the move itself is tested in national-variants.test.ts.
  migrateCaseProcedure: {
    own: [403, 422, 403, 403, 403],
    counterpart: [403, 404, 403, 403, 403],
    counterpartAcknowledged: ALL_403, // a party, but not the lead
    counterpartAccepted: ALL_403, // a party, but not the lead (until arrival)
    invited: ALL_403,
    unrelated: [403, 404, 403, 403, 403],
    unrelatedSender: [403, 404, 403, 403, 403],
    hub: [403, 404, 403, 403, 403],
    anonymous: 401,
    revoked: 401,
  },
  // Only supervisors, of any organisation: each sees the escalations of the cases it is a party to
  // (none are raised here: the list's content is not checked by this matrix).
  listEscalations: {
    own: [403, 200, 403, 403, 403],
    counterpart: [403, 200, 403, 403, 403],
    counterpartAcknowledged: [403, 200, 403, 403, 403],
    counterpartAccepted: [403, 200, 403, 403, 403],
    invited: [403, 200, 403, 403, 403],
    unrelated: [403, 200, 403, 403, 403],
    unrelatedSender: [403, 200, 403, 403, 403],
    hub: [403, 200, 403, 403, 403],
    anonymous: 401,
    revoked: 401,
  },

  // Events: every organisation reads its own feed. What it holds is checked below: the events of a
  // case go to its parties, those of a packet to its sender and recipient, and to no one else.
  listEvents: {
    own: [200, 200, 200, 200, 403], // with the case
    counterpart: [200, 200, 200, 200, 403], // with the case: not a party to it, but to its packet
    counterpartAcknowledged: [200, 200, 200, 200, 403], // with the case
    counterpartAccepted: [200, 200, 200, 200, 403], // with the case
    invited: [200, 200, 200, 200, 403], // with the case, from its invitation
    unrelated: [200, 200, 200, 200, 403], // its feed, without any case of the matrix
    unrelatedSender: [200, 200, 200, 200, 403],
    hub: [200, 200, 200, 200, 403],
    anonymous: 401,
    revoked: 401,
  },

  // Webhooks: each organisation manages its own endpoints (listed and created for the caller's own
  // organisation, so every organisation gets its own list); the target endpoint is IOM Poland's.
  listWebhookEndpoints: ANY_ORGANISATION([200, 200, 403, 403, 403]), // only its own (checked below)
  createWebhookEndpoint: ANY_ORGANISATION([201, 201, 403, 403, 403]),
  getWebhookEndpoint: OWN_ENDPOINT(200),
  updateWebhookEndpoint: OWN_ENDPOINT(200),
  rotateWebhookSecret: OWN_ENDPOINT(200),
  listWebhookDeliveries: OWN_ENDPOINT(200),
  redeliverWebhook: OWN_ENDPOINT(202), // a delivery that failed: queued again

  // Safety overrides: a supervisor of the lead asks, a second supervisor of the same organisation
  // approves, and the recipient (IOM Ukraine here) then reads the note. The target of the reads is an
  // approved override of IOM Poland to IOM Ukraine; the target of the approval is a pending one that
  // IOM Poland's second supervisor asked for, so that the matrix's supervisor is the second one.
  requestSafetyOverride: {
    own: [403, 201, 403, 403, 403], // only a supervisor of the lead
    counterpart: [404, 404, 403, 403, 403],
    counterpartAcknowledged: ALL_403, // a party, but not the lead
    counterpartAccepted: ALL_403,
    invited: ALL_403,
    unrelated: [404, 404, 403, 403, 403],
    unrelatedSender: [404, 404, 403, 403, 403],
    hub: [404, 404, 403, 403, 403],
    anonymous: 401,
    revoked: 401,
  },
  listSafetyOverrides: ANY_ORGANISATION([403, 200, 200, 200, 403]), // only its own (checked below)
  getSafetyOverride: {
    own: [200, 200, 200, 200, 403],
    counterpart: [200, 200, 200, 200, 403], // the recipient, with the note once approved
    counterpartAcknowledged: [200, 200, 200, 200, 403],
    counterpartAccepted: [200, 200, 200, 200, 403],
    invited: [404, 404, 404, 404, 403], // a party to the case, but the override is not its own
    unrelated: [404, 404, 404, 404, 403],
    unrelatedSender: [404, 404, 404, 404, 403],
    hub: [404, 404, 404, 404, 403],
    anonymous: 401,
    revoked: 401,
  },
  approveSafetyOverride: {
    own: [403, 200, 403, 403, 403],
    counterpart: ALL_403, // the recipient sees the override but may not approve it
    counterpartAcknowledged: ALL_403,
    counterpartAccepted: ALL_403,
    invited: [403, 404, 403, 403, 403],
    unrelated: [403, 404, 403, 403, 403],
    unrelatedSender: [403, 404, 403, 403, 403],
    hub: [403, 404, 403, 403, 403],
    anonymous: 401,
    revoked: 401,
  },

  // Data protection. The hub admin registers the standing transfer agreements (Art. 46) and lists them
  // all; a DPO lists those of its organisation, and the transfers it sent or received (its own only:
  // the matrix's cases stay out of other organisations' lists). The subject access export is for the
  // DPO of a party to the case, through the disclosure policy (checked below).
  createTransferAgreement: HUB_ADMIN_ONLY(201),
  listTransferAgreements: { ...ANY_ORGANISATION([403, 403, 200, 403, 403]), hub: [403, 403, 200, 403, 200] },
  listTransfers: ANY_ORGANISATION([403, 403, 200, 403, 403]),
  exportSubjectAccess: {
    own: [403, 403, 200, 403, 403],
    counterpart: [403, 403, 404, 403, 403], // a packet recipient is not a party until it acknowledges
    counterpartAcknowledged: [403, 403, 200, 403, 403], // only the consented categories (checked below)
    counterpartAccepted: [403, 403, 200, 403, 403],
    invited: [403, 403, 200, 403, 403], // a party, but no category is consented to it (checked below)
    unrelated: [403, 403, 404, 403, 403],
    unrelatedSender: [403, 403, 404, 403, 403],
    hub: [403, 403, 404, 403, 403],
    anonymous: 401,
    revoked: 401,
  },
  // Erasure destroys the case's data key: the DPO of the organisation that opened the case (the
  // controller) only. Any other party's DPO is refused (403); anyone else learns nothing (404).
  eraseCase: {
    own: [403, 403, 200, 403, 403],
    counterpart: [403, 403, 404, 403, 403], // a packet recipient is not a party until it acknowledges
    counterpartAcknowledged: ALL_403,
    counterpartAccepted: ALL_403,
    invited: ALL_403,
    unrelated: [403, 403, 404, 403, 403],
    unrelatedSender: [403, 403, 404, 403, 403],
    hub: [403, 403, 404, 403, 403],
    anonymous: 401,
    revoked: 401,
  },
  // Proceedings: a proceeding IOM Poland opened on the case. Proceedings data is a consent category
  // of its own, which no consent of the matrix covers: only IOM Poland, which holds the case, reads
  // it; any other party, the receiving side included, gets 404 as for a proceeding that does not
  // exist. Both sides may open one; the invited party, on neither side, may not.
  listProceedings: CASE_PARTY_READS, // with the proceeding for IOM Poland alone (checked below)
  getProceeding: {
    own: [200, 200, 200, 200, 403],
    counterpart: [404, 404, 404, 404, 403],
    counterpartAcknowledged: [404, 404, 404, 404, 403], // a party, but no consent covers proceedings
    counterpartAccepted: [404, 404, 404, 404, 403],
    invited: [404, 404, 404, 404, 403],
    unrelated: [404, 404, 404, 404, 403],
    unrelatedSender: [404, 404, 404, 404, 403],
    hub: [404, 404, 404, 404, 403],
    anonymous: 401,
    revoked: 401,
  },
  createProceeding: {
    own: [201, 201, 403, 403, 403],
    counterpart: [404, 404, 403, 403, 403],
    counterpartAcknowledged: [201, 201, 403, 403, 403], // the receiving side follows proceedings too
    counterpartAccepted: [201, 201, 403, 403, 403],
    invited: ALL_403, // a party, but on neither side
    unrelated: [404, 404, 403, 403, 403],
    unrelatedSender: [404, 404, 403, 403, 403],
    hub: [404, 404, 403, 403, 403],
    anonymous: 401,
    revoked: 401,
  },
  updateProceeding: CHANGE_OWN_PROCEEDING(200),
  addHearing: CHANGE_OWN_PROCEEDING(201),
  recordHearingOutcome: CHANGE_OWN_PROCEEDING(200),

  // Withdrawal notices: each organisation reads those addressed to it (checked below); the target
  // notice is addressed to IOM Ukraine, which read a packet that relied on the withdrawn consent.
  listWithdrawalNotices: ANY_ORGANISATION([200, 200, 200, 200, 403]),
  acknowledgeWithdrawal: {
    own: [404, 404, 403, 403, 403], // the sender withdrew the consent: the notice is not addressed to it
    counterpart: [200, 200, 403, 403, 403], // it received the data, so it holds a notice (again: the same 200)
    counterpartAcknowledged: [200, 200, 403, 403, 403],
    counterpartAccepted: [200, 200, 403, 403, 403],
    invited: [404, 404, 403, 403, 403], // a party, but no data reached it under the consent
    unrelated: [404, 404, 403, 403, 403],
    unrelatedSender: [404, 404, 403, 403, 403],
    hub: [404, 404, 403, 403, 403],
    anonymous: 401,
    revoked: 401,
  },

  // Indicators: aggregates under disclosure control, for whoever coordinates or oversees (a
  // supervisor, the DPO, an auditor) in any organisation, and the hub's admin, who reports to donors.
  getIndicators: { ...ANY_ORGANISATION([403, 200, 200, 200, 403]), hub: [403, 200, 200, 200, 200] },
  getIndicatorChart: { ...ANY_ORGANISATION([403, 200, 200, 200, 403]), hub: [403, 200, 200, 200, 200] },

  // Trainings: the target is one IOM Poland organised, with IOM Ukraine's staff taking part and the
  // Kyiv shelter as NGO partner. The organisations it names read it, any auditor reads every
  // training, the hub's admin too; to anyone else it does not exist. Only the organiser's
  // supervisor changes it; any supervisor registers its own organisation's.
  listTrainings: { ...ANY_ORGANISATION([200, 200, 200, 200, 403]), hub: [200, 200, 200, 200, 200] }, // only those it may read (checked below)
  createTraining: ANY_ORGANISATION([403, 201, 403, 403, 403]),
  getTraining: {
    own: [200, 200, 200, 200, 403],
    counterpart: [200, 200, 200, 200, 403], // its staff took part
    counterpartAcknowledged: [200, 200, 200, 200, 403],
    counterpartAccepted: [200, 200, 200, 200, 403],
    invited: [200, 200, 200, 200, 403], // the NGO partner
    unrelated: [404, 404, 404, 200, 403],
    unrelatedSender: [404, 404, 404, 200, 403],
    hub: [404, 404, 404, 200, 200],
    anonymous: 401,
    revoked: 401,
  },
  updateTraining: {
    own: [403, 200, 403, 403, 403],
    counterpart: ALL_403, // reads it, but did not organise it
    counterpartAcknowledged: ALL_403,
    counterpartAccepted: ALL_403,
    invited: ALL_403,
    unrelated: [403, 404, 403, 403, 403],
    unrelatedSender: [403, 404, 403, 403, 403],
    hub: [403, 404, 403, 403, 403],
    anonymous: 401,
    revoked: 401,
  },
}

// ─── The contract's operations ───────────────────────────────────────────────────────────────

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const

interface ContractOperation {
  operationId: string
  method: Uppercase<(typeof METHODS)[number]>
  path: string
}

const contractOperations: ContractOperation[] = Object.entries(contract.paths).flatMap(([path, item]) =>
  METHODS.flatMap((method) => {
    const operation = item[method]
    return operation
      ? [{ operationId: operation.operationId, method: method.toUpperCase() as ContractOperation['method'], path }]
      : []
  }),
)

// ─── Fixtures, built through the API ─────────────────────────────────────────────────────────

/** Strings that live only in the case's sections; psychosocial is never consented to anyone. */
const SENTINEL = {
  identity: 'Sentinel-Identity-Olena-7731',
  health: 'Sentinel-Health-Condition-7731',
  psychosocial: 'Sentinel-Psychosocial-Assessment-7731',
} as const
const ALL_SENTINELS = Object.values(SENTINEL)
/** The note of the safety overrides: for IOM Poland, which wrote it, and IOM Ukraine, its recipient, alone. */
const SAFETY_NOTE = 'Sentinel-Safety-Note-7731'
/** The notes of IOM Poland's proceeding: no consent covers proceedings, so IOM Poland alone reads them. */
const PROCEEDINGS_NOTE = 'Sentinel-Proceedings-Note-7731'
const SAFETY_OPERATIONS: ReadonlySet<string> = new Set([
  'requestSafetyOverride',
  'listSafetyOverrides',
  'getSafetyOverride',
  'approveSafetyOverride',
])

/** pending: the recipient only read the packet; acknowledged: it acknowledged it; accepted: see `scenario`. */
type ScenarioKind = 'pending' | 'acknowledged' | 'accepted'

/** The scenario each relation is tested on: the recipient's columns differ by how far it went. */
const KIND_OF: Record<RoleRelation, ScenarioKind> = {
  own: 'pending',
  counterpart: 'pending',
  counterpartAcknowledged: 'acknowledged',
  counterpartAccepted: 'accepted',
  invited: 'pending',
  unrelated: 'pending',
  unrelatedSender: 'pending',
  hub: 'pending',
}

interface Scenario {
  caseId: string
  reference: string
  consentId: string
  packetId: string
}

/** What an operation's request is aimed at. */
interface Target {
  params: Record<string, string>
  scenario?: Scenario
  /** listEvents: where the feed of each party to the scenario ended before it, by organisation. */
  feedCursors?: Record<string, string>
}

interface Cell {
  relation: Relation
  role: Role | undefined
}

interface RequestSpec {
  params?: Record<string, string>
  query?: string
  /** JSON, or the bytes of a multipart upload (with its `content-type` in `headers`). */
  payload?: Record<string, unknown> | Buffer
  headers?: Record<string, string>
}

interface OperationUnderTest {
  /** Whether an allowed call changes state that other cells rely on: its target is then rebuilt. */
  mutates: boolean
  prepare?: (kind: ScenarioKind) => Promise<Target>
  build: (target: Target, cell: Cell) => Promise<RequestSpec>
}

class Fixtures {
  readonly #request: TestApp['request']
  readonly #db: Kysely<DB>
  readonly references = new Set<string>()
  readonly caseIds = new Set<string>()
  #counter = 0

  constructor(request: TestApp['request'], db: Kysely<DB>) {
    this.#request = request
    this.#db = db
  }

  unique(label: string): string {
    this.#counter += 1
    return `${label} ${this.#counter}`
  }

  /** A setup call that must succeed; a failure throws with the answer, so a setup problem is never an authorisation result. */
  async call(options: InjectOptions & { key?: string }, status: number, what: string): Promise<LightMyRequestResponse> {
    const response = await this.#request(options)
    if (response.statusCode !== status) {
      throw new Error(`setup: ${what} answered ${response.statusCode}, not ${status}: ${response.body}`)
    }
    return response
  }

  async createKey(organisationId: string, roles: string[], name: string): Promise<{ key: string; keyId: string }> {
    const principal = await this.call(
      {
        method: 'POST',
        url: `/v1/organisations/${organisationId}/principals`,
        key: admin,
        payload: { name, kind: 'staff', roles },
      },
      201,
      `create principal ${name}`,
    )
    const issued = await this.call(
      {
        method: 'POST',
        url: `/v1/principals/${principal.json().id}/api-keys`,
        key: admin,
        payload: { label: `key of ${name}` },
      },
      201,
      `issue key for ${name}`,
    )
    return { key: issued.json().key, keyId: issued.json().id }
  }

  async principal(organisationId: string, roles: string[]): Promise<string> {
    const created = await this.call(
      {
        method: 'POST',
        url: `/v1/organisations/${organisationId}/principals`,
        key: admin,
        payload: { name: this.unique('Matrix target principal'), kind: 'system', roles },
      },
      201,
      'create a target principal',
    )
    return created.json().id
  }

  async packetEtag(packetId: string): Promise<string> {
    const read = await this.call({ method: 'GET', url: `/v1/packets/${packetId}`, key: sender }, 200, 'read packet')
    return String(read.headers.etag)
  }

  /** A criminal proceeding IOM Poland opens on the case, with a hearing if asked. */
  async proceeding(caseId: string, withHearing: boolean): Promise<Record<string, string>> {
    const created = await this.call(
      {
        method: 'POST',
        url: `/v1/cases/${caseId}/proceedings`,
        key: sender,
        payload: { ...NEW_PROCEEDING, notes: PROCEEDINGS_NOTE },
      },
      201,
      'open a proceeding',
    )
    const proceedingId = created.json().id as string
    if (!withHearing) return { proceedingId }
    const scheduled = await this.call(
      {
        method: 'POST',
        url: `/v1/cases/${caseId}/proceedings/${proceedingId}/hearings`,
        key: sender,
        headers: { 'if-match': String(created.headers.etag) },
        payload: NEW_HEARING,
      },
      201,
      'add a hearing',
    )
    return { proceedingId, hearingId: scheduled.json().hearings[0].id as string }
  }

  async proceedingEtag(caseId: string, proceedingId: string): Promise<string> {
    const read = await this.call(
      { method: 'GET', url: `/v1/cases/${caseId}/proceedings/${proceedingId}`, key: sender },
      200,
      'read proceeding',
    )
    return String(read.headers.etag)
  }

  /** A training IOM Poland organised, with IOM Ukraine's staff and the Kyiv shelter as NGO partner. */
  async training(): Promise<string> {
    const created = await this.call(
      {
        method: 'POST',
        url: '/v1/trainings',
        key: supervisor,
        payload: {
          ...NEW_TRAINING,
          participant_organisation_ids: [ORG.iomUkraine],
          ngo_partner_ids: [ORG.kyivShelter],
        },
      },
      201,
      'register a training',
    )
    return created.json().id
  }

  async trainingEtag(trainingId: string): Promise<string> {
    const read = await this.call(
      { method: 'GET', url: `/v1/trainings/${trainingId}`, key: supervisor },
      200,
      'read training',
    )
    return String(read.headers.etag)
  }

  async caseEtag(caseId: string): Promise<string> {
    const read = await this.call({ method: 'GET', url: `/v1/cases/${caseId}`, key: sender }, 200, 'read case')
    return String(read.headers.etag)
  }

  /** The cursor of the end of the caller's event feed, as it is now: what happens next comes after it. */
  async feedEnd(key: string): Promise<string> {
    let after: string | undefined
    for (;;) {
      const page = await this.call(
        { method: 'GET', url: `/v1/events?limit=500${after ? `&after=${after}` : ''}`, key },
        200,
        'read the event feed',
      )
      after = page.json().next_cursor as string
      if (!page.json().has_more) return after
    }
  }

  /** Waits until the feed of `key` after `after` shows an event of the case. */
  async feedShowsCase(key: string, caseId: string, after: string): Promise<void> {
    await feedUntil(this.#request, key, (events) => events.some((event) => event.case_id === caseId), after)
  }

  /** A webhook endpoint of IOM Poland (only stored: no worker delivers anything in the test app). */
  async webhookEndpoint(): Promise<string> {
    const created = await this.call(
      { method: 'POST', url: '/v1/webhook-endpoints', key: sender, payload: { url: WEBHOOK_URL } },
      201,
      'register a webhook endpoint',
    )
    return created.json().id
  }

  async endpointEtag(endpointId: string): Promise<string> {
    const read = await this.call(
      { method: 'GET', url: `/v1/webhook-endpoints/${endpointId}`, key: sender },
      200,
      'read webhook endpoint',
    )
    return String(read.headers.etag)
  }

  /**
   * A delivery to IOM Poland's endpoint of an event of the scenario's case, which used up its
   * retries (`failed`), written as the relay and the delivery job would: neither runs in the test app.
   */
  async failedDelivery(endpointId: string, scenario: Scenario): Promise<string> {
    return this.#db.transaction().execute(async (trx) => {
      await recordEvent(
        trx,
        { type: 'case.updated', caseId: scenario.caseId, data: { case_reference: scenario.reference, version: 1 } },
        [ORG.iomPoland],
      )
      const event = await trx
        .selectFrom('events')
        .select('id')
        .where('case_id', '=', scenario.caseId)
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirstOrThrow()
      const delivery = await trx
        .insertInto('webhook_deliveries')
        .values({ endpoint_id: endpointId, event_id: event.id, status: 'failed', queued_at: new Date() })
        .returning('id')
        .executeTakeFirstOrThrow()
      await trx
        .insertInto('webhook_attempts')
        .values({ delivery_id: delivery.id, status_code: 503, error: null, duration_ms: 40 })
        .execute()
      return delivery.id
    })
  }

  /**
   * The sender withdraws the scenario's consent. IOM Ukraine read a packet that relied on it, so it
   * gets a notice to delete its copies: the notice's id.
   */
  async withdrawalNotice(scenario: Scenario): Promise<string> {
    await this.call(
      {
        method: 'POST',
        url: `/v1/cases/${scenario.caseId}/consents/${scenario.consentId}/withdraw`,
        key: sender,
        payload: { reason: 'The person withdrew her consent.' },
      },
      200,
      'withdraw consent',
    )
    const notices = await this.call(
      { method: 'GET', url: '/v1/withdrawal-notices?limit=200', key: recipient },
      200,
      'recipient lists its withdrawal notices',
    )
    const notice = (notices.json().items as { id: string; consent_id: string }[]).find(
      (item) => item.consent_id === scenario.consentId,
    )
    if (!notice) throw new Error(`setup: IOM Ukraine got no withdrawal notice for consent ${scenario.consentId}`)
    return notice.id
  }

  /** A safety override of IOM Poland to IOM Ukraine on the case, asked by `askedBy`; approved by the other supervisor if `approve`. */
  async safetyOverride(caseId: string, askedBy: string, approve: boolean): Promise<string> {
    const asked = await this.call(
      {
        method: 'POST',
        url: `/v1/cases/${caseId}/safety-overrides`,
        key: askedBy,
        payload: SAFETY_OVERRIDE,
      },
      201,
      'ask for a safety override',
    )
    const overrideId = asked.json().id as string
    if (approve) {
      await this.call(
        {
          method: 'POST',
          url: `/v1/safety-overrides/${overrideId}/approve`,
          key: askedBy === secondSupervisor ? supervisor : secondSupervisor,
        },
        200,
        'approve the safety override',
      )
    }
    return overrideId
  }

  async recordConsent(caseId: string, provision: Record<string, unknown>): Promise<string> {
    const recorded = await this.call(
      { method: 'POST', url: `/v1/cases/${caseId}/consents`, key: sender, payload: consentBody(provision) },
      201,
      'record consent',
    )
    return recorded.json().id
  }

  async sendPacket(caseId: string, recipientId: string): Promise<string> {
    const sent = await this.call(
      {
        method: 'POST',
        url: `/v1/cases/${caseId}/packets`,
        key: sender,
        payload: { recipient_organisation_id: recipientId, purpose: 'return_assistance' },
      },
      201,
      'send packet',
    )
    return sent.json().id
  }

  /** A small PDF IOM Poland uploads to the case, as `category`: the attachment's id. */
  async attachment(caseId: string, category: string): Promise<string> {
    const upload = attachmentUpload(category)
    const uploaded = await this.call(
      { method: 'POST', url: `/v1/cases/${caseId}/attachments`, key: sender, ...upload },
      201,
      'upload an attachment',
    )
    return uploaded.json().id
  }

  /** IOM Poland sends the accepted partner an update of the referral carrying these attachments. */
  async sendUpdate(caseId: string, attachmentIds: string[]): Promise<void> {
    await this.call(
      {
        method: 'POST',
        url: `/v1/cases/${caseId}/packets`,
        key: sender,
        payload: {
          recipient_organisation_id: ORG.iomUkraine,
          purpose: 'return_assistance',
          attachment_ids: attachmentIds,
        },
      },
      201,
      'send an update with an attachment',
    )
  }

  /** The recipient acknowledges the packet, unless it already did: from then on it is a party to the case. */
  async acknowledge(packetId: string): Promise<void> {
    const read = await this.call({ method: 'GET', url: `/v1/packets/${packetId}`, key: recipient }, 200, 'read packet')
    if (read.json().status === 'acknowledged') return
    await this.call(
      {
        method: 'POST',
        url: `/v1/packets/${packetId}/acknowledge`,
        key: recipient,
        headers: { 'if-match': String(read.headers.etag) },
        payload: { focal_point: { name: 'Iryna Shevchenko' }, alternate_contact: { name: 'Petro Bondarenko' } },
      },
      200,
      'recipient acknowledges packet',
    )
  }

  /** The case's ETag, read by the sender, then a transition of its procedure that must succeed. */
  async transition(caseId: string, action: string): Promise<void> {
    await this.call(
      {
        method: 'POST',
        url: `/v1/cases/${caseId}/transitions`,
        key: sender,
        headers: { 'if-match': await this.caseEtag(caseId) },
        payload: { action },
      },
      200,
      `take ${action}`,
    )
  }

  async record(caseId: string, key: string, payload: Record<string, unknown>, what: string): Promise<void> {
    await this.call({ method: 'POST', url: `/v1/cases/${caseId}/records`, key, payload }, 201, what)
  }

  /**
   * A case opened by IOM Poland with identity, health and psychosocial sections; the Kyiv shelter
   * invited as a party; a consent for identity and health to `recipientId` for return assistance;
   * the person's return decision recorded and taken: the enquiry may go.
   */
  async decidedCase(recipientId: string): Promise<Omit<Scenario, 'packetId'>> {
    const created = await this.call(
      {
        method: 'POST',
        url: '/v1/cases',
        key: sender,
        payload: {
          profile: {
            age_band: '25_34',
            sex: 'female',
            nationality: 'UA',
            country_of_return: 'UA',
            vulnerabilities: [],
          },
          sections: {
            identity: { given_name: SENTINEL.identity, family_name: 'Kovalenko', date_of_birth: '1994-03-02' },
            health: { conditions: [SENTINEL.health] },
            psychosocial: { assessment_summary: SENTINEL.psychosocial },
          },
        },
      },
      201,
      'open case',
    )
    const caseId = created.json().id as string
    const reference = created.json().reference as string
    this.references.add(reference)
    this.caseIds.add(caseId)
    await this.call(
      {
        method: 'POST',
        url: `/v1/cases/${caseId}/parties`,
        key: sender,
        payload: { organisation_id: ORG.kyivShelter },
      },
      201,
      'invite the Kyiv shelter',
    )
    const consentId = await this.recordConsent(caseId, {
      categories: ['identity', 'health'],
      recipients: [recipientId],
      purposes: ['return_assistance'],
    })
    await this.record(caseId, sender, { kind: 'return_decision', data: recordData.return_decision }, 'return decision')
    await this.transition(caseId, 'decide_return')
    return { caseId, reference, consentId }
  }

  /**
   * A decided case (see `decidedCase`) whose enquiry went to IOM Ukraine, which read it (received).
   * `acknowledged`: IOM Ukraine also acknowledged it, and both sides recorded the joint risk and needs
   * assessment, so that it may accept. `accepted`: IOM Ukraine accepted too; the target packet is then
   * the full referral that followed, which IOM Ukraine read.
   */
  async scenario(kind: ScenarioKind): Promise<Scenario> {
    const { caseId, reference, consentId } = await this.decidedCase(ORG.iomUkraine)
    let packetId = await this.sendPacket(caseId, ORG.iomUkraine)
    await this.call({ method: 'GET', url: `/v1/packets/${packetId}`, key: recipient }, 200, 'recipient reads packet')
    if (kind === 'acknowledged' || kind === 'accepted') {
      await this.acknowledge(packetId)
      const risk = { kind: 'assessment', assessment: 'risk_and_needs', data: assessmentData.risk_and_needs }
      await this.record(caseId, sender, risk, 'risk assessed by the sender')
      await this.record(caseId, recipient, risk, 'risk assessed by the recipient')
    }
    if (kind === 'accepted') {
      await this.call(
        {
          method: 'POST',
          url: `/v1/packets/${packetId}/accept`,
          key: recipient,
          headers: { 'if-match': await this.packetEtag(packetId) },
          payload: {},
        },
        200,
        'recipient accepts packet',
      )
      const inbox = await this.call(
        { method: 'GET', url: '/v1/packets?direction=inbound&limit=200', key: recipient },
        200,
        'recipient lists its inbox',
      )
      const full = (inbox.json().items as { id: string; case_id: string; kind: string }[]).find(
        (packet) => packet.case_id === caseId && packet.kind === 'referral',
      )
      if (!full) throw new Error(`setup: no full referral followed the acceptance on case ${caseId}`)
      packetId = full.id
      await this.call(
        { method: 'GET', url: `/v1/packets/${packetId}`, key: recipient },
        200,
        'recipient reads the full referral',
      )
    }
    return { caseId, reference, consentId, packetId }
  }
}

/** A multipart upload of a small PDF (a medical certificate, say) of the given category. */
function attachmentUpload(category: string): { payload: Buffer; headers: Record<string, string> } {
  const boundary = 'matrix-boundary-7731'
  const pdf = '%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n'
  const payload = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="category"\r\n\r\n${category}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="certificate.pdf"\r\n` +
      `Content-Type: application/pdf\r\n\r\n${pdf}\r\n--${boundary}--\r\n`,
  )
  return { payload, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } }
}

function consentBody(provision: Record<string, unknown>) {
  return {
    given_at: new Date(Date.now() - 3_600_000).toISOString(),
    method: 'written',
    language: 'uk',
    interpreter: { used: false },
    guardian: null,
    provisions: [provision],
  }
}

/** A public-looking https URL: the test app refuses private targets, and never calls this one. */
const WEBHOOK_URL = 'https://hooks.example.org/trm'

const SAFETY_OVERRIDE = {
  recipient_organisation_id: ORG.iomUkraine,
  reason: 'The trafficker has threatened her family.',
  note: SAFETY_NOTE,
  expires_in_days: 30,
}

const NEW_TRAINING = {
  kind: 'training',
  held_on: '2026-03-12',
  place: 'Warsaw',
  country: 'PL',
  topic: 'Referral for voluntary return',
  participants: [{ institution_type: 'border_guard', count: 20 }],
}
const NEW_PROCEEDING = {
  kind: 'criminal',
  country: 'PL',
  authority: 'Regional Court of Warsaw',
  stage: 'trial',
  person_roles: ['victim', 'witness'],
}
const NEW_HEARING = {
  scheduled_at: new Date(Date.now() + 60 * 86_400_000).toISOString(),
  purpose: 'testimony',
  participation: 'remote',
}

/** A consent nobody relies on: legal data to the Kyiv shelter for monitoring. */
const HARMLESS_PROVISION = { categories: ['legal'], recipients: [ORG.kyivShelter], purposes: ['monitoring'] }

function operationsUnderTest(fx: Fixtures, scenarioOf: (key: string, kind: ScenarioKind) => Promise<Scenario>) {
  const onScenario = (key: string) => async (kind: ScenarioKind) => {
    const scenario = await scenarioOf(key, kind)
    return {
      scenario,
      params: { caseId: scenario.caseId, consentId: scenario.consentId, packetId: scenario.packetId },
    }
  }
  const shared = onScenario('shared')
  const none = async () => ({ params: {} })
  /** A fresh endpoint of IOM Poland. */
  const ownEndpoint = async () => ({ params: { endpointId: await fx.webhookEndpoint() } })
  /** A fresh endpoint of IOM Poland with a delivery that failed. */
  const failedDelivery = async (kind: ScenarioKind) => {
    const endpointId = await fx.webhookEndpoint()
    const deliveryId = await fx.failedDelivery(endpointId, await scenarioOf('shared', kind))
    return { params: { endpointId, deliveryId } }
  }
  /** A proceeding IOM Poland opened on the scenario's case (with a hearing, for its outcome). */
  const withProceeding =
    (key: string, withHearing = false) =>
    async (kind: ScenarioKind) => {
      const scenario = await scenarioOf(key, kind)
      const ids = await fx.proceeding(scenario.caseId, withHearing)
      return { scenario, params: { caseId: scenario.caseId, ...ids } }
    }
  const proceedingChange = (
    key: string,
    payload: Record<string, unknown>,
    withHearing = false,
  ): OperationUnderTest => ({
    mutates: true, // the proceeding's version moves on (an outcome is recorded once): the next cell gets a fresh one
    prepare: withProceeding(key, withHearing),
    build: async (target) => ({
      headers: {
        'if-match': await fx.proceedingEtag(target.params.caseId as string, target.params.proceedingId as string),
      },
      payload,
    }),
  })
  /** A scenario whose consent the sender withdrew: IOM Ukraine holds a notice. */
  const withdrawn = (key: string) => async (kind: ScenarioKind) => {
    const scenario = await scenarioOf(key, kind)
    return { scenario, params: { noticeId: await fx.withdrawalNotice(scenario) } }
  }
  /** An answer to the scenario's packet, as it stands in the scenario of the caller's relation. */
  const answer = (operationId: string, payload: Record<string, unknown>): OperationUnderTest => ({
    mutates: true,
    prepare: onScenario(operationId),
    build: async (target) => ({
      headers: { 'if-match': await fx.packetEtag(target.params.packetId as string) },
      payload,
    }),
  })

  const operations: Record<string, OperationUnderTest> = {
    getLiveness: { mutates: false, build: async () => ({}) },
    getReadiness: { mutates: false, build: async () => ({}) },
    getMe: { mutates: false, build: async () => ({}) },
    verifyAuditTrail: { mutates: false, build: async () => ({}) },
    getAuditSigningKeys: { mutates: false, build: async () => ({}) },
    listOrganisations: { mutates: false, build: async () => ({ query: 'limit=200' }) },
    getOrganisation: { mutates: false, build: async () => ({ params: { organisationId: ORG.iomUkraine } }) },
    createOrganisation: {
      mutates: false,
      build: async () => ({
        payload: { name: fx.unique('Matrix NGO'), country: 'UA', kind: 'ngo', can_send: false, can_receive: true },
      }),
    },
    listPrincipals: { mutates: false, build: async () => ({ params: { organisationId: ORG.iomPoland } }) },
    createPrincipal: {
      mutates: false,
      build: async () => ({
        params: { organisationId: ORG.iomMorocco },
        payload: { name: fx.unique('Matrix principal'), kind: 'staff', roles: ['auditor'] },
      }),
    },
    listApiKeys: { mutates: false, build: async () => ({ params: { principalId: DEMO_SENDER_PRINCIPAL } }) },
    issueApiKey: {
      mutates: false,
      prepare: async () => ({ params: { principalId: await fx.principal(ORG.iomMorocco, ['auditor']) } }),
      build: async () => ({ payload: { label: fx.unique('matrix key') } }),
    },
    revokeApiKey: {
      mutates: true,
      prepare: async () => {
        const { keyId } = await fx.createKey(ORG.iomMorocco, ['auditor'], fx.unique('Matrix key holder'))
        return { params: { apiKeyId: keyId } }
      },
      build: async () => ({}),
    },
    listCases: { mutates: false, prepare: shared, build: async () => ({ query: 'limit=200' }) },
    createCase: {
      mutates: false,
      prepare: none,
      build: async () => ({ payload: { profile: { country_of_return: 'UA', vulnerabilities: [] } } }),
    },
    getCase: { mutates: false, prepare: shared, build: async () => ({}) },
    updateCase: {
      mutates: true,
      prepare: onScenario('updateCase'),
      build: async (target) => ({
        headers: { 'if-match': await fx.caseEtag(target.params.caseId as string) },
        payload: { sections: { travel: { escort_required: false } } },
      }),
    },
    inviteParty: {
      mutates: true,
      prepare: onScenario('inviteParty'),
      build: async () => ({ payload: { organisation_id: ORG.iomAlbania } }),
    },
    listCaseAudit: { mutates: false, prepare: shared, build: async () => ({ query: 'limit=200' }) },
    listConsents: { mutates: false, prepare: shared, build: async () => ({}) },
    getConsent: { mutates: false, prepare: shared, build: async () => ({}) },
    getConsentReceipt: { mutates: false, prepare: shared, build: async () => ({}) },
    recordConsent: {
      mutates: true,
      prepare: onScenario('recordConsent'),
      build: async () => ({ payload: consentBody(HARMLESS_PROVISION) }),
    },
    withdrawConsent: {
      mutates: true,
      prepare: async (kind) => {
        const scenario = await scenarioOf('withdrawConsent', kind)
        const consentId = await fx.recordConsent(scenario.caseId, HARMLESS_PROVISION)
        return { scenario, params: { caseId: scenario.caseId, consentId } }
      },
      build: async () => ({ payload: { reason: 'The person changed her mind.' } }),
    },
    sendPacket: {
      mutates: true,
      prepare: async (kind) => {
        // The sender's cells: a case whose return is decided, with consent for IOM Albania, a partner
        // in no relation of the matrix, so that only who calls decides. The receiving partner's
        // cells: the case at the step its relation reached.
        if (kind === 'pending') {
          const decided = await fx.decidedCase(ORG.iomAlbania)
          return { params: { caseId: decided.caseId } }
        }
        const scenario = await scenarioOf('sendPacket', kind)
        await fx.recordConsent(scenario.caseId, {
          categories: ['identity', 'health'],
          recipients: [ORG.iomAlbania],
          purposes: ['return_assistance'],
        })
        return { scenario, params: { caseId: scenario.caseId } }
      },
      build: async () => ({ payload: { recipient_organisation_id: ORG.iomAlbania, purpose: 'return_assistance' } }),
    },
    listPackets: {
      mutates: false,
      prepare: shared,
      build: async (_target, cell) => ({
        query: `direction=${cell.relation === 'own' ? 'outbound' : 'inbound'}&limit=200`,
      }),
    },
    getPacket: { mutates: false, prepare: shared, build: async () => ({}) },
    acknowledgePacket: answer('acknowledgePacket', {
      focal_point: { name: 'Iryna Shevchenko' },
      alternate_contact: { name: 'Petro Bondarenko' },
    }),
    acceptPacket: answer('acceptPacket', { note: 'We can receive her.' }),
    declinePacket: answer('declinePacket', { reason_code: 'no_capacity', reason_text: 'Our shelter is full.' }),
    requestPacketInformation: answer('requestPacketInformation', { questions: ['Does she need a medical escort?'] }),
    listSops: { mutates: false, build: async () => ({}) },
    getSop: { mutates: false, build: async () => ({ params: { sopId: 'adult-return' } }) },
    getSopDiagram: { mutates: false, build: async () => ({ params: { sopId: 'adult-return' } }) },
    listRecordKinds: { mutates: false, build: async () => ({}) },
    listLabels: { mutates: false, build: async () => ({}) },
    getNextActions: { mutates: false, prepare: shared, build: async () => ({}) },
    performTransition: {
      mutates: true,
      prepare: onScenario('performTransition'),
      build: async (target) => ({
        headers: { 'if-match': await fx.caseEtag(target.params.caseId as string) },
        payload: {
          action: 'put_on_hold',
          reason: 'Pending criminal proceedings in which she testifies.',
          review_date: new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10),
        },
      }),
    },
    migrateCaseProcedure: {
      mutates: false, // refused in every cell (see the table)
      prepare: shared,
      build: async (target) => ({
        headers: { 'if-match': await fx.caseEtag(target.params.caseId as string) },
        payload: { sop: { id: 'adult-return', version: 2 }, reason: 'The new version applies to this corridor.' },
      }),
    },
    getTimeline: { mutates: false, prepare: shared, build: async () => ({}) },
    getCaseProcedureDiagram: { mutates: false, prepare: shared, build: async () => ({}) },
    listCaseRecords: { mutates: false, prepare: shared, build: async () => ({}) },
    createCaseRecord: {
      mutates: false, // records only add to the case: every cell may add one
      prepare: onScenario('createCaseRecord'),
      build: async () => ({
        payload: {
          kind: 'assessment',
          assessment: 'risk_and_needs',
          data: { level: 'low', mitigations: [], summary: 'No threat identified.' },
        },
      }),
    },
    listCaseAttachments: { mutates: false, prepare: shared, build: async () => ({}) },
    getCaseAttachment: {
      mutates: false,
      prepare: async (kind) => {
        const scenario = await scenarioOf('attachments', kind)
        const attachmentId = await fx.attachment(scenario.caseId, 'health')
        if (kind === 'accepted') await fx.sendUpdate(scenario.caseId, [attachmentId])
        return { scenario, params: { caseId: scenario.caseId, attachmentId } }
      },
      build: async () => ({}),
    },
    uploadCaseAttachment: {
      mutates: false, // attachments only add to the case: every cell may add one
      prepare: onScenario('uploadCaseAttachment'),
      build: async () => attachmentUpload('health'),
    },
    listEscalations: { mutates: false, prepare: shared, build: async () => ({ query: 'limit=200' }) },
    listEvents: {
      mutates: false,
      prepare: async (kind) => {
        // Where the feeds of the scenario's parties end before it: its events follow, on one page.
        const feedCursors = {
          [ORG.iomPoland]: await fx.feedEnd(sender),
          [ORG.iomUkraine]: await fx.feedEnd(recipient),
          [ORG.kyivShelter]: await fx.feedEnd(invitedParty),
        }
        const scenario = await scenarioOf('listEvents', kind)
        // On PostgreSQL the scenario's events show once older transactions of the cluster end.
        for (const [key, organisationId] of [
          [sender, ORG.iomPoland],
          [recipient, ORG.iomUkraine],
          [invitedParty, ORG.kyivShelter],
        ] as const) {
          await fx.feedShowsCase(key, scenario.caseId, feedCursors[organisationId])
        }
        return { scenario, params: {}, feedCursors }
      },
      build: async (target, cell) => {
        // A party reads on from just before the scenario; any other organisation reads its feed from
        // its first event: none of it may concern a case of the matrix.
        const organisationId = organisationOf(cell.relation)
        const after = organisationId ? target.feedCursors?.[organisationId] : undefined
        return { query: after ? `after=${after}&limit=500` : 'limit=500' }
      },
    },
    listWebhookEndpoints: { mutates: false, prepare: ownEndpoint, build: async () => ({ query: 'limit=200' }) },
    createWebhookEndpoint: {
      mutates: false, // every cell may register one more
      prepare: none,
      build: async () => ({ payload: { url: WEBHOOK_URL } }),
    },
    getWebhookEndpoint: { mutates: false, prepare: ownEndpoint, build: async () => ({}) },
    updateWebhookEndpoint: {
      mutates: true,
      prepare: ownEndpoint,
      build: async (target) => ({
        headers: { 'if-match': await fx.endpointEtag(target.params.endpointId as string) },
        payload: { description: fx.unique('Matrix endpoint') },
      }),
    },
    rotateWebhookSecret: {
      mutates: false, // the endpoint keeps working with the new secret: every cell may rotate again
      prepare: ownEndpoint,
      build: async () => ({ payload: {} }),
    },
    listWebhookDeliveries: { mutates: false, prepare: failedDelivery, build: async () => ({ query: 'limit=200' }) },
    redeliverWebhook: {
      mutates: true, // the delivery is pending again: redelivering it once more would be a 409
      prepare: failedDelivery,
      build: async () => ({}),
    },
    listWithdrawalNotices: {
      mutates: false,
      prepare: withdrawn('listWithdrawalNotices'),
      build: async () => ({ query: 'limit=200' }),
    },
    requestSafetyOverride: {
      mutates: false, // every cell may ask once more
      prepare: onScenario('requestSafetyOverride'),
      build: async () => ({ payload: { ...SAFETY_OVERRIDE, recipient_organisation_id: ORG.iomAlbania } }),
    },
    listSafetyOverrides: {
      mutates: false,
      prepare: async (kind) => {
        const scenario = await scenarioOf('safety', kind)
        return { scenario, params: { overrideId: await fx.safetyOverride(scenario.caseId, supervisor, true) } }
      },
      build: async () => ({ query: 'limit=200' }),
    },
    getSafetyOverride: {
      mutates: false,
      prepare: async (kind) => {
        const scenario = await scenarioOf('safety', kind)
        return { scenario, params: { overrideId: await fx.safetyOverride(scenario.caseId, supervisor, true) } }
      },
      build: async () => ({}),
    },
    approveSafetyOverride: {
      mutates: true, // approved once: a second approval is a 409
      prepare: async (kind) => {
        const scenario = await scenarioOf('safety', kind)
        return {
          scenario,
          params: { overrideId: await fx.safetyOverride(scenario.caseId, secondSupervisor, false) },
        }
      },
      build: async () => ({}),
    },
    createTransferAgreement: {
      mutates: false, // every cell may register one more
      build: async () => ({
        payload: {
          exporter_organisation_id: ORG.iomPoland,
          importer_organisation_id: ORG.iomMorocco,
          safeguard: 'standard_contractual_clauses',
          reference: fx.unique('Matrix SCC'),
          valid_from: '2026-01-01',
        },
      }),
    },
    listTransferAgreements: { mutates: false, build: async () => ({ query: 'limit=200' }) },
    listTransfers: { mutates: false, prepare: shared, build: async () => ({ query: 'limit=200' }) },
    exportSubjectAccess: { mutates: false, prepare: shared, build: async () => ({}) },
    eraseCase: {
      mutates: true, // an erased case answers 410 to every later read: the next cell gets a fresh one
      prepare: onScenario('eraseCase'),
      build: async () => ({ payload: { reason: 'data_subject_request' } }),
    },
    acknowledgeWithdrawal: {
      mutates: false, // acknowledging again changes nothing and answers the same: every cell may
      prepare: withdrawn('acknowledgeWithdrawal'),
      build: async () => ({ payload: { action: 'deleted' } }),
    },
    listProceedings: { mutates: false, prepare: withProceeding('proceedings'), build: async () => ({}) },
    getProceeding: { mutates: false, prepare: withProceeding('proceedings'), build: async () => ({}) },
    createProceeding: {
      mutates: false, // every cell may open one more
      prepare: onScenario('createProceeding'),
      build: async () => ({ payload: NEW_PROCEEDING }),
    },
    updateProceeding: proceedingChange('updateProceeding', { stage: 'appeal' }),
    addHearing: proceedingChange('addHearing', NEW_HEARING),
    recordHearingOutcome: proceedingChange('recordHearingOutcome', { outcome: 'held' }, true),
    getIndicators: { mutates: false, build: async () => ({ query: 'period=quarter' }) },
    getIndicatorChart: {
      mutates: false,
      build: async () => ({ params: { indicator: 'beneficiaries_served' }, query: 'period=quarter' }),
    },
    listTrainings: {
      mutates: false,
      prepare: async () => ({ params: { trainingId: await fx.training() } }),
      build: async () => ({ query: 'limit=200' }),
    },
    createTraining: { mutates: false, build: async () => ({ payload: NEW_TRAINING }) },
    getTraining: {
      mutates: false,
      prepare: async () => ({ params: { trainingId: await fx.training() } }),
      build: async () => ({}),
    },
    updateTraining: {
      mutates: true, // the version moves on: the next cell gets a fresh training
      prepare: async () => ({ params: { trainingId: await fx.training() } }),
      build: async (target) => ({
        headers: { 'if-match': await fx.trainingEtag(target.params.trainingId as string) },
        payload: { place: 'Poznań' },
      }),
    },
  }
  return operations
}

// ─── Checks beyond the status ────────────────────────────────────────────────────────────────

const NON_PARTY: ReadonlySet<Relation> = new Set(['unrelated', 'unrelatedSender', 'hub', 'anonymous', 'revoked'])

/** Summaries, audit trails, events, notices and the procedure's answers never carry section data. */
const SECTION_FREE: ReadonlySet<string> = new Set([
  'listCases',
  'listPackets',
  'listConsents',
  'listCaseAudit',
  'getNextActions',
  'performTransition',
  'migrateCaseProcedure',
  'getTimeline',
  'getCaseProcedureDiagram',
  'listCaseRecords',
  'createCaseRecord',
  'listCaseAttachments',
  'uploadCaseAttachment',
  'getCaseAttachment',
  'listEscalations',
  'listEvents',
  'listWithdrawalNotices',
  'acknowledgeWithdrawal',
  'listTransfers',
  'listTransferAgreements',
])

/** The organisation the caller acts for; none without a valid key. */
function organisationOf(relation: Relation): string | undefined {
  return relation === 'anonymous' || relation === 'revoked' ? undefined : RELATION_ORGANISATION[relation]
}

/**
 * Kinds of event a party may not hear of the scenario's case, read after its feed's cursor: a
 * recipient that only read the packet hears of the packet, not of the case; an invited party of the
 * case, not of its packets.
 */
const barredEventKinds: Partial<Record<Relation, string[]>> = {
  counterpart: ['case.', 'consent.'],
  invited: ['packet.'],
}

/** Strings the body of this answer must not contain. */
function forbiddenIn(operationId: string, cell: Cell, status: number, target: Target, fx: Fixtures): string[] {
  const forbidden: string[] = [SENTINEL.psychosocial] // never consented to anyone but shown to the sender
  // The sending partner holds everything of the case: its case reads and its DPO's subject access export show all of it.
  if (
    cell.relation === 'own' &&
    status < 300 &&
    ['getCase', 'updateCase', 'exportSubjectAccess'].includes(operationId)
  ) {
    forbidden.length = 0
  }
  if (status >= 300 || NON_PARTY.has(cell.relation)) {
    forbidden.push(...fx.references, ...ALL_SENTINELS)
    if (status < 300) forbidden.push(...fx.caseIds)
  }
  if (SECTION_FREE.has(operationId)) forbidden.push(...ALL_SENTINELS)
  if (operationId === 'listCases' && cell.relation === 'counterpart' && target.scenario) {
    forbidden.push(target.scenario.reference) // not a party before it acknowledges
  }
  // Identity reaches a receiving partner only once it accepted: the enquiry and the case before that withhold it.
  if (['counterpart', 'counterpartAcknowledged'].includes(cell.relation)) forbidden.push(SENTINEL.identity)
  if (operationId === 'getPacket' && cell.relation === 'own') forbidden.push(SENTINEL.identity) // the enquiry it sent
  if (cell.relation === 'invited') {
    forbidden.push(...ALL_SENTINELS) // no consent covers the invited shelter
    if (operationId === 'listPackets' && target.params.packetId) forbidden.push(target.params.packetId)
  }
  // An invited party of the case hears nothing of its packets (the kinds of event are checked apart).
  if (operationId === 'listEvents' && target.scenario && cell.relation === 'invited') {
    forbidden.push(target.scenario.packetId)
  }
  // IOM Poland's endpoints and their deliveries are its own; the notice is IOM Ukraine's alone.
  const organisationId = organisationOf(cell.relation)
  if (status < 300 && organisationId !== ORG.iomPoland) {
    for (const name of ['endpointId', 'deliveryId']) {
      const id = target.params[name]
      if (id) forbidden.push(id)
    }
  }
  if (status < 300 && organisationId !== ORG.iomUkraine && target.params.noticeId) {
    forbidden.push(target.params.noticeId)
  }
  // A safety override is its maker's and its recipient's; its note travels in nothing else, events and audit included.
  const overrideParty = organisationId === ORG.iomPoland || organisationId === ORG.iomUkraine
  if (!SAFETY_OPERATIONS.has(operationId) || !overrideParty || status >= 300) forbidden.push(SAFETY_NOTE)
  if (status < 300 && !overrideParty && target.params.overrideId) forbidden.push(target.params.overrideId)
  // No consent covers proceedings: what a proceeding says stays with IOM Poland, in every answer.
  if (organisationId !== ORG.iomPoland || status >= 300) forbidden.push(PROCEEDINGS_NOTE)
  if (operationId === 'listTrainings' && status < 300 && !readsTraining(cell)) {
    forbidden.push(target.params.trainingId as string)
  }
  return [...new Set(forbidden)]
}

/** The target training names IOM Poland, IOM Ukraine and the Kyiv shelter; auditors and the hub's admin read every training. */
function readsTraining(cell: Cell): boolean {
  return (
    ['own', 'counterpart', 'counterpartAcknowledged', 'counterpartAccepted', 'invited'].includes(cell.relation) ||
    cell.role === 'auditor' ||
    (cell.relation === 'hub' && cell.role === 'admin')
  )
}

/** What a successful answer must contain, for the lists whose content depends on the relation. */
function requiredIn(operationId: string, cell: Cell, target: Target): string[] {
  if (operationId === 'listTrainings' && readsTraining(cell)) return [target.params.trainingId as string]
  if (operationId === 'listWebhookEndpoints' && cell.relation === 'own') return [target.params.endpointId as string]
  if (operationId === 'listWebhookDeliveries' && cell.relation === 'own') return [target.params.deliveryId as string]
  const overrideParty = ['own', 'counterpart', 'counterpartAcknowledged', 'counterpartAccepted'].includes(cell.relation)
  if (operationId === 'listSafetyOverrides' && overrideParty) return [target.params.overrideId as string, SAFETY_NOTE]
  if (operationId === 'getSafetyOverride' && overrideParty) return [SAFETY_NOTE] // approved, not expired
  if (['listProceedings', 'getProceeding'].includes(operationId) && cell.relation === 'own') {
    return [target.params.proceedingId as string, PROCEEDINGS_NOTE]
  }
  const reference = target.scenario?.reference
  if (!reference) return []
  if (
    operationId === 'listCases' &&
    ['own', 'counterpartAcknowledged', 'counterpartAccepted', 'invited'].includes(cell.relation)
  ) {
    return [reference]
  }
  if (
    operationId === 'listPackets' &&
    ['own', 'counterpart', 'counterpartAcknowledged', 'counterpartAccepted'].includes(cell.relation)
  ) {
    return [target.params.packetId as string]
  }
  // Health is consented to IOM Ukraine; identity too, but it goes only to the partner that accepted.
  if (operationId === 'getCase' && cell.relation === 'counterpartAcknowledged') return [SENTINEL.health]
  if (operationId === 'exportSubjectAccess' && cell.relation === 'own') {
    return [...ALL_SENTINELS, target.params.packetId as string]
  }
  if (operationId === 'exportSubjectAccess' && cell.relation === 'counterpartAcknowledged') {
    return [SENTINEL.health, target.params.packetId as string]
  }
  if (operationId === 'listTransfers' && cell.relation === 'own') return [target.params.packetId as string]
  if (operationId === 'getCase' && cell.relation === 'counterpartAccepted') return [SENTINEL.identity, SENTINEL.health]
  if (operationId === 'getPacket' && ['own', 'counterpart', 'counterpartAcknowledged'].includes(cell.relation)) {
    return [SENTINEL.health] // the enquiry
  }
  if (operationId === 'getPacket' && cell.relation === 'counterpartAccepted') {
    return [SENTINEL.identity, SENTINEL.health] // the full referral
  }
  if (operationId === 'getCase' && cell.relation === 'own') return ALL_SENTINELS
  if (
    operationId === 'listEvents' &&
    ['own', 'counterpart', 'counterpartAcknowledged', 'counterpartAccepted', 'invited'].includes(cell.relation)
  ) {
    return [target.scenario?.caseId as string] // the counterpart through the events of the packet it received
  }
  if (
    operationId === 'listWithdrawalNotices' &&
    ['counterpart', 'counterpartAcknowledged', 'counterpartAccepted'].includes(cell.relation)
  ) {
    return [target.params.noticeId as string]
  }
  return []
}

/**
 * Path parameters naming case data or what is an organisation's own: a non-party must get the same
 * answer for these as for ids that do not exist.
 */
const RESOURCE_PARAMS = [
  'caseId',
  'consentId',
  'packetId',
  'endpointId',
  'deliveryId',
  'noticeId',
  'overrideId',
  'proceedingId',
  'hearingId',
  'attachmentId',
]

function isNonPartyFor(operation: ContractOperation, relation: Relation): boolean {
  if (NON_PARTY.has(relation)) return true
  // A webhook endpoint, and its deliveries, are IOM Poland's own.
  if (operation.path.includes('{endpointId}')) return relation !== 'own'
  // The withdrawal notice is addressed to IOM Ukraine.
  if (operation.path.includes('{noticeId}')) {
    return !['counterpart', 'counterpartAcknowledged', 'counterpartAccepted'].includes(relation)
  }
  // The safety override is IOM Poland's, and IOM Ukraine's as its recipient.
  if (operation.path.includes('{overrideId}')) {
    return !['own', 'counterpart', 'counterpartAcknowledged', 'counterpartAccepted'].includes(relation)
  }
  // IOM Poland's proceeding: no consent lets another party read it, so for them it does not exist.
  if (operation.path.includes('{proceedingId}')) return relation !== 'own'
  // Before it acknowledges, the recipient is a party to the packet but not to the case.
  if (relation === 'counterpart') return operation.path.includes('{caseId}')
  // An invited party is a party to the case but not to its packets.
  if (relation === 'invited') return operation.path.includes('{packetId}')
  return false
}

// ─── The tests ───────────────────────────────────────────────────────────────────────────────

t.test('the table has exactly one row per contract operation, with every cell', async (t) => {
  const inContract = contractOperations.map((operation) => operation.operationId).sort()
  t.ok(inContract.length > 0, 'the contract has operations')
  t.same(Object.keys(TABLE).sort(), inContract, 'table rows = contract operations')
  for (const [operationId, row] of Object.entries(TABLE)) {
    for (const relation of ROLE_RELATIONS) {
      t.equal(row[relation]?.length, ROLES.length, `${operationId}.${relation} has a status per role`)
    }
    t.type(row.anonymous, 'number', `${operationId}.anonymous`)
    t.type(row.revoked, 'number', `${operationId}.revoked`)
  }
})

t.test('authorisation matrix', async (t) => {
  const app = await startTestApp(t, { rateLimitPerMinute: 1_000_000, authFailuresPerMinute: 1_000_000 })
  const fx = new Fixtures(app.request, app.database.db)

  // A key per (relation organisation, role).
  const keys = new Map<string, string>()
  for (const organisationId of new Set(Object.values(RELATION_ORGANISATION))) {
    for (const role of ROLES) {
      const existing = DEMO_PRINCIPAL_KEYS[organisationId]?.[role]
      const key = existing ?? (await fx.createKey(organisationId, [role], `Matrix ${role}`)).key
      const me = await fx.call({ method: 'GET', url: '/v1/me', key }, 200, `${role} of ${organisationId} is known`)
      t.same(
        [me.json().organisation.id, me.json().principal.roles],
        [organisationId, [role]],
        `the ${role} key acts for ${organisationId} with that one role`,
      )
      keys.set(`${organisationId} ${role}`, key)
    }
  }
  // A key of IOM Poland with every role, revoked: it would be allowed almost everything.
  const revokedKey = await fx.createKey(ORG.iomPoland, [...ROLES], 'Matrix revoked')
  await fx.call({ method: 'GET', url: '/v1/me', key: revokedKey.key }, 200, 'the key works before revocation')
  await fx.call({ method: 'POST', url: `/v1/api-keys/${revokedKey.keyId}/revoke`, key: admin }, 200, 'revoke the key')

  const scenarios = new Map<string, Scenario>()
  const scenarioOf = async (key: string, kind: ScenarioKind): Promise<Scenario> => {
    const cacheKey = `${key} ${kind}`
    let scenario = scenarios.get(cacheKey)
    if (!scenario) {
      scenario = await fx.scenario(kind)
      scenarios.set(cacheKey, scenario)
    }
    return scenario
  }
  const operations = operationsUnderTest(fx, scenarioOf)

  const cells: Cell[] = [
    ...ROLE_RELATIONS.flatMap((relation) => ROLES.map((role) => ({ relation, role }))),
    { relation: 'anonymous', role: undefined },
    { relation: 'revoked', role: undefined },
  ]
  const keyOf = (cell: Cell): string | undefined => {
    if (cell.relation === 'anonymous') return undefined
    if (cell.relation === 'revoked') return revokedKey.key
    return keys.get(`${RELATION_ORGANISATION[cell.relation]} ${cell.role}`)
  }

  let cellCount = 0
  for (const operation of contractOperations) {
    const { operationId } = operation
    const row = TABLE[operationId]
    const underTest = operations[operationId]
    if (!row || !underTest) {
      t.fail(`${operationId} (${operation.method} ${operation.path}) has no row in the table or no request to make`)
      continue
    }
    await t.test(`${operationId}: ${operation.method} ${operation.path}`, async (t) => {
      const targets = new Map<ScenarioKind, Target>()
      for (const cell of cells) {
        const expected =
          cell.relation === 'anonymous' || cell.relation === 'revoked'
            ? row[cell.relation]
            : row[cell.relation][ROLES.indexOf(cell.role as Role)]
        const kind: ScenarioKind =
          cell.relation === 'anonymous' || cell.relation === 'revoked' ? 'pending' : KIND_OF[cell.relation]
        let target = targets.get(kind)
        if (!target) {
          target = underTest.prepare ? await underTest.prepare(kind) : { params: {} }
          targets.set(kind, target)
        }
        const spec = await underTest.build(target, cell)
        const params = { ...target.params, ...spec.params }
        const url = urlOf(operation.path, params, spec.query)
        const key = keyOf(cell)
        const response = await app.request({
          method: operation.method,
          url,
          ...(key ? { key } : {}),
          ...(spec.headers ? { headers: spec.headers } : {}),
          ...(spec.payload ? { payload: spec.payload } : {}),
        })
        cellCount += 1
        const label = `${operationId} as ${cell.relation}${cell.role ? ` ${cell.role}` : ''}`
        t.equal(response.statusCode, expected, `${label} → ${expected}`, { body: response.body.slice(0, 400) })
        const leaked = forbiddenIn(operationId, cell, response.statusCode, target, fx).filter((text) =>
          response.body.includes(text),
        )
        t.same(leaked, [], `${label}: the answer discloses nothing it may not`)
        if (operationId === 'listEvents' && target.scenario && response.statusCode === 200) {
          const barred = barredEventKinds[cell.relation] ?? []
          const heard = (response.json().items as { type: string; case_id: string | null }[])
            .filter((event) => event.case_id === target.scenario?.caseId)
            .map((event) => event.type)
          t.same(
            heard.filter((type) => barred.some((kind) => type.startsWith(kind))),
            [],
            `${label}: of the scenario's case it hears only what it may`,
          )
        }
        if (response.statusCode < 300) {
          const missing = requiredIn(operationId, cell, target).filter((text) => !response.body.includes(text))
          t.same(missing, [], `${label}: the answer holds what this caller may see`)
        }
        // A refusal by the procedure names what does not hold: here only who acts (side, role), never a guard.
        if (operationId === 'performTransition' && response.statusCode === 409) {
          const codes = ((response.json().unmet ?? []) as { code: string }[]).map((unmet) => unmet.code)
          t.ok(
            codes.length > 0 && codes.every((code) => code.startsWith('actor.')),
            `${label}: the refusal lists what is unmet, all of it about the actor`,
            { codes },
          )
        }

        // No oracle: for a non-party, an existing resource answers like one that does not exist.
        const named = RESOURCE_PARAMS.filter((name) => operation.path.includes(`{${name}}`))
        if (named.length > 0 && isNonPartyFor(operation, cell.relation) && response.statusCode >= 400) {
          const fake = Object.fromEntries(named.map((name) => [name, randomUUID()]))
          const probe = await app.request({
            method: operation.method,
            url: urlOf(operation.path, { ...params, ...fake }, spec.query),
            ...(key ? { key } : {}),
            ...(spec.headers ? { headers: spec.headers } : {}),
            ...(spec.payload ? { payload: spec.payload } : {}),
          })
          t.equal(
            response.statusCode,
            probe.statusCode,
            `${label}: answers as for a non-existent resource (${probe.statusCode})`,
          )
        }

        // An allowed change may have used up the target: the next cell gets a fresh one.
        if (underTest.mutates && response.statusCode < 300) {
          targets.delete(kind)
          scenarios.delete(`${operationId} ${kind}`)
        }
      }
    })
  }
  t.equal(cellCount, contractOperations.length * cells.length, `every cell of the matrix was called (${cellCount})`)
})

function urlOf(path: string, params: Record<string, string>, query: string | undefined): string {
  const filled = path.replaceAll(/\{(\w+)\}/g, (_match, name: string) => {
    const value = params[name]
    if (value === undefined) throw new Error(`no value for the path parameter ${name} of ${path}`)
    return value
  })
  return query ? `${filled}?${query}` : filled
}

t.test('reading is not acting: a DPO or auditor of the recipient reads a packet without taking delivery', async (t) => {
  const app = await startTestApp(t)
  const fx = new Fixtures(app.request, app.database.db)
  const readers = {
    dpo: (await fx.createKey(ORG.iomUkraine, ['dpo'], 'Reading DPO of IOM Ukraine')).key,
    auditor: (await fx.createKey(ORG.iomUkraine, ['auditor'], 'Reading auditor of IOM Ukraine')).key,
  }
  const { caseId } = await fx.decidedCase(ORG.iomUkraine)
  const packetId = await fx.sendPacket(caseId, ORG.iomUkraine)
  const sent = await fx.call({ method: 'GET', url: `/v1/packets/${packetId}`, key: sender }, 200, 'sender reads')
  t.equal(sent.json().status, 'sent', 'the enquiry is sent')
  const feedBefore = await fx.feedEnd(recipient)

  for (const [role, key] of Object.entries(readers)) {
    const read = await app.request({ method: 'GET', url: `/v1/packets/${packetId}`, key })
    t.equal(read.statusCode, 200, `the ${role} of IOM Ukraine reads the enquiry`)
    t.equal(read.json().status, 'sent', `reading as ${role} leaves it sent`)
    t.equal(read.headers.etag, sent.headers.etag, `and its ETag as it was (${role})`)
    t.ok(read.body.includes(SENTINEL.health), `the ${role} sees what the enquiry carries`)
    t.notOk(read.body.includes(SENTINEL.identity), `but no identity data (${role})`)
    const inbox = await app.request({ method: 'GET', url: '/v1/packets?direction=inbound&status=sent', key })
    t.ok(
      (inbox.json().items as { id: string }[]).some((packet) => packet.id === packetId),
      `the ${role}'s inbox still lists it as sent`,
    )
  }
  const received = (events: { type: string }[]) => events.filter((event) => event.type === 'packet.received')
  const quiet = await app.request({ method: 'GET', url: `/v1/events?after=${feedBefore}`, key: recipient })
  t.same(received(quiet.json().items), [], 'no packet.received event: nothing was delivered')

  const delivered = await app.request({ method: 'GET', url: `/v1/packets/${packetId}`, key: recipient })
  t.equal(delivered.json().status, 'received', 'the caseworker of IOM Ukraine takes delivery by reading it')
  t.not(delivered.headers.etag, sent.headers.etag, 'which changes the ETag')
  t.equal(
    received(await feedUntil(app.request, recipient, (events) => received(events).length > 0, feedBefore)).length,
    1,
    'and tells both sides it was received, once',
  )
})
