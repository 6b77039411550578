import type { Kysely } from 'kysely'
import Negotiator from 'negotiator'
import type { components } from '../../openapi/dist/types.js'
import { presentAttachment } from '../attachments/handlers.js'
import { attachmentsOf, packetsWithAttachmentsTo } from '../attachments/queries.js'
import { recordAudit } from '../audit/records.js'
import { caseOfParty } from '../cases/access.js'
import { disclosureFor } from '../cases/disclosure.js'
import { recordsOf } from '../cases/procedure.js'
import { definitionOf, purposesAt } from '../cases/procedure-definition.js'
import { presentRecord } from '../cases/procedure-handlers.js'
import { consentsOfCase, partiesOf } from '../cases/queries.js'
import type { Clock } from '../clock.js'
import { presentConsent } from '../consents/handlers.js'
import type { DB } from '../db/schema.js'
import { disclosePacket } from '../disclosure/policy.js'
import { requireRole } from '../http/authentication.js'
import { contract, type Handlers } from '../http/contract.js'
import { ProblemError } from '../http/problem.js'
import { openPacket } from '../packets/queries.js'
import type { SopRegistry } from '../sops/registry.js'
import { renderSubjectAccessHtml } from './html.js'

type Schemas = components['schemas']
type SubjectAccessExport = Schemas['SubjectAccessExport']

export interface SubjectAccessDependencies {
  db: Kysely<DB>
  sops: SopRegistry
  clock: Clock
}

const MEDIA_TYPES = ['application/json', 'text/html']

/** The operations that only read, by operationId: their audit records are the reads of the case. */
const readOperations: ReadonlySet<string> = new Set(
  Object.values(contract.paths).flatMap((item) => (item.get ? [item.get.operationId] : [])),
)

