import { compactVerify, importJWK } from 'jose'
import { type Kysely, sql } from 'kysely'
import type { components } from '../../openapi/dist/types.js'
import type { DB } from '../db/schema.js'
import {
  batchHash,
  type ChainPosition,
  chainStart,
  GENESIS_HASH,
  isBefore,
  recordHash,
  type SealedRecordContent,
} from './chain.js'
import { type CheckpointClaims, recordContentColumns } from './seal.js'
import { CHECKPOINT_ALGORITHM, type PublishedKey } from './signing-key.js'

export type AuditVerification = components['schemas']['AuditVerification']
type Failure = NonNullable<AuditVerification['first_failure']>

const BATCHES_PER_PAGE = 50

interface StoredBatch {
  seq: string
  previous_hash: string
  hash: string
  to_txid: string
  to_record_id: string
  record_ids: string[]
  record_hashes: string[]
  sealed_at: Date
}

/**
 * Recomputes the chain from the records themselves and names the first place where it breaks: a
 * record changed, deleted or inserted into a sealed range, a batch altered or missing, a checkpoint
 * whose signature or hash does not hold. `publicKeys` are the keys checkpoints may be signed with.
 */
export async function verifyAuditTrail(
  db: Kysely<DB>,
  publicKeys: readonly PublishedKey[],
  now: Date,
): Promise<AuditVerification> {
  let previousHash = GENESIS_HASH
  let previousTo = chainStart
  let expectedSeq = 1n
  let failure: Failure | null = null
  pages: for (;;) {
    const batches = (
      await sql<StoredBatch>`
        select seq::text as seq, previous_hash, hash, to_txid::text as to_txid, to_record_id::text as to_record_id,
               record_ids::text[] as record_ids, record_hashes, sealed_at
        from audit_batches where audit_batches.seq >= ${String(expectedSeq)}::bigint order by audit_batches.seq limit ${BATCHES_PER_PAGE}
      `.execute(db)
    ).rows
    for (const batch of batches) {
      if (BigInt(batch.seq) !== expectedSeq) {
        failure = {
          problem: 'batch_missing',
          batch_seq: Number(expectedSeq),
          record_id: null,
          detail: `Batch ${expectedSeq} is missing: the next sealed batch is ${batch.seq}.`,
        }
        break pages
      }
      const to = { txid: batch.to_txid, recordId: batch.to_record_id }
      failure = await verifyBatchRecords(db, batch, previousTo, to)
      if (failure) break pages
      const recomputed = batchHash({
        seq: batch.seq,
        previousHash,
        to,
        sealedAt: new Date(batch.sealed_at),
        recordIds: batch.record_ids,
        recordHashes: batch.record_hashes,
      })
      if (recomputed !== batch.hash || batch.previous_hash !== previousHash) {
        failure = {
          problem: 'batch_altered',
          batch_seq: Number(batch.seq),
          record_id: null,
          detail: `The seal of batch ${batch.seq} does not match its records and the batch before it.`,
        }
        break pages
      }
      previousHash = batch.hash
      previousTo = to
      expectedSeq += 1n
    }
    if (batches.length < BATCHES_PER_PAGE) break
  }
  const checkpoints = await verifyCheckpoints(db, publicKeys, failure ? undefined : expectedSeq - 1n)
  failure ??= checkpoints.failure
  const totals = (
    await sql<{ batches: string; records: string; unsealed: string }>`
      with head as (select to_txid, to_record_id from audit_batches order by audit_batches.seq desc limit 1)
      select (select count(*) from audit_batches)::text as batches,
             (select coalesce(sum(cardinality(record_ids)), 0) from audit_batches)::text as records,
             (select count(*) from audit_records
              where (txid, id) > (coalesce((select to_txid from head), '0'::xid8),
                                  coalesce((select to_record_id from head), 0)))::text as unsealed
    `.execute(db)
  ).rows[0]
  return {
    valid: failure === null,
    verified_at: now.toISOString(),
    sealed_batches: Number(totals?.batches ?? 0),
    sealed_records: Number(totals?.records ?? 0),
    unsealed_records: Number(totals?.unsealed ?? 0),
    checkpoints_verified: checkpoints.verified,
    checkpoints_unverifiable: checkpoints.unverifiable,
    last_checkpoint: checkpoints.last,
    first_failure: failure,
  }
}

/**
 * The records of one batch against its list: walking both in the chain's order, the first record
 * that is in the batch's range but not in its list was inserted; the first listed one that is gone
 * was deleted; one that is elsewhere or hashes differently was changed.
 */
