import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Kysely, Transaction } from 'kysely'
import type { components } from '../../openapi/dist/types.js'
import { recordAudit } from '../audit/records.js'
import { caseOfParty, requireLead } from '../cases/access.js'
import { addParty, changeCase, consentsOfCase, findCase, removeReceivingParty } from '../cases/queries.js'
import type { CaseState, DataCategory, DB, Packet, PacketStatus, PacketStep } from '../db/schema.js'
import { recordEvent } from '../events/outbox.js'
import { actingRoles, type Caller, readingRoles, requireRole } from '../http/authentication.js'
import type { Handlers } from '../http/contract.js'
import { etag, type Rendered, requiredIfMatch, runMutation, staleVersion } from '../http/mutation.js'
import { decodeCursor, toPage } from '../http/pagination.js'
import { notFound, ProblemError } from '../http/problem.js'
import { findOrganisation } from '../organisations/queries.js'
import { composePacket, withdrawnCategories } from './compose.js'
import { nextPacketStatus, type PacketAction } from './lifecycle.js'
import * as queries from './queries.js'

type Schemas = components['schemas']

/** What each of the recipient's answers does to the case. */
const caseStateAfter: Partial<Record<PacketAction, CaseState>> = {
  accept: 'referral_accepted',
  decline: 'referral_declined',
  request_information: 'information_requested',
}

