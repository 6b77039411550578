import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Kysely, Transaction } from 'kysely'
import type { components } from '../../openapi/dist/types.js'
import { packetAttachment } from '../attachments/handlers.js'
import { attachmentsOf } from '../attachments/queries.js'
import type { ReadAudit } from '../audit/read-audit.js'
import { type AuditEntry, auditRow, recordAudit } from '../audit/records.js'
import { caseErased } from '../cases/access.js'
import { runCaseChange } from '../cases/case-change.js'
import { applyTransition, gatherFacts, type OpenTransition, openTransition } from '../cases/procedure.js'
import { definitionOf, purposesAt } from '../cases/procedure-definition.js'
import { presentRecord } from '../cases/procedure-handlers.js'
import { addParty, findCase, removeReceivingParty } from '../cases/queries.js'
import type { Clock } from '../clock.js'
import type {
  Case,
  CaseParty,
  Consent,
  DB,
  Organisation,
  Packet,
  PacketStatus,
  PacketStep,
  Purpose,
} from '../db/schema.js'
import { type CategoriesView, composePacket, discloseCategories, disclosePacket } from '../disclosure/policy.js'
import { appendedEvent, type NewEvent, recordEvent } from '../events/outbox.js'
import { actingRoles, type Caller, readingRoles, requireRole } from '../http/authentication.js'
import type { Handlers } from '../http/contract.js'
import { etag, type Rendered, requiredIfMatch, runMutation, staleVersion } from '../http/mutation.js'
import { decodeCursor, toPage } from '../http/pagination.js'
import { notFound, ProblemError } from '../http/problem.js'
import { findOrganisation } from '../organisations/queries.js'
import type { SopRegistry } from '../sops/registry.js'
import { choiceOf, type TransferBasisChoice, transferBasis } from '../transfers/basis.js'
import { nextPacketStatus, type PacketAction } from './lifecycle.js'
import * as queries from './queries.js'

type Schemas = components['schemas']
type PacketKind = Schemas['PacketKind']

export interface PacketDependencies {
  db: Kysely<DB>
  sops: SopRegistry
  clock: Clock
  readAudit: ReadAudit
}

/**
 * The packets a new one amends: an update supersedes the referral or update before it. An enquiry
 * amends none: the procedure sends one only when no other is open.
 */
const amends: Record<PacketKind, PacketKind[]> = {
  enquiry: [],
  information: [],
  referral: ['referral', 'update'],
  update: ['referral', 'update'],
}
/** Every kind some packet amends: the newest of them to the recipient is read when a packet is sent. */
const amendable = [...new Set(Object.values(amends).flat())]