async function verifyBatchRecords(
  db: Kysely<DB>,
  batch: StoredBatch,
  from: ChainPosition,
  to: ChainPosition,
): Promise<Failure | null> {
  const rows = (
    await sql<SealedRecordContent>`
      select ${recordContentColumns} from audit_records
      where (txid, id) > (${from.txid}::xid8, ${from.recordId}::bigint)
        and (txid, id) <= (${to.txid}::xid8, ${to.recordId}::bigint)
      union
      select ${recordContentColumns} from audit_records where id = any(${batch.record_ids}::bigint[])
    `.execute(db)
  ).rows
  const byId = new Map(rows.map((row) => [row.id, row]))
  const inRange = rows
    .filter((row) => isBefore(from, positionOf(row)) && !isBefore(to, positionOf(row)))
    .sort((a, b) => (isBefore(positionOf(a), positionOf(b)) ? -1 : 1))
  const listed = new Set(batch.record_ids)
  const seq = Number(batch.seq)
  const found = (problem: Failure['problem'], recordId: string, detail: string): Failure => ({
    problem,
    batch_seq: seq,
    record_id: recordId,
    detail,
  })
  let next = 0
  for (const [index, id] of batch.record_ids.entries()) {
    const unlisted = inRange[next]
    if (unlisted && !listed.has(unlisted.id)) {
      return found('record_inserted', unlisted.id, `Audit record ${unlisted.id} was inserted into sealed batch ${seq}.`)
    }
    const row = byId.get(id)
    if (!row) return found('record_deleted', id, `Audit record ${id} of sealed batch ${seq} was deleted.`)
    if (unlisted?.id !== id || recordHash(row) !== batch.record_hashes[index]) {
      return found('record_changed', id, `Audit record ${id} of sealed batch ${seq} was changed.`)
    }
    next += 1
  }
  const extra = inRange[next]
  return extra
    ? found('record_inserted', extra.id, `Audit record ${extra.id} was inserted into sealed batch ${seq}.`)
    : null
}

function positionOf(row: SealedRecordContent): ChainPosition {
  return { txid: row.txid, recordId: row.id }
}

interface CheckpointCheck {
  verified: number
  unverifiable: number
  last: AuditVerification['last_checkpoint']
  failure: Failure | null
}

/**
 * Each checkpoint's signature, and that it names the hash its batch has: a key the service does not
 * hold (a rotated one) leaves a checkpoint unverifiable here, which partners check with the key
 * they kept. `chainEnd` is the last batch of a chain that verified, to compare against.
 */
async function verifyCheckpoints(
  db: Kysely<DB>,
  publicKeys: readonly PublishedKey[],
  chainEnd: bigint | undefined,
): Promise<CheckpointCheck> {
  const rows = (
    await sql<{
      seq: string
      batch_seq: string
      batch_hash: string
      key_id: string
      jws: string
      signed_at: Date
      hash: string | null
    }>`
      select checkpoint.seq::text as seq, checkpoint.batch_seq::text as batch_seq, checkpoint.batch_hash,
             checkpoint.key_id, checkpoint.jws, checkpoint.signed_at, batch.hash
      from audit_checkpoints as checkpoint
      left join audit_batches as batch on batch.seq = checkpoint.batch_seq
      order by checkpoint.seq
    `.execute(db)
  ).rows
  const keys = new Map(publicKeys.map((jwk) => [jwk.kid, jwk]))
  const check: CheckpointCheck = { verified: 0, unverifiable: 0, last: null, failure: null }
  for (const [index, row] of rows.entries()) {
    const failed = (detail: string): CheckpointCheck => ({
      ...check,
      failure: { problem: 'checkpoint_invalid', batch_seq: Number(row.batch_seq), record_id: null, detail },
    })
    if (Number(row.seq) !== index + 1) return failed(`Checkpoint ${index + 1} is missing.`)
    const jwk = keys.get(row.key_id)
    if (!jwk) {
      check.unverifiable += 1
      continue
    }
    let claims: CheckpointClaims
    try {
      const verified = await compactVerify(row.jws, await importJWK(jwk, CHECKPOINT_ALGORITHM), {
        algorithms: [CHECKPOINT_ALGORITHM],
      })
      claims = JSON.parse(new TextDecoder().decode(verified.payload)) as CheckpointClaims
    } catch {
      return failed(`The signature of checkpoint ${row.seq} does not verify with key ${row.key_id}.`)
    }
    if (
      claims.checkpoint_seq !== Number(row.seq) ||
      claims.batch_seq !== Number(row.batch_seq) ||
      claims.batch_hash !== row.batch_hash ||
      row.hash !== claims.batch_hash
    ) {
      return failed(`Checkpoint ${row.seq} signed a hash that batch ${row.batch_seq} no longer has.`)
    }
    if (chainEnd !== undefined && BigInt(row.batch_seq) > chainEnd) {
      return failed(`Checkpoint ${row.seq} names batch ${row.batch_seq}, beyond the chain's end.`)
    }
    check.verified += 1
    check.last = {
      seq: Number(row.seq),
      batch_seq: Number(row.batch_seq),
      batch_hash: row.batch_hash,
      key_id: row.key_id,
      signed_at: new Date(row.signed_at).toISOString(),
    }
  }
  return check
}
