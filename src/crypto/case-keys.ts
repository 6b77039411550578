import { randomBytes, randomUUID } from 'node:crypto'
import {
  ALGORITHM,
  DecryptionError,
  isSealed,
  type Keyring,
  keyring,
  open,
  openBinary,
  type Sealed,
  seal,
  sealBinary,
} from './keyring.js'

/** The columns that hold personal data at rest, each sealed with additional data naming it and its row. */
export type SealedColumn =
  | 'cases.sections'
  | 'packets.content'
  | 'case_records.data'
  | 'webhook_secrets.secret'
  | 'case_attachments.description'
  | 'case_attachments.content'
  | 'consents.guardian'
  | 'consents.interpreter'
  | 'consents.child_views'
  | 'consents.withdrawal_reason'
  | 'packets.note'
  | 'packets.questions'
  | 'packets.decision'

/** What a sealed value of a case needs: the case's data key, as loaded with the case's row. */
export interface CaseKeyColumns {
  id: string
  data_key_id: string | null
  data_key: Sealed | null
}

/** A case's data key, unwrapped: what seals and opens the values of that case. */
export interface DataKey {
  id: string
  key: Buffer
}

export class CaseKeyShreddedError extends Error {
  constructor() {
    super('the case was erased: its data key no longer exists')
    this.name = 'CaseKeyShreddedError'
  }
}

/**
 * Unwrapped keys stay in memory briefly, so that a burst of reads of one case unwraps its key once;
 * few, and not long, so that memory holds little and an erased key is soon gone from it too.
 */
const CACHE_ENTRIES = 1000
const CACHE_MS = 60_000
/** Each key is kept with the master keys it was unwrapped under: new master keys start afresh. */
const unwrapped = new Map<string, { key: Buffer; until: number; under: Keyring }>()

function wrapping(caseId: string, dataKeyId: string): string {
  return `trm:case-key:${caseId}:${dataKeyId}`
}

function binding(column: SealedColumn, rowId: string): string {
  return `trm:${column}:${rowId}`
}

/** A new random data key for a case, and its form wrapped under the current master key. */
export function newCaseKey(caseId: string): { data_key_id: string; data_key: Sealed; key: DataKey } {
  const id = randomUUID()
  const key = randomBytes(32)
  const master = keyring()
  return {
    data_key_id: id,
    data_key: seal(master.key(master.currentId), master.currentId, key, wrapping(caseId, id)),
    key: { id, key },
  }
}

/** The data key of a case row; a shredded key is an error for the caller to turn into its answer. */
export function caseKey(row: CaseKeyColumns, now = Date.now()): DataKey {
  if (row.data_key === null || row.data_key_id === null) throw new CaseKeyShreddedError()
  const master = keyring()
  const cached = unwrapped.get(row.data_key_id)
  if (cached && cached.until > now && cached.under === master) {
    unwrapped.delete(row.data_key_id)
    unwrapped.set(row.data_key_id, cached)
    return { id: row.data_key_id, key: cached.key }
  }
  const key = open(master.key(row.data_key.kid), row.data_key, wrapping(row.id, row.data_key_id))
  unwrapped.delete(row.data_key_id)
  unwrapped.set(row.data_key_id, { key, until: now + CACHE_MS, under: master })
  while (unwrapped.size > CACHE_ENTRIES) {
    const oldest = unwrapped.keys().next().value
    if (oldest === undefined) break
    unwrapped.delete(oldest)
  }
  return { id: row.data_key_id, key }
}

/** The data key wrapped anew under the current master key, or nothing when it already is. */
export function rewrapCaseKey(row: CaseKeyColumns): Sealed | undefined {
  const master = keyring()
  if (row.data_key === null || row.data_key_id === null || row.data_key.kid === master.currentId) return undefined
  const key = open(master.key(row.data_key.kid), row.data_key, wrapping(row.id, row.data_key_id))
  return seal(master.key(master.currentId), master.currentId, key, wrapping(row.id, row.data_key_id))
}

