import { type Kysely, sql } from 'kysely'
import { caseKey, newCaseKey, rewrapCaseKey, sealedText, sealJson, sealText } from '../crypto/case-keys.js'
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

/** A text value that the start must seal: text written before free text was sealed. */
const clearText = (column: 'note' | 'child_views' | 'withdrawal_reason') =>
  sql<boolean>`${sql.ref(column)} is not null and ${sql.ref(column)} not like '{"alg":%'`
/** A jsonb value that the start must seal: one that is not an envelope. */
const clearJson = (column: 'guardian' | 'interpreter' | 'decision' | 'questions') =>
  sql<boolean>`${sql.ref(column)} is not null and (jsonb_typeof(${sql.ref(column)}) <> 'object' or not (${sql.ref(column)} ? 'ct'))`

/**
 * Seals the free text written in the clear before it was sealed (migration 0015): the guardian,
 * interpreter, child's views and withdrawal reason of consents; the note, decision and questions
 * of packets — each with the key of its case, a batch of rows at a time. Runs at start, after the
 * cases have keys; safe to run again and to stop half-way. Answers how many rows it sealed.
 */
export async function sealPlaintextFreeText(db: Kysely<DB>): Promise<number> {
  let sealed = 0
  for (;;) {
    const consents = await db
      .selectFrom('consents')
      .innerJoin('cases', 'cases.id', 'consents.case_id')
      .select([
        'consents.id',
        'consents.guardian',
        'consents.interpreter',
        'consents.child_views',
        'consents.withdrawal_reason',
        'cases.id as case_id',
        'cases.data_key_id',
        'cases.data_key',
      ])
      .where('cases.data_key', 'is not', null)
      .where((eb) =>
        eb.or(
          [
            clearJson('guardian'),
            clearJson('interpreter'),
            clearText('child_views'),
            clearText('withdrawal_reason'),
          ].map((c) => eb(c, '=', true)),
        ),
      )
      .limit(BATCH)
      .execute()
    for (const row of consents) {
      const key = caseKey({ id: row.case_id, data_key_id: row.data_key_id, data_key: row.data_key })
      const json_ = (column: 'consents.guardian' | 'consents.interpreter', value: unknown) =>
        value === null || isSealed(value) ? undefined : json(sealJson(key, column, row.id, value))
      const text = (column: 'consents.child_views' | 'consents.withdrawal_reason', value: string | null) =>
        value === null || sealedText(value) ? undefined : sealText(key, column, row.id, value)
      await db
        .updateTable('consents')
        .set({
          ...defined('guardian', json_('consents.guardian', row.guardian)),
          ...defined('interpreter', json_('consents.interpreter', row.interpreter)),
          ...defined('child_views', text('consents.child_views', row.child_views)),
          ...defined('withdrawal_reason', text('consents.withdrawal_reason', row.withdrawal_reason)),
        })
        .where('id', '=', row.id)
        .execute()
    }
    const packets = await db
      .selectFrom('packets')
      .innerJoin('cases', 'cases.id', 'packets.case_id')
      .select([
        'packets.id',
        'packets.note',
        'packets.decision',
        'packets.questions',
        'cases.id as case_id',
        'cases.data_key_id',
        'cases.data_key',
      ])
      .where('cases.data_key', 'is not', null)
      .where((eb) =>
        eb.or([clearText('note'), clearJson('decision'), clearJson('questions')].map((c) => eb(c, '=', true))),
      )
      .limit(BATCH)
      .execute()
    for (const row of packets) {
      const key = caseKey({ id: row.case_id, data_key_id: row.data_key_id, data_key: row.data_key })
      const json_ = (column: 'packets.decision' | 'packets.questions', value: unknown) =>
        value === null || isSealed(value) ? undefined : json(sealJson(key, column, row.id, value))
      await db
        .updateTable('packets')
        .set({
          ...defined(
            'note',
            row.note === null || sealedText(row.note) ? undefined : sealText(key, 'packets.note', row.id, row.note),
          ),
          ...defined('decision', json_('packets.decision', row.decision)),
          ...defined('questions', json_('packets.questions', row.questions)),
        })
        .where('id', '=', row.id)
        .execute()
    }
    sealed += consents.length + packets.length
    if (consents.length === 0 && packets.length === 0) return sealed
  }
}

function defined<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>)
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
