import { randomUUID } from 'node:crypto'
import type { Kysely, Transaction } from 'kysely'
import type { components } from '../../openapi/dist/types.js'
import type { ReadAudit } from '../audit/read-audit.js'
import { recordAudit } from '../audit/records.js'
import { caseOfParty } from '../cases/access.js'
import { runCaseChange } from '../cases/case-change.js'
import { caseDisclosure } from '../cases/disclosure.js'
import { counterpartOf, sideOf } from '../cases/procedure.js'
import { partyIds } from '../cases/queries.js'
import type { Clock } from '../clock.js'
import type { Case, DB } from '../db/schema.js'
import { recordEvent } from '../events/outbox.js'
import { actingRoles, type Caller, readingRoles, requireRole } from '../http/authentication.js'
import type { Handlers } from '../http/contract.js'
import { notFound, ProblemError } from '../http/problem.js'
import type { SopRegistry } from '../sops/registry.js'
import {
  type Attachment,
  attachmentContent,
  attachmentsOf,
  insertAttachment,
  packetsWithAttachmentsTo,
} from './queries.js'
import { readUpload } from './upload.js'

type Schemas = components['schemas']

export interface AttachmentDependencies {
  db: Kysely<DB>
  sops: SopRegistry
  clock: Clock
  /** The largest file accepted, in bytes (`ATTACHMENT_MAX_BYTES`). */
  maxBytes: number
  readAudit: ReadAudit
}

export function attachmentHandlers({ db, sops, clock, maxBytes, readAudit }: AttachmentDependencies) {
  /** The case's attachments the caller may read now, through the disclosure policy. */
  async function readable(db: Kysely<DB> | Transaction<DB>, found: Case, caller: Caller): Promise<Attachment[]> {
    const disclosure = await caseDisclosure(db, sops, found, caller.organisation.id, clock.now())
    const received = disclosure.holder ? [] : await packetsWithAttachmentsTo(db, found.id, caller.organisation.id)
    return disclosure.attachments(await attachmentsOf(db, found), received)
  }

  return {
    async uploadCaseAttachment(request, reply) {
      requireRole(request, ...actingRoles)
      const upload = await readUpload(request, maxBytes)
      // A retry with the same Idempotency-Key is the same upload when it names the same category, name and bytes.
      ;(request as { body: unknown }).body = {
        category: upload.category,
        file: { name: upload.fileName, media_type: upload.mediaType, sha256: upload.sha256 },
      }
      return runCaseChange(
        db,
        request,
        reply,
        {},
        async (trx, found, caller) => {
          if (!sideOf(found, await counterpartOf(trx, found), caller.organisation.id)) {
            throw new ProblemError(403, 'Only the sending or the receiving partner adds documents to a case.', {
              code: 'not-a-side',
            })
          }
          const attachment = await insertAttachment(trx, found, {
            id: randomUUID(),
            category: upload.category,
            mediaType: upload.mediaType,
            fileName: upload.fileName,
            sha256: upload.sha256,
            bytes: upload.bytes,
            principalId: caller.principal.id,
            organisationId: caller.organisation.id,
          })
          await recordAudit(trx, request, {
            caseId: found.id,
            resourceType: 'attachment',
            resourceId: attachment.id,
            details: { category: attachment.category, media_type: attachment.media_type, size: attachment.size_bytes },
          })
          await recordEvent(
            trx,
            {
              type: 'case.attachment_added',
              caseId: found.id,
              data: {
                case_reference: found.reference,
                attachment_id: attachment.id,
                categories: [attachment.category],
              },
            },
            await partyIds(trx, found.id),
          )
          return {
            status: 201,
            resourceId: attachment.id,
            location: `/v1/cases/${found.id}/attachments/${attachment.id}`,
          }
        },
        async (trx, attachmentId, caller) => {
          const found = await caseOfParty(trx, caller, request.params.caseId)
          const [attachment] = await attachmentsOf(trx, found, [attachmentId])
          if (!attachment) throw notFound('attachment', attachmentId)
          return { body: presentAttachment(attachment) }
        },
      )
    },

    async listCaseAttachments(request) {
      const caller = requireRole(request, ...readingRoles)
      const found = await caseOfParty(db, caller, request.params.caseId)
      const attachments = await readable(db, found, caller)
      await readAudit.record(request, {
        caseId: found.id,
        resourceType: 'case',
        resourceId: found.id,
        details: { attachments: attachments.map((attachment) => attachment.id) },
      })
      return { items: attachments.map(presentAttachment) }
    },

    async getCaseAttachment(request, reply) {
      const caller = requireRole(request, ...readingRoles)
      const { caseId, attachmentId } = request.params
      const found = await caseOfParty(db, caller, caseId)
      const attachment = (await readable(db, found, caller)).find((candidate) => candidate.id === attachmentId)
      if (!attachment) throw notFound('attachment', attachmentId)
      const bytes = await attachmentContent(db, found, attachment)
      if (!bytes) throw notFound('attachment', attachmentId)
      await readAudit.record(request, {
        caseId: found.id,
        resourceType: 'attachment',
        resourceId: attachment.id,
        details: { category: attachment.category, media_type: attachment.media_type, size: attachment.size_bytes },
      })
      reply
        .type(attachment.media_type)
        .header('content-disposition', contentDisposition(attachment.file_name))
        .header('repr-digest', `sha-256=:${Buffer.from(attachment.sha256, 'hex').toString('base64')}:`)
        .header('x-content-type-options', 'nosniff')
        .header('cache-control', 'private, no-store')
      return bytes
    },
  } satisfies Partial<Handlers>
}

export function presentAttachment(row: Attachment): Schemas['Attachment'] {
  return {
    id: row.id,
    case_id: row.case_id,
    file_name: row.file_name,
    media_type: row.media_type,
    size: row.size_bytes,
    category: row.category,
    sha256: row.sha256,
    uploaded_at: row.uploaded_at.toISOString(),
    uploaded_by_principal_id: row.uploaded_by_principal_id,
    uploaded_by_organisation_id: row.uploaded_by_organisation_id,
  }
}

/** The attachment's description as a packet carries it: what its content hash covers. */
export function packetAttachment(row: Attachment): Schemas['PacketAttachment'] {
  return {
    id: row.id,
    file_name: row.file_name,
    media_type: row.media_type,
    size: row.size_bytes,
    category: row.category,
    sha256: row.sha256,
  }
}

/** `attachment` with the name as ASCII for old clients and in full (RFC 5987) for the rest. */
function contentDisposition(fileName: string): string {
  const ascii = fileName.replace(/[^\x20-\x7e]/g, '_').replaceAll('"', '_')
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(fileName)}`
}