/** Forgets an unwrapped key at once, as its case is erased. */
export function forgetCaseKey(dataKeyId: string | null): void {
  if (dataKeyId) unwrapped.delete(dataKeyId)
}

export function sealJson(key: DataKey, column: SealedColumn, rowId: string, value: unknown): Sealed {
  return seal(key.key, key.id, Buffer.from(JSON.stringify(value), 'utf8'), binding(column, rowId))
}

/** The value of a sealed column; a value still in the clear (written before encryption) passes as it is. */
export function openJson<T>(key: DataKey, column: SealedColumn, rowId: string, stored: unknown): T {
  if (!isSealed(stored)) return stored as T
  return JSON.parse(open(key.key, stored, binding(column, rowId)).toString('utf8')) as T
}

/** Free text sealed into a text column, as the JSON text of its envelope. */
export function sealText(key: DataKey, column: SealedColumn, rowId: string, text: string): string {
  return JSON.stringify(sealJson(key, column, rowId, text))
}

/** The envelope a text column holds, if it holds one; text written before sealing is not one. */
export function sealedText(stored: string): Sealed | undefined {
  if (!stored.startsWith('{"alg":')) return undefined
  try {
    const parsed = JSON.parse(stored) as unknown
    return isSealed(parsed) ? parsed : undefined
  } catch {
    return undefined
  }
}

/** The free text of a sealed text column; text written before sealing passes as it is. */
export function openText(key: DataKey, column: SealedColumn, rowId: string, stored: string): string {
  const sealed = sealedText(stored)
  return sealed ? openJson<string>(key, column, rowId, sealed) : stored
}

/** Bytes sealed as one binary value (a file): nonce, ciphertext and tag, with the algorithm and key id to store beside. */
export interface SealedBytes {
  alg: typeof ALGORITHM
  kid: string
  bytes: Buffer
}

const NONCE_BYTES = 12

/** A file sealed with a case's data key, kept binary: a file of megabytes is not worth base64 in JSON. */
export function sealBytes(key: DataKey, column: SealedColumn, rowId: string, plaintext: Buffer): SealedBytes {
  const { iv, ct } = sealBinary(key.key, plaintext, binding(column, rowId))
  return { alg: ALGORITHM, kid: key.id, bytes: Buffer.concat([iv, ct]) }
}

export function openBytes(key: DataKey, column: SealedColumn, rowId: string, stored: SealedBytes): Buffer {
  if (stored.alg !== ALGORITHM || stored.kid !== key.id) {
    throw new DecryptionError('a sealed file was not sealed with this data key')
  }
  const iv = stored.bytes.subarray(0, NONCE_BYTES)
  return openBinary(key.key, iv, stored.bytes.subarray(NONCE_BYTES), binding(column, rowId))
}

/** A secret of the service itself (a webhook signing secret), sealed directly under the current master key. */
export function sealSecret(column: SealedColumn, rowId: string, secret: string): string {
  const master = keyring()
  return JSON.stringify(
    seal(master.key(master.currentId), master.currentId, Buffer.from(secret), binding(column, rowId)),
  )
}

/** The secret in a sealed text column; one written before encryption passes as it is. */
export function openSecret(column: SealedColumn, rowId: string, stored: string): string {
  const parsed = stored.startsWith('{') ? (JSON.parse(stored) as unknown) : undefined
  if (!isSealed(parsed)) return stored
  return open(keyring().key(parsed.kid), parsed, binding(column, rowId)).toString('utf8')
}

/** Whether a sealed text column needs sealing anew under the current master key (or sealing at all). */
export function secretNeedsSealing(stored: string): boolean {
  const parsed = stored.startsWith('{') ? (JSON.parse(stored) as unknown) : undefined
  return !isSealed(parsed) || parsed.kid !== keyring().currentId
}
