import { type Kysely, sql, type Transaction } from 'kysely'
import type { Clock } from '../clock.js'
import type { DB } from '../db/schema.js'
import { recordEvent } from '../events/outbox.js'
import type { Job } from '../jobs/queue.js'
import {
  batchHash,
  type ChainPosition,
  chainStart,
  GENESIS_HASH,
  recordHash,
  type SealedRecordContent,
} from './chain.js'
import type { AuditSigner } from './signing-key.js'

/** Records in one sealed batch at most. */
export const BATCH_RECORDS = 1000
/** Batches sealed in one transaction at most; the job goes on in a new one while records wait. */
const BATCHES_PER_TRANSACTION = 20

export const SEAL_AUDIT = 'seal-audit'

export interface SealOptions {
  /** Signs checkpoints; without one, batches are sealed but no checkpoint is made. */
  signer: AuditSigner | undefined
  /** The least time between two checkpoints. */
  checkpointEveryMs: number
}

export interface SealResult {
  batches: number
  records: number
  /** The sequence number of the checkpoint made, if one was. */
  checkpoint: string | null
}

interface Head {
  seq: string
  hash: string
  to: ChainPosition
}

/**
 * Seals every audit record that can no longer be preceded by another: those of transactions older
 * than every transaction still running. One sealer works at a time (the others find the lock row
 * taken and do nothing); writers of audit records never wait for it.
 */
export async function sealAuditRecords(db: Kysely<DB>, clock: Clock, options: SealOptions): Promise<SealResult> {
  const total: SealResult = { batches: 0, records: 0, checkpoint: null }
  for (;;) {
    const round = await db.transaction().execute(async (trx) => {
      const locked = await sql`select id from audit_seal_lock for update skip locked`.execute(trx)
      if (locked.rows.length === 0) return undefined
      let head = await chainHead(trx)
      const sealed = { batches: 0, records: 0 }
      while (sealed.batches < BATCHES_PER_TRANSACTION) {
        const records = await sealableRecords(trx, head.to, BATCH_RECORDS)
        if (records.length === 0) break
        head = await insertBatch(trx, head, records, clock.now())
        sealed.batches += 1
        sealed.records += records.length
        if (records.length < BATCH_RECORDS) break
      }
      const checkpoint = options.signer ? await checkpointIfDue(trx, head, options.signer, options, clock.now()) : null
      return { ...sealed, checkpoint, more: sealed.batches === BATCHES_PER_TRANSACTION }
    })
    if (!round) return total
    total.batches += round.batches
    total.records += round.records
    total.checkpoint = round.checkpoint ?? total.checkpoint
    if (!round.more) return total
  }
}

/** The sealing job: every minute, on the job queue of `npm start` or of the workers. */
export function sealAuditJob(db: Kysely<DB>, clock: Clock, options: () => Promise<SealOptions>): Job {
  return {
    name: SEAL_AUDIT,
    cron: '* * * * *',
    run: async () => sealAuditRecords(db, clock, await options()),
  }
}

async function chainHead(trx: Transaction<DB>): Promise<Head> {
  const last = (
    await sql<{ seq: string; hash: string; to_txid: string; to_record_id: string }>`
      select seq::text as seq, hash, to_txid::text as to_txid, to_record_id::text as to_record_id
      from audit_batches order by audit_batches.seq desc limit 1
    `.execute(trx)
  ).rows[0]
  return last
    ? { seq: last.seq, hash: last.hash, to: { txid: last.to_txid, recordId: last.to_record_id } }
    : { seq: '0', hash: GENESIS_HASH, to: chainStart }
}

/** The columns of a record as they are hashed; the timestamp to the microsecond, in UTC. */
export const recordContentColumns = sql`
  id::text as id, txid::text as txid,
  to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at,
  action, principal_id::text as principal_id, organisation_id::text as organisation_id, request_id,
  case_id::text as case_id, resource_type, resource_id::text as resource_id, details
`

/**
 * The next records after `after`, in the chain's order, of transactions that have all ended: a
 * transaction still running (or one that starts later) can only write records that come after them.
 */
async function sealableRecords(trx: Transaction<DB>, after: ChainPosition, limit: number) {
  return (
    await sql<SealedRecordContent>`
      select ${recordContentColumns}
      from audit_records
      where (txid, id) > (${after.txid}::xid8, ${after.recordId}::bigint)
        and txid < pg_snapshot_xmin(pg_current_snapshot())
      order by audit_records.txid, audit_records.id
      limit ${limit}
    `.execute(trx)
  ).rows
}

async function insertBatch(trx: Transaction<DB>, head: Head, records: SealedRecordContent[], now: Date): Promise<Head> {
  const last = records[records.length - 1] as SealedRecordContent
  const seq = String(BigInt(head.seq) + 1n)
  const to = { txid: last.txid, recordId: last.id }
  const recordIds = records.map((record) => record.id)
  const recordHashes = records.map(recordHash)
  const hash = batchHash({ seq, previousHash: head.hash, to, sealedAt: now, recordIds, recordHashes })
  await sql`
    insert into audit_batches (seq, previous_hash, hash, to_txid, to_record_id, record_ids, record_hashes, sealed_at)
    values (${seq}::bigint, ${head.hash}, ${hash}, ${to.txid}::xid8, ${to.recordId}::bigint,
            ${recordIds}::bigint[], ${recordHashes}::text[], ${now})
  `.execute(trx)
  return { seq, hash, to }
}

/** What a checkpoint's JWS says: the chain up to this batch hashes to this. */
export interface CheckpointClaims {
  iss: 'trm-api audit'
  checkpoint_seq: number
  batch_seq: number
  batch_hash: string
  to: { txid: string; record_id: string }
  signed_at: string
}

async function checkpointIfDue(
  trx: Transaction<DB>,
  head: Head,
  signer: AuditSigner,
  options: SealOptions,
  now: Date,
): Promise<string | null> {
  if (head.seq === '0') return null
  const last = (
    await sql<{ seq: string; batch_seq: string; signed_at: Date }>`
      select seq::text as seq, batch_seq::text as batch_seq, signed_at
      from audit_checkpoints order by audit_checkpoints.seq desc limit 1
    `.execute(trx)
  ).rows[0]
  if (
    last &&
    (last.batch_seq === head.seq || now.getTime() - new Date(last.signed_at).getTime() < options.checkpointEveryMs)
  ) {
    return null
  }
  const seq = String(BigInt(last?.seq ?? '0') + 1n)
  const claims: CheckpointClaims = {
    iss: 'trm-api audit',
    checkpoint_seq: Number(seq),
    batch_seq: Number(head.seq),
    batch_hash: head.hash,
    to: { txid: head.to.txid, record_id: head.to.recordId },
    signed_at: now.toISOString(),
  }
  const jws = await signer.sign(claims)
  await sql`
    insert into audit_checkpoints (seq, batch_seq, batch_hash, key_id, jws, signed_at)
    values (${seq}::bigint, ${head.seq}::bigint, ${head.hash}, ${signer.keyId}, ${jws}, ${now})
  `.execute(trx)
  // Every partner keeps the checkpoints: the event goes to every organisation in the directory.
  const organisations = await trx.selectFrom('organisations').select('id').execute()
  await recordEvent(
    trx,
    {
      type: 'audit.checkpoint',
      caseId: null,
      data: {
        checkpoint_seq: claims.checkpoint_seq,
        batch_seq: claims.batch_seq,
        batch_hash: claims.batch_hash,
        key_id: signer.keyId,
        jws,
      },
    },
    organisations.map((organisation) => organisation.id),
  )
  return seq
}