export function packetHandlers({ db, sops, clock, readAudit }: PacketDependencies) {
  /**
   * Composes a packet from the case as it is now, checks the legal basis of its transfer when it
   * leaves the EU/EEA, supersedes the one it amends, and records that it was sent.
   */
  async function send(
    trx: Transaction<DB>,
    request: FastifyRequest,
    found: Case,
    from: { organisation: Organisation; principalId: string | null },
    to: {
      recipient: Organisation
      purpose: Purpose
      note: string | null
      kind: PacketKind
      transfer: TransferBasisChoice | undefined
      /** Attachments of the case the sender names; each must be of a category the packet carries. */
      attachmentIds?: readonly string[]
    },
    /** The case's consents and records, as the transaction read them before its change. */
    { consents, records: caseRecords }: OpenTransition['loaded'],
    /** What the send read beside them: the agreements in force, the packets it follows. */
    sending: queries.SendingRead,
    now: Date,
  ): Promise<Omit<Packet, 'seq'>> {
    // The one rule of the legal basis every packet passes through.
    const transfer = transferBasis({
      sender: from.organisation,
      recipient: to.recipient,
      choice: to.transfer,
      agreements: sending.agreements,
      consents,
      now,
    })
    const records = caseRecords.map(presentRecord)
    const attachments = await attachmentsOf(trx, found, to.attachmentIds ?? [])
    const unknown = (to.attachmentIds ?? []).filter((id) => !attachments.some((attachment) => attachment.id === id))
    if (unknown.length > 0) {
      throw new ProblemError(422, `No attachment ${unknown.join(', ')} belongs to this case.`, {
        code: 'unknown-attachment',
        extras: {
          errors: unknown.map((id) => ({
            pointer: `#/attachment_ids/${to.attachmentIds?.indexOf(id)}`,
            detail: 'is not an attachment of this case',
          })),
        },
      })
    }
    const composed = composePacket(
      { ...found, records, attachments: attachments.map(packetAttachment) },
      consents,
      to.recipient.id,
      to.purpose,
      to.kind,
      now,
    )
    if (composed.refusedAttachments.length > 0) {
      throw new ProblemError(
        422,
        `This packet may not carry the attachments of ${[...new Set(composed.refusedAttachments.map((a) => a.category))].join(', ')} to ${to.recipient.name} for ${to.purpose}.`,
        { code: 'attachment-not-consented', extras: { attachments: composed.refusedAttachments } },
      )
    }
    if (composed.included.length === 0 && to.kind !== 'enquiry' && to.kind !== 'referral') {
      throw new ProblemError(
        422,
        `No active consent covers any data of this case for ${to.recipient.name} and ${to.purpose}.`,
        { code: 'nothing-consented', extras: { withheld: composed.withheld } },
      )
    }
    const step = (status: PacketStatus): PacketStep => ({
      status,
      at: now.toISOString(),
      principal_id: from.principalId,
      organisation_id: from.organisation.id,
    })
    const previous =
      sending.amendable && amends[to.kind].includes(sending.amendable.kind) ? sending.amendable : undefined
    const superseded = previous && nextPacketStatus(previous.status, 'supersede') ? previous : undefined
    if (superseded) {
      await queries.changePacket(trx, superseded, { status: 'superseded', step: step('superseded'), at: now })
      await recordPacketEvent(trx, found.reference, superseded, 'superseded')
    }
    const packet = await queries.insertPacket(trx, found, {
      case_id: found.id,
      kind: to.kind,
      version: sending.lastVersion + 1,
      sender_organisation_id: from.organisation.id,
      recipient_organisation_id: to.recipient.id,
      purpose: to.purpose,
      note: to.note,
      status: 'sent',
      included_categories: composed.included,
      withheld: composed.withheld,
      content: composed.content,
      content_hash: composed.contentHash,
      consents_by_category: composed.consentsByCategory,
      supersedes: superseded?.id ?? null,
      history: [step('sent')],
      acknowledgement: null,
      decision: null,
      questions: null,
      transfer,
      attachment_ids: (composed.content.attachments ?? []).map((attachment) => attachment.id),
      sent_at: now,
      updated_at: now,
    })
    await recordPacketEvent(trx, found.reference, packet, 'sent')
    await recordAudit(trx, request, {
      caseId: found.id,
      resourceType: 'packet',
      resourceId: packet.id,
      details: {
        kind: to.kind,
        recipient_organisation_id: to.recipient.id,
        purpose: to.purpose,
        included_categories: composed.included,
        withheld: composed.withheld,
        content_hash: composed.contentHash,
        attachments: (composed.content.attachments ?? []).map((attachment) => attachment.id),
        transfer: transfer && { legal_basis: transfer.legal_basis, article: transfer.article },
      },
    })
    return packet
  }

  /** The recipient's answer to an enquiry: a transition of the case's procedure, checked against the packet's lifecycle too. */
  async function answer(
    request: FastifyRequest<{ Params: { packetId: string } }>,
    reply: FastifyReply,
    action: Exclude<PacketAction, 'receive' | 'supersede'>,
    fields: Omit<queries.PacketChange, 'status' | 'step' | 'at'>,
  ) {
    const caller = requireRole(request, ...actingRoles)
    const expected = requiredIfMatch(request)
    return runMutation(
      db,
      request,
      reply,
      async (trx) => {
        const seen = await queries.findPacketForOrganisation(trx, request.params.packetId, caller.organisation.id)
        if (!seen) throw notFound('packet', request.params.packetId)
        if (seen.case_erased_at !== null)
          throw caseErased({ reference: seen.case_reference, erased_at: seen.case_erased_at })
        // The case is locked before the packet, in the same order as sending does, so the two never deadlock.
        const found = await findCase(trx, seen.case_id, { lock: true })
        const packet = await queries.findPacketForOrganisation(trx, seen.id, caller.organisation.id, { lock: true })
        if (!found || !packet) throw notFound('packet', request.params.packetId)
        if (packet.recipient_organisation_id !== caller.organisation.id) {
          throw new ProblemError(403, 'Only the recipient of a packet can answer it.', { code: 'not-recipient' })
        }
        if (packet.revision !== expected) throw staleVersion('packet', packet.revision)
        const status = packet.kind === 'enquiry' ? nextPacketStatus(packet.status, action) : undefined
        if (!status) {
          throw new ProblemError(
            409,
            packet.kind === 'enquiry'
              ? `An enquiry that is ${packet.status} cannot take the action ${action}.`
              : `Only an enquiry is answered; a packet of kind ${packet.kind} is read.`,
            { code: 'invalid-state' },
          )
        }
        const now = clock.now()
        // An acceptance may send the full referral from the sender to the caller: what it needs is read with the facts.
        const { loaded, sending } = await factsForSending(
          trx,
          found,
          now,
          packet.sender_organisation_id,
          caller.organisation.id,
        )
        const open = await openTransition(trx, sops, found, caller, { operation: action }, now, { loaded })
        await queries.changePacket(
          trx,
          packet,
          {
            status,
            step: {
              status,
              at: now.toISOString(),
              principal_id: caller.principal.id,
              organisation_id: caller.organisation.id,
            },
            at: now,
            ...fields,
          },
          found,
        )
        // From its acknowledgement the recipient takes part in the case (the joint assessment), seeing only consented data.
        const { parties } = open.loaded
        const own = (party: CaseParty) => party.organisation_id === caller.organisation.id
        if (action === 'acknowledge') {
          await addParty(trx, found.id, caller.organisation.id, 'receiving')
          if (!parties.some(own)) {
            parties.push({ case_id: found.id, organisation_id: caller.organisation.id, role: 'receiving', since: now })
          }
        }
        if (action === 'decline') {
          await removeReceivingParty(trx, found.id, caller.organisation.id)
          open.loaded.parties = parties.filter((party) => !own(party) || party.role !== 'receiving')
        }
        await recordAudit(trx, request, {
          caseId: found.id,
          resourceType: 'packet',
          resourceId: packet.id,
          details: { status },
        })
        await recordPacketEvent(trx, found.reference, packet, status, fields.decision?.reason_code)
        const changed = await applyTransition(trx, request, caller, found, open, {}, now)
        if (open.transition.effects?.includes('full_referral')) {
          const sender = await findOrganisation(trx, packet.sender_organisation_id)
          if (!sender) throw notFound('organisation', packet.sender_organisation_id)
          await send(
            trx,
            request,
            changed,
            { organisation: sender, principalId: null },
            {
              recipient: caller.organisation,
              purpose: packet.purpose,
              note: null,
              kind: 'referral',
              transfer: choiceOf(packet.transfer),
            },
            open.loaded,
            sending,
            now,
          )
        }
        return { status: 200, resourceId: packet.id }
      },
      (trx, packetId) => renderPacket(trx, sops, caller, packetId, clock.now()),
    )
  }

  return {
    async sendPacket(request, reply) {
      let sent: Rendered<Schemas['Packet']> | undefined
      const {
        recipient_organisation_id: recipientId,
        purpose,
        note,
        transfer_basis: transfer,
        attachment_ids: attachmentIds,
      } = request.body
      return runCaseChange(
        db,
        request,
        reply,
        {},
        async (trx, found, caller) => {
          const now = clock.now()
          const { loaded, sending } = await factsForSending(trx, found, now, caller.organisation.id, recipientId)
          const { recipient } = sending
          if (!recipient?.can_receive || recipient.id === caller.organisation.id) {
            throw new ProblemError(422, `Organisation ${recipientId} is not a partner that can receive referrals.`, {
              code: 'recipient-cannot-receive',
            })
          }
          const open = await openTransition(trx, sops, found, caller, { operation: 'send' }, now, {
            recipientId: recipient.id,
            loaded,
          })
          const kind = open.transition.exchange?.packet ?? 'update'
          const served = purposesAt(open.definition, found)
          if (!served.some((p) => p === purpose)) {
            throw new ProblemError(
              422,
              `At the step ${found.step} a packet serves ${served.join(' or ')}, not ${purpose}.`,
              {
                code: 'purpose-not-served',
                extras: { errors: [{ pointer: '#/purpose', detail: `must be one of ${served.join(', ')}` }] },
              },
            )
          }
          if (kind !== 'enquiry' && recipient.id !== open.facts.counterpartId) {
            throw new ProblemError(
              422,
              `At the step ${found.step} a packet goes to the receiving partner of the case, not to ${recipient.name}.`,
              {
                code: 'not-the-receiving-partner',
                extras: {
                  errors: [{ pointer: '#/recipient_organisation_id', detail: 'is not the receiving partner' }],
                },
              },
            )
          }
          const packet = await send(
            trx,
            request,
            found,
            { organisation: caller.organisation, principalId: caller.principal.id },
            { recipient, purpose, note: note ?? null, kind, transfer, attachmentIds },
            open.loaded,
            sending,
            now,
          )
          const changed = await applyTransition(
            trx,
            request,
            caller,
            found,
            open,
            { counterpartId: recipient.id, counterpart: recipient },
            now,
          )
          // Rendered from what the transaction holds: a transition that sends a packet changes no consent.
          sent = presentedPacket(sops, caller, withCase(packet, changed), open.loaded.consents, now)
          return { status: 201, resourceId: packet.id, location: `/v1/packets/${packet.id}` }
        },
        (trx, packetId, caller) =>
          sent?.body.id === packetId ? Promise.resolve(sent) : renderPacket(trx, sops, caller, packetId, clock.now()),
      )
    },

    async listPackets(request) {
      const caller = requireRole(request, ...readingRoles)
      const { direction, status, limit = 50, cursor } = request.query
      const after = cursor ? decodeCursor(cursor, ['integer'])[0] : undefined
      const rows = await queries.listPackets(db, {
        organisationId: caller.organisation.id,
        direction,
        status,
        after,
        limit,
      })
      const now = clock.now()
      return toPage(
        rows,
        limit,
        ({ packet, consents }) =>
          presentPacketSummary(
            packet,
            discloseCategories(packet, consents, caller.organisation.id, purposesOf(sops, packet), now),
          ),
        ({ packet }) => [String(packet.seq)],
      )
    },

    async getPacket(request, reply) {
      const caller = requireRole(request, ...readingRoles)
      const organisationId = caller.organisation.id
      const read = () => queries.findPacketViewForOrganisation(db, request.params.packetId, organisationId)
      let view = await read()
      if (!view) throw notFound('packet', request.params.packetId)
      const now = clock.now()
      const audit = (rendered: Rendered<Schemas['Packet']>): AuditEntry => ({
        caseId: rendered.body.case_id,
        resourceType: 'packet',
        resourceId: rendered.body.id,
        details: {
          included_categories: rendered.body.included_categories,
          withdrawn_categories: rendered.body.withdrawn_categories,
        },
      })
      // Reading is not acting: only a caseworker or supervisor of the recipient takes delivery.
      const acting = caller.principal.roles.some((role) => actingRoles.includes(role))
      const { packet, consents } = view
      if (
        acting &&
        packet.recipient_organisation_id === organisationId &&
        packet.status === 'sent' &&
        !packet.case_erased_at
      ) {
        // Taking delivery is a change: its event and record are written with it, in one statement.
        const step: PacketStep = {
          status: 'received',
          at: now.toISOString(),
          principal_id: caller.principal.id,
          organisation_id: organisationId,
        }
        const received = {
          ...packet,
          status: 'received' as const,
          history: [...packet.history, step],
          revision: packet.revision + 1,
          updated_at: now,
        }
        const rendered = presentedPacket(sops, caller, received, consents, now)
        const taken = await queries.receivePacket(db, packet, step, now, {
          events: [appendedEvent(...packetEvent(packet.case_reference, received, 'received'))],
          audit: [auditRow(request, audit(rendered))],
        })
        if (taken) {
          reply.header('etag', rendered.etag)
          return rendered.body
        }
        // Another request took delivery meanwhile: the packet is read again as it is now.
        view = await read()
        if (!view) throw notFound('packet', request.params.packetId)
      }
      const rendered = presentedPacket(sops, caller, view.packet, view.consents, now)
      await readAudit.record(request, audit(rendered))
      reply.header('etag', rendered.etag)
      return rendered.body
    },

    acknowledgePacket: (request, reply) =>
      answer(request, reply, 'acknowledge', {
        acknowledgement: { focal_point: request.body.focal_point, alternate_contact: request.body.alternate_contact },
      }),

    acceptPacket: (request, reply) =>
      answer(request, reply, 'accept', {
        decision: { outcome: 'accepted', ...(request.body.note ? { note: request.body.note } : {}) },
      }),

    declinePacket: (request, reply) =>
      answer(request, reply, 'decline', {
        decision: { outcome: 'declined', reason_code: request.body.reason_code, reason_text: request.body.reason_text },
      }),

    requestPacketInformation: (request, reply) =>
      answer(request, reply, 'request_information', { questions: request.body.questions }),
  } satisfies Partial<Handlers>
}

