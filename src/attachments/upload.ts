import { createHash } from 'node:crypto'
import type { Multipart } from '@fastify/multipart'
import type { FastifyRequest } from 'fastify'
import type { components } from '../../openapi/dist/types.js'
import type { AttachmentMediaType, DataCategory } from '../db/schema.js'
import { createValidators } from '../http/contract.js'
import { ProblemError, validationProblem } from '../http/problem.js'

type Schemas = components['schemas']

/** The types an attachment may be, by its own bytes: the contract's `AttachmentMediaType`. */
export const acceptedMediaTypes: readonly AttachmentMediaType[] = ['application/pdf', 'image/jpeg', 'image/png']

/** Declared types that claim nothing: a client that does not know the type sends one of these. */
const UNDECLARED = new Set(['', 'application/octet-stream'])
/** Names clients use for the accepted types that are not their registered names. */
const ALIASES: Record<string, AttachmentMediaType> = { 'image/jpg': 'image/jpeg', 'image/pjpeg': 'image/jpeg' }

const FILE_NAME_MAX = 255
/** Control characters and the characters a file system or a `Content-Disposition` header would trip over. */
const UNSAFE_IN_NAME = /[\p{Cc}\p{Cf}"\\/:*?<>|]/gu

/** An upload read from its `multipart/form-data` body, checked, its bytes in hand. */
export interface Upload {
  category: DataCategory
  fileName: string
  mediaType: AttachmentMediaType
  bytes: Buffer
  sha256: string
}

let validateFields: ReturnType<ReturnType<typeof createValidators>['body']['compile']> | undefined

/**
 * Reads the one file and the fields of an upload and checks them against the contract's
 * `NewAttachment`: the file no larger than `maxBytes` (413), its type read from its bytes and one of
 * the accepted (415), agreeing with the type its part declares (422), its category of the consent
 * vocabulary (400, as any other body that does not match the contract).
 */
export async function readUpload(request: FastifyRequest, maxBytes: number): Promise<Upload> {
  if (!request.isMultipart()) {
    throw new ProblemError(415, 'Send the attachment as multipart/form-data, with the parts file and category.', {
      code: 'attachment-type-refused',
      extras: { accepted: acceptedMediaTypes },
    })
  }
  const fields: Record<string, unknown> = {}
  let file: { name: string; declared: string; bytes: Buffer } | undefined
  try {
    const parts: AsyncIterableIterator<Multipart> = request.parts({
      limits: { fileSize: maxBytes, files: 1, fields: 4, fieldSize: 1024, parts: 6 },
    })
    for await (const part of parts) {
      if (part.type === 'file') {
        const bytes = await part.toBuffer()
        if (part.fieldname === 'file') file = { name: part.filename, declared: part.mimetype, bytes }
        else fields[part.fieldname] = '(a file)'
      } else {
        fields[part.fieldname] = part.value
      }
    }
  } catch (error) {
    throw multipartProblem(error, maxBytes)
  }
  validateFields ??= createValidators().body.compile({ $ref: 'openapi.json#/$defs/NewAttachment' })
  // The file part stands in for the binary string the contract describes.
  if (!validateFields({ ...fields, ...(file ? { file: file.name } : {}) })) {
    throw validationProblem({ validation: validateFields.errors ?? [], validationContext: 'body' })
  }
  if (!file || file.bytes.length === 0) {
    throw validationProblem({
      validation: [{ keyword: 'minLength', instancePath: '/file', schemaPath: '#', params: {}, message: 'is empty' }],
      validationContext: 'body',
    })
  }
  // Loaded on the first upload: the file signatures are memory no other request needs.
  const { fileTypeFromBuffer } = await import('file-type')
  const detected = (await fileTypeFromBuffer(file.bytes))?.mime
  const mediaType = acceptedMediaTypes.find((type) => type === detected)
  if (!mediaType) {
    throw new ProblemError(415, 'The file is not a PDF, JPEG or PNG by its content.', {
      code: 'attachment-type-refused',
      extras: { accepted: acceptedMediaTypes },
    })
  }
  const declared = declaredType(file.declared)
  if (!UNDECLARED.has(declared) && declared !== mediaType) {
    throw new ProblemError(422, `The file is declared as ${declared} but its content is ${mediaType}.`, {
      code: 'attachment-type-mismatch',
      extras: { declared, detected: mediaType },
    })
  }
  return {
    category: fields.category as Schemas['DataCategory'],
    fileName: safeFileName(file.name, mediaType),
    mediaType,
    bytes: file.bytes,
    sha256: createHash('sha256').update(file.bytes).digest('hex'),
  }
}

function declaredType(header: string | undefined): string {
  const type = (header ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
  return ALIASES[type] ?? type
}

/** The name without any path a client sent with it, without characters that could break a header, and not too long. */
function safeFileName(name: string | undefined, mediaType: AttachmentMediaType): string {
  const base = (name ?? '').split(/[\\/]/).pop() ?? ''
  const cleaned = base.replace(UNSAFE_IN_NAME, '_').trim()
  const fallback = `attachment.${mediaType.split('/')[1]}`
  return [...(cleaned || fallback)].slice(0, FILE_NAME_MAX).join('')
}

/** A problem for what the multipart reader refused: too large, too many parts, or a body that is not multipart at all. */
function multipartProblem(error: unknown, maxBytes: number): ProblemError {
  const code = (error as { code?: string }).code
  if (code === 'FST_REQ_FILE_TOO_LARGE') {
    return new ProblemError(413, `The file is larger than ${maxBytes} bytes.`, {
      code: 'attachment-too-large',
      extras: { max_bytes: maxBytes },
    })
  }
  if (code === 'FST_FILES_LIMIT' || code === 'FST_FIELDS_LIMIT' || code === 'FST_PARTS_LIMIT') {
    return validationProblem({
      validation: [
        {
          keyword: 'maxProperties',
          instancePath: '',
          schemaPath: '#',
          params: {},
          message: 'holds more parts than one file and its category',
        },
      ],
      validationContext: 'body',
    })
  }
  if (error instanceof ProblemError) return error
  return new ProblemError(400, 'The multipart/form-data body could not be read.', { code: 'bad-request' })
}