export function subjectAccessHandlers({ db, sops, clock }: SubjectAccessDependencies) {
  return {
    async exportSubjectAccess(request, reply) {
      const caller = requireRole(request, 'dpo')
      const mediaType = new Negotiator(request).mediaType(MEDIA_TYPES)
      if (!mediaType) {
        throw new ProblemError(
          406,
          `This operation answers ${MEDIA_TYPES.join(' or ')}, not ${request.headers.accept}.`,
          {
            code: 'not-acceptable',
          },
        )
      }
      // One snapshot for all the export reads: the case as it was at one moment (on PGlite every
      // transaction runs alone, which gives the same).
      const snapshot = db.transaction().setIsolationLevel('repeatable read')
      const exported = await snapshot.execute(async (trx) => {
        const found = await caseOfParty(trx, caller, request.params.caseId)
        const now = clock.now()
        const parties = (await partiesOf(trx, [found.id])).get(found.id) ?? []
        const consents = await consentsOfCase(trx, found.id)
        const organisationId = caller.organisation.id
        const disclosure = disclosureFor(sops, found, parties, consents, organisationId, now)
        const purposes = purposesAt(definitionOf(sops, found), found)
        const records = disclosure.records(await recordsOf(trx, found)).map(presentRecord)
        let packetQuery = trx.selectFrom('packets').selectAll().where('case_id', '=', found.id)
        if (!disclosure.holder) {
          packetQuery = packetQuery.where((eb) =>
            eb.or([
              eb('sender_organisation_id', '=', organisationId),
              eb('recipient_organisation_id', '=', organisationId),
            ]),
          )
        }
        const packets = (await packetQuery.orderBy('seq').execute()).map((packet) => openPacket(found, packet))
        const attachments = disclosure.attachments(
          await attachmentsOf(trx, found),
          disclosure.holder ? [] : await packetsWithAttachmentsTo(trx, found.id, organisationId),
        )
        let auditQuery = trx
          .selectFrom('audit_records')
          .innerJoin('principals', 'principals.id', 'audit_records.principal_id')
          .innerJoin('organisations', 'organisations.id', 'audit_records.organisation_id')
          .selectAll('audit_records')
          .select(['principals.name as principal_name', 'organisations.name as organisation_name'])
          .where('audit_records.case_id', '=', found.id)
        if (!disclosure.allAudit) auditQuery = auditQuery.where('audit_records.organisation_id', '=', organisationId)
        const audit = await auditQuery.orderBy('audit_records.id').execute()
        const named = [
          ...new Set([
            organisationId,
            ...parties.map((party) => party.organisation_id),
            ...packets.flatMap((packet) => [packet.sender_organisation_id, packet.recipient_organisation_id]),
            ...consents.flatMap((consent) => consent.provisions.flatMap((provision) => provision.recipients)),
            ...records.map((record) => record.recorded_by_organisation_id),
          ]),
        ]
        const organisations = new Map(
          (
            await trx.selectFrom('organisations').select(['id', 'name', 'country']).where('id', 'in', named).execute()
          ).map((row) => [row.id, row]),
        )
        await recordAudit(trx, request, {
          caseId: found.id,
          resourceType: 'case',
          resourceId: found.id,
          details: {
            format: mediaType,
            sections: Object.keys(disclosure.sections(found.sections)),
            packets: packets.length,
            audit_records: audit.length,
          },
        })

        const presentedPackets = packets.map((packet): Schemas['SubjectAccessPacket'] => {
          const view = disclosePacket(packet, consents, organisationId, purposes, now)
          const recipient = organisations.get(packet.recipient_organisation_id)
          return {
            id: packet.id,
            kind: packet.kind,
            version: packet.version,
            purpose: packet.purpose,
            status: packet.status,
            sender_organisation_id: packet.sender_organisation_id,
            sender_name: organisations.get(packet.sender_organisation_id)?.name ?? packet.sender_organisation_id,
            recipient_organisation_id: packet.recipient_organisation_id,
            recipient_name: recipient?.name ?? packet.recipient_organisation_id,
            recipient_country: recipient?.country ?? 'ZZ',
            sent_at: packet.sent_at.toISOString(),
            received_at: packet.history.find((step) => step.status === 'received')?.at ?? null,
            history: packet.history,
            included_categories: view.included,
            withheld: view.withheld,
            content_hash: packet.content_hash,
            content: view.content,
            transfer: packet.transfer,
          }
        })
        const accesses = audit.map((row): Schemas['SubjectAccessAccess'] => ({
          audit_id: String(row.id),
          at: row.at.toISOString(),
          action: row.action,
          organisation_id: row.organisation_id,
          organisation_name: row.organisation_name,
          principal_id: row.principal_id,
          principal_name: row.principal_name,
          resource_type: row.resource_type,
          resource_id: row.resource_id,
          details: row.details,
        }))
        const body: SubjectAccessExport = {
          generated_at: now.toISOString(),
          organisation_id: organisationId,
          complete: disclosure.holder || disclosure.allAudit,
          case: {
            id: found.id,
            reference: found.reference,
            sop_id: found.sop_id,
            sop_version: found.sop_version,
            step: found.step,
            created_at: found.created_at.toISOString(),
            profile: disclosure.profile(found.profile),
            sections: disclosure.sections(found.sections),
            parties: parties.map((party) => ({
              organisation_id: party.organisation_id,
              role: party.role,
              since: party.since.toISOString(),
            })),
          },
          consents: consents.map((consent) => presentConsent(consent, found, caller, now)),
          records,
          attachments: attachments.map(presentAttachment),
          packets: presentedPackets,
          recipients: recipientsOf(presentedPackets),
          reads: accesses.filter((access) => readOperations.has(access.action)),
          changes: accesses.filter((access) => !readOperations.has(access.action)),
        }
        return { body, names: new Map([...organisations].map(([id, row]) => [id, row.name])) }
      })
      if (mediaType === 'text/html') {
        reply
          .type('text/html; charset=utf-8')
          .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
        return reply.send(renderSubjectAccessHtml(exported.body, exported.names)) as never
      }
      return exported.body
    },
  } satisfies Partial<Handlers>
}

/** Each organisation the data went to, with how many packets and when. */
function recipientsOf(packets: Schemas['SubjectAccessPacket'][]): Schemas['SubjectAccessRecipient'][] {
  const byRecipient = new Map<string, Schemas['SubjectAccessRecipient']>()
  for (const packet of packets) {
    const seen = byRecipient.get(packet.recipient_organisation_id)
    if (seen) {
      seen.packets += 1
      seen.last_sent_at = packet.sent_at
    } else {
      byRecipient.set(packet.recipient_organisation_id, {
        organisation_id: packet.recipient_organisation_id,
        name: packet.recipient_name,
        country: packet.recipient_country,
        packets: 1,
        first_sent_at: packet.sent_at,
        last_sent_at: packet.sent_at,
      })
    }
  }
  return [...byRecipient.values()]
}