/** The packet as the caller may see it now, through the disclosure policy; read in one statement. */
/** The procedure's facts and everything a packet's send needs besides, in one statement. */
async function factsForSending(trx: Transaction<DB>, found: Case, now: Date, senderId: string, recipientId: string) {
  const day = now.toISOString().slice(0, 10)
  const loaded = await gatherFacts(trx, found, now, queries.sendingRead({ senderId, recipientId, amendable, day }))
  return { loaded, sending: queries.sendingFrom(loaded.also) }
}

async function renderPacket(
  db: Kysely<DB> | Transaction<DB>,
  sops: SopRegistry,
  caller: Caller,
  packetId: string,
  now: Date,
): Promise<Rendered<Schemas['Packet']>> {
  const view = await queries.findPacketViewForOrganisation(db, packetId, caller.organisation.id)
  if (!view) throw notFound('packet', packetId)
  return presentedPacket(sops, caller, view.packet, view.consents, now)
}

/** A packet in hand, with the consents of its case, as the caller may see it, through the disclosure policy. */
function presentedPacket(
  sops: SopRegistry,
  caller: Caller,
  packet: Omit<queries.PacketRow, 'seq'>,
  consents: readonly Consent[],
  now: Date,
): Rendered<Schemas['Packet']> {
  if (packet.case_erased_at !== null)
    throw caseErased({ reference: packet.case_reference, erased_at: packet.case_erased_at })
  const view = disclosePacket(packet, consents, caller.organisation.id, purposesOf(sops, packet), now)
  return { body: presentPacket(packet, view), etag: etag(packet.revision) }
}

