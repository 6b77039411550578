import type { Kysely } from 'kysely'
import { newCaseKey, rewrapCaseKey, sealJson } from '../crypto/case-keys.js'
import { isSealed } from '../crypto/keyring.js'
import { type DB, json } from '../db/schema.js'

const BATCH = 100

/**
 * Seals the cases still in the clear (written before encryption at rest): each gets a data key,
 * and its sections, record data and packet content are sealed with it, one case per transaction.
 * Runs at start, before the service answers; safe to run again and to stop half-way.
 */
export async function sealPlaintextCases(db: Kysely<DB>): Promise<number> {
  let sealed = 0
  for (;;) {
    const batch = await db
      .selectFrom('cases')
      .select('id')
      .where('data_key', 'is', null)
      .where('erased_at', 'is', null)
      .orderBy('seq')
      .limit(BATCH)
      .execute()
    if (batch.length === 0) return sealed
    for (const { id } of batch) {
      await db.transaction().execute(async (trx) => {
        const found = await trx
          .selectFrom('cases')
          .select(['id', 'sections'])
          .where('id', '=', id)
          .where('data_key', 'is', null)
          .where('erased_at', 'is', null)
          .forUpdate()
          .executeTakeFirst()
        if (!found) return
        const key = newCaseKey(id)
        const seal = (column: Parameters<typeof sealJson>[1], rowId: string, value: unknown) =>
          json(isSealed(value) ? value : sealJson(key.key, column, rowId, value))
        await trx
          .updateTable('cases')
          .set({
            data_key_id: key.data_key_id,
            data_key: json(key.data_key),
            sections: seal('cases.sections', id, found.sections),
          })
          .where('id', '=', id)
          .execute()
        const records = await trx.selectFrom('case_records').select(['id', 'data']).where('case_id', '=', id).execute()
        for (const record of records) {
          await trx
            .updateTable('case_records')
            .set({ data: seal('case_records.data', record.id, record.data) })
            .where('id', '=', record.id)
            .execute()
        }
        const packets = await trx.selectFrom('packets').select(['id', 'content']).where('case_id', '=', id).execute()
        for (const packet of packets) {
          await trx
            .updateTable('packets')
            .set({ content: seal('packets.content', packet.id, packet.content) })
            .where('id', '=', packet.id)
            .execute()
        }
      })
      sealed += 1
    }
  }
}

/**
 * Wraps every case's data key anew under the current master key, online: a batch at a time, each
 * row locked only while it is rewritten, rows another transaction holds left for the next pass.
 * Idempotent and resumable: a key already under the current master key is left alone.
 */
export async function rewrapCaseKeys(db: Kysely<DB>, currentId: string): Promise<number> {
  let rewrapped = 0
  for (;;) {
    const done = await db.transaction().execute(async (trx) => {
      const rows = await trx
        .selectFrom('cases')
        .select(['id', 'data_key_id', 'data_key'])
        .where('data_key', 'is not', null)
        .where((eb) => eb(eb.ref('data_key', '->>').key('kid'), '<>', currentId))
        .orderBy('seq')
        .limit(BATCH)
        .forUpdate()
        .skipLocked()
        .execute()
      for (const row of rows) {
        const wrapped = rewrapCaseKey(row)
        if (wrapped)
          await trx
            .updateTable('cases')
            .set({ data_key: json(wrapped) })
            .where('id', '=', row.id)
            .execute()
      }
      return rows.length
    })
    rewrapped += done
    if (done === 0) return rewrapped
  }
}
