import { createHash } from 'node:crypto'
import canonicalize from 'canonicalize'

/** An audit record as it is hashed: every column, the timestamp to the microsecond in UTC. */
export interface SealedRecordContent {
  id: string
  txid: string
  at: string
  action: string
  principal_id: string
  organisation_id: string
  request_id: string
  case_id: string | null
  resource_type: string
  resource_id: string
  details: unknown
}

/** A record's place in the chain: its transaction, then its id. */
export interface ChainPosition {
  txid: string
  recordId: string
}

export const chainStart: ChainPosition = { txid: '0', recordId: '0' }

/** The hash the first batch follows. */
export const GENESIS_HASH = sha256('trm-api audit chain v1')

export interface BatchContent {
  seq: string
  previousHash: string
  to: ChainPosition
  sealedAt: Date
  recordIds: readonly string[]
  recordHashes: readonly string[]
}

/** SHA-256 of the record's canonical JSON (RFC 8785), in hex. */
export function recordHash(record: SealedRecordContent): string {
  return sha256(
    canonicalize({
      id: record.id,
      txid: record.txid,
      at: record.at,
      action: record.action,
      principal_id: record.principal_id,
      organisation_id: record.organisation_id,
      request_id: record.request_id,
      case_id: record.case_id,
      resource_type: record.resource_type,
      resource_id: record.resource_id,
      details: record.details,
    }) as string,
  )
}

/** H(previous batch hash ‖ its records' ids and hashes, in order ‖ its metadata), over canonical JSON. */
export function batchHash(batch: BatchContent): string {
  return sha256(
    canonicalize({
      version: 1,
      previous_hash: batch.previousHash,
      records: batch.recordIds.map((id, index) => [id, batch.recordHashes[index]]),
      seq: batch.seq,
      to: { txid: batch.to.txid, record_id: batch.to.recordId },
      sealed_at: batch.sealedAt.toISOString(),
    }) as string,
  )
}

/** Whether `a` comes before `b` in the chain. */
export function isBefore(a: ChainPosition, b: ChainPosition): boolean {
  const txidA = BigInt(a.txid)
  const txidB = BigInt(b.txid)
  return txidA < txidB || (txidA === txidB && BigInt(a.recordId) < BigInt(b.recordId))
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}