/** A packet just written, with what the disclosure policy reads of its case, as the transaction left it. */
function withCase(packet: Omit<Packet, 'seq'>, found: Case): Omit<queries.PacketRow, 'seq'> {
  return {
    ...packet,
    case_reference: found.reference,
    case_sop_id: found.sop_id,
    case_sop_version: found.sop_version,
    case_step: found.step,
    case_previous_step: found.previous_step,
    case_erased_at: found.erased_at,
  }
}

/** The purposes the packet's case serves at its step now. */
function purposesOf(sops: SopRegistry, packet: Omit<queries.PacketSummaryRow, 'seq'>) {
  const found = { id: packet.case_id, sop_id: packet.case_sop_id, sop_version: packet.case_sop_version }
  return purposesAt(definitionOf(sops, found), { step: packet.case_step, previous_step: packet.case_previous_step })
}

/** Tells the packet's sender and recipient, and no one else, that it changed. */
async function recordPacketEvent(trx: Transaction<DB>, ...event: Parameters<typeof packetEvent>) {
  await recordEvent(trx, ...packetEvent(...event))
}

/** The event of a packet's change of status, and the organisations it is for. */
function packetEvent(
  caseReference: string,
  packet: Pick<
    Packet,
    'id' | 'case_id' | 'version' | 'sender_organisation_id' | 'recipient_organisation_id' | 'purpose'
  >,
  status: PacketStatus,
  reasonCode?: Schemas['DeclineReason'],
): [NewEvent, string[]] {
  return [
    {
      type: `packet.${status}`,
      caseId: packet.case_id,
      data: {
        case_reference: caseReference,
        packet_id: packet.id,
        packet_version: packet.version,
        status,
        sender_organisation_id: packet.sender_organisation_id,
        recipient_organisation_id: packet.recipient_organisation_id,
        purpose: packet.purpose,
        ...(reasonCode ? { reason_code: reasonCode } : {}),
      },
    },
    [packet.sender_organisation_id, packet.recipient_organisation_id],
  ]
}