export function packetHandlers(db: Kysely<DB>) {
  /** The recipient's answer to a packet: checked against its lifecycle and version, with its effect on the case. */
  async function answer(
    request: FastifyRequest<{ Params: { packetId: string } }>,
    reply: FastifyReply,
    action: PacketAction,
    fields: Omit<queries.PacketChange, 'status' | 'step'>,
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
        // The case is locked before the packet, in the same order as sending does, so the two never deadlock.
        const found = await findCase(trx, seen.case_id, { lock: true })
        const packet = await queries.findPacketForOrganisation(trx, seen.id, caller.organisation.id, { lock: true })
        if (!found || !packet) throw notFound('packet', request.params.packetId)
        if (packet.recipient_organisation_id !== caller.organisation.id) {
          throw new ProblemError(403, 'Only the recipient of a packet can answer it.', { code: 'not-recipient' })
        }
        if (packet.revision !== expected) throw staleVersion('packet', packet.revision)
        const status = nextPacketStatus(packet.status, action)
        if (!status) {
          throw new ProblemError(409, `A packet that is ${packet.status} cannot take the action ${action}.`, {
            code: 'invalid-state',
          })
        }
        await queries.changePacket(trx, packet, { status, step: stepOf(caller, status), ...fields })
        // The partner that accepted the case stays its receiving partner whatever it answers to a later update.
        const receivingPartner = found.receiving_organisation_id === caller.organisation.id
        const state = receivingPartner ? undefined : caseStateAfter[action]
        // From its acknowledgement the recipient takes part in the case (the joint assessment), seeing only consented sections.
        if (action === 'acknowledge' || action === 'accept') {
          await addParty(trx, found.id, caller.organisation.id, 'receiving')
        }
        if (action === 'decline' && !receivingPartner) {
          await removeReceivingParty(trx, found.id, caller.organisation.id)
        }
        if (state) {
          await changeCase(trx, found, {
            state,
            ...(action === 'accept' ? { receiving_organisation_id: caller.organisation.id } : {}),
          })
        }
        await recordAudit(trx, request, {
          caseId: found.id,
          resourceType: 'packet',
          resourceId: packet.id,
          details: { status },
        })
        await recordPacketEvent(trx, found.reference, packet, status, fields.decision?.reason_code)
        return { status: 200, resourceId: packet.id }
      },
      (trx, packetId) => renderPacket(trx, caller, packetId),
    )
  }

  return {
    async sendPacket(request, reply) {
      const caller = requireRole(request, ...actingRoles)
      const { recipient_organisation_id: recipientId, purpose, note } = request.body
      return runMutation(
        db,
        request,
        reply,
        async (trx) => {
          const found = await caseOfParty(trx, caller, request.params.caseId, { lock: true })
          requireLead(found, caller)
          const recipient = await findOrganisation(trx, recipientId)
          if (!recipient?.can_receive || recipient.id === caller.organisation.id) {
            throw new ProblemError(422, `Organisation ${recipientId} is not a partner that can receive referrals.`, {
              code: 'recipient-cannot-receive',
            })
          }
          const now = new Date()
          const composed = composePacket(found, await consentsOfCase(trx, found.id), recipient.id, purpose, now)
          if (composed.included.length === 0) {
            throw new ProblemError(
              422,
              `No active consent covers any data of this case for ${recipient.name} and ${purpose}.`,
              { code: 'nothing-consented', extras: { withheld: composed.withheld } },
            )
          }
          const previous = await queries.latestPacket(trx, found.id, recipient.id)
          const superseded = previous && nextPacketStatus(previous.status, 'supersede') ? previous : undefined
          if (superseded) {
            await queries.changePacket(trx, superseded, {
              status: 'superseded',
              step: stepOf(caller, 'superseded', now),
            })
            await recordPacketEvent(trx, found.reference, superseded, 'superseded')
          }
          const packet = await queries.insertPacket(trx, {
            case_id: found.id,
            version: (previous?.version ?? 0) + 1,
            sender_organisation_id: caller.organisation.id,
            recipient_organisation_id: recipient.id,
            purpose,
            note: note ?? null,
            status: 'sent',
            included_categories: composed.included,
            withheld: composed.withheld,
            content: composed.content,
            content_hash: composed.contentHash,
            consents_by_category: composed.consentsByCategory,
            supersedes: superseded?.id ?? null,
            history: [stepOf(caller, 'sent', now)],
            acknowledgement: null,
            decision: null,
            questions: null,
          })
          await recordPacketEvent(trx, found.reference, packet, 'sent')
          if (found.state !== 'referral_accepted') await changeCase(trx, found, { state: 'referred' })
          await recordAudit(trx, request, {
            caseId: found.id,
            resourceType: 'packet',
            resourceId: packet.id,
            details: {
              recipient_organisation_id: recipient.id,
              purpose,
              included_categories: composed.included,
              withheld: composed.withheld,
              content_hash: composed.contentHash,
            },
          })
          return { status: 201, resourceId: packet.id, location: `/v1/packets/${packet.id}` }
        },
        (trx, packetId) => renderPacket(trx, caller, packetId),
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
      return toPage(rows, limit, presentPacketSummary, (row) => [String(row.seq)])
    },

    async getPacket(request, reply) {
      const caller = requireRole(request, ...readingRoles)
      return db.transaction().execute(async (trx) => {
        const organisationId = caller.organisation.id
        const packet = await queries.findPacketForOrganisation(trx, request.params.packetId, organisationId)
        if (!packet) throw notFound('packet', request.params.packetId)
        if (packet.recipient_organisation_id === organisationId && packet.status === 'sent') {
          const locked = await queries.findPacketForOrganisation(trx, packet.id, organisationId, { lock: true })
          if (locked?.status === 'sent') {
            await queries.changePacket(trx, locked, { status: 'received', step: stepOf(caller, 'received') })
            await recordPacketEvent(trx, locked.case_reference, locked, 'received')
          }
        }
        const rendered = await renderPacket(trx, caller, packet.id)
        await recordAudit(trx, request, {
          caseId: packet.case_id,
          resourceType: 'packet',
          resourceId: packet.id,
          details: { withdrawn_categories: rendered.body.withdrawn_categories },
        })
        reply.header('etag', rendered.etag)
        return rendered.body
      })
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

/** The packet as the caller may see it now: its recipient never gets the categories whose consent is gone. */
async function renderPacket(
  trx: Transaction<DB>,
  caller: Caller,
  packetId: string,
): Promise<Rendered<Schemas['Packet']>> {
  const packet = await queries.findPacketForOrganisation(trx, packetId, caller.organisation.id)
  if (!packet) throw notFound('packet', packetId)
  const withdrawn = withdrawnCategories(
    packet.included_categories,
    packet.consents_by_category,
    await consentsOfCase(trx, packet.case_id),
    new Date(),
  )
  const forRecipient = packet.recipient_organisation_id === caller.organisation.id
  return { body: presentPacket(packet, withdrawn, forRecipient), etag: etag(packet.revision) }
}

/** Tells the packet's sender and recipient, and no one else, that it changed. */
async function recordPacketEvent(
  trx: Transaction<DB>,
  caseReference: string,
  packet: Pick<
    Packet,
    'id' | 'case_id' | 'version' | 'sender_organisation_id' | 'recipient_organisation_id' | 'purpose'
  >,
  status: PacketStatus,
  reasonCode?: Schemas['DeclineReason'],
) {
  await recordEvent(
    trx,
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
  )
}

function stepOf(caller: Caller, status: PacketStep['status'], at = new Date()): PacketStep {
  return { status, at: at.toISOString(), principal_id: caller.principal.id, organisation_id: caller.organisation.id }
}

function presentPacketSummary(row: queries.PacketRow): Schemas['PacketSummary'] {
  return {
    id: row.id,
    case_id: row.case_id,
    case_reference: row.case_reference,
    version: row.version,
    sender_organisation_id: row.sender_organisation_id,
    recipient_organisation_id: row.recipient_organisation_id,
    purpose: row.purpose,
    note: row.note,
    status: row.status,
    included_categories: row.included_categories,
    withheld: row.withheld,
    content_hash: row.content_hash,
    supersedes: row.supersedes,
    history: row.history,
    acknowledgement: row.acknowledgement,
    decision: row.decision,
    questions: row.questions,
  }
}

/** The packet with its content; for the recipient, without the categories whose consent is gone. */
function presentPacket(row: queries.PacketRow, withdrawn: DataCategory[], forRecipient: boolean): Schemas['Packet'] {
  const sections = { ...row.content.sections }
  if (forRecipient) for (const category of withdrawn) delete sections[category]
  return {
    ...presentPacketSummary(row),
    content: { profile: row.content.profile, sections },
    withdrawn_categories: withdrawn,
    content_notice:
      withdrawn.length === 0
        ? null
        : `The consent this packet relied on for ${withdrawn.join(', ')} was withdrawn or has expired: ` +
          'that content is no longer available, and any copies of it must be deleted or restricted.',
  }
}
