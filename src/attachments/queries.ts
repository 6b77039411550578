import type { Kysely, Transaction } from 'kysely'
import { type CaseKeyColumns, caseKey, openBytes, openJson, sealBytes, sealJson } from '../crypto/case-keys.js'
import type { AttachmentDescription, CaseAttachmentRow, DB } from '../db/schema.js'
import { json } from '../db/schema.js'
import type { ReceivedPacket } from '../disclosure/policy.js'

type Db = Kysely<DB> | Transaction<DB>

/** An attachment's description, opened with its case's key; its content stays in the database until downloaded. */
export type Attachment = Omit<CaseAttachmentRow, 'description' | 'content'> & AttachmentDescription

const described = [
  'id',
  'seq',
  'case_id',
  'category',
  'media_type',
  'size_bytes',
  'description',
  'content_alg',
  'content_kid',
  'uploaded_at',
  'uploaded_by_principal_id',
  'uploaded_by_organisation_id',
] as const

function open(keyColumns: CaseKeyColumns, row: Omit<CaseAttachmentRow, 'content'>): Attachment {
  const { description, ...rest } = row
  return {
    ...rest,
    ...openJson<AttachmentDescription>(caseKey(keyColumns), 'case_attachments.description', row.id, description),
  }
}

export interface NewAttachment {
  id: string
  category: Attachment['category']
  mediaType: Attachment['media_type']
  fileName: string
  sha256: string
  bytes: Buffer
  principalId: string
  organisationId: string
}

/** Stores an attachment sealed under its case's data key: its description as JSON, its bytes as they are. */
export async function insertAttachment(
  trx: Transaction<DB>,
  keyColumns: CaseKeyColumns,
  attachment: NewAttachment,
): Promise<Attachment> {
  const key = caseKey(keyColumns)
  const description: AttachmentDescription = { file_name: attachment.fileName, sha256: attachment.sha256 }
  const content = sealBytes(key, 'case_attachments.content', attachment.id, attachment.bytes)
  const row = await trx
    .insertInto('case_attachments')
    .values({
      id: attachment.id,
      case_id: keyColumns.id,
      category: attachment.category,
      media_type: attachment.mediaType,
      size_bytes: attachment.bytes.length,
      description: json(sealJson(key, 'case_attachments.description', attachment.id, description)),
      content: content.bytes,
      content_alg: content.alg,
      content_kid: content.kid,
      uploaded_by_principal_id: attachment.principalId,
      uploaded_by_organisation_id: attachment.organisationId,
    })
    .returning(described)
    .executeTakeFirstOrThrow()
  const { description: _, ...rest } = row
  return { ...rest, ...description }
}

/** Every attachment of a case, described, oldest first (or only those named). */
export async function attachmentsOf(
  db: Db,
  keyColumns: CaseKeyColumns,
  ids?: readonly string[],
): Promise<Attachment[]> {
  if (ids?.length === 0) return []
  let query = db.selectFrom('case_attachments').select(described).where('case_id', '=', keyColumns.id)
  if (ids) query = query.where('id', 'in', ids)
  const rows = await query.orderBy('seq').execute()
  return rows.map((row) => open(keyColumns, row))
}

/** The bytes of an attachment, opened; undefined when the case was erased and they are gone. */
export async function attachmentContent(db: Db, keyColumns: CaseKeyColumns, attachment: Attachment) {
  const row = await db
    .selectFrom('case_attachments')
    .select('content')
    .where('id', '=', attachment.id)
    .where('case_id', '=', keyColumns.id)
    .executeTakeFirst()
  if (!row?.content) return undefined
  return openBytes(caseKey(keyColumns), 'case_attachments.content', attachment.id, {
    alg: attachment.content_alg,
    kid: attachment.content_kid,
    // PGlite answers bytea as a Uint8Array, pg as a Buffer.
    bytes: Buffer.from(row.content.buffer, row.content.byteOffset, row.content.byteLength),
  })
}

/** The packets of the case that carried attachments to this organisation: what the policy needs to let it read them. */
export async function packetsWithAttachmentsTo(
  db: Db,
  caseId: string,
  organisationId: string,
): Promise<ReceivedPacket[]> {
  return db
    .selectFrom('packets')
    .select([
      'included_categories',
      'consents_by_category',
      'sender_organisation_id',
      'recipient_organisation_id',
      'attachment_ids',
    ])
    .where('case_id', '=', caseId)
    .where('recipient_organisation_id', '=', organisationId)
    .where((eb) => eb(eb.fn('cardinality', [eb.ref('attachment_ids')]), '>', 0))
    .execute()
}