function presentPacketSummary(
  row: Omit<queries.PacketSummaryRow, 'seq'>,
  view: CategoriesView,
): Schemas['PacketSummary'] {
  return {
    id: row.id,
    case_id: row.case_id,
    case_reference: row.case_reference,
    kind: row.kind,
    version: row.version,
    etag: etag(row.revision),
    sender_organisation_id: row.sender_organisation_id,
    recipient_organisation_id: row.recipient_organisation_id,
    purpose: row.purpose,
    note: row.note,
    status: row.status,
    included_categories: view.included,
    withheld: view.withheld,
    content_hash: row.content_hash,
    supersedes: row.supersedes,
    history: row.history,
    acknowledgement: row.acknowledgement,
    decision: row.decision,
    questions: row.questions,
    transfer: row.transfer,
  }
}

function presentPacket(
  row: Omit<queries.PacketRow, 'seq'>,
  view: ReturnType<typeof disclosePacket>,
): Schemas['Packet'] {
  return {
    ...presentPacketSummary(row, view),
    content: view.content,
    withdrawn_categories: view.gone,
    content_notice:
      view.gone.length === 0
        ? null
        : `The consent this packet relied on for ${view.gone.join(', ')} was withdrawn or has expired: ` +
          'the packet no longer carries that content, and any copies of it must be deleted or restricted.',
  }
}
