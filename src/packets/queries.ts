import { randomUUID } from 'node:crypto'
import { type Kysely, sql, type Transaction } from 'kysely'
import { jsonObjectFrom } from 'kysely/helpers/postgres'
import type { AlsoRead } from '../cases/procedure.js'
import { consentsFromJson, consentsJson, openSealed } from '../cases/queries.js'
import {
  type CaseKeyColumns,
  caseKey,
  openJson,
  openText,
  sealedText,
  sealJson,
  sealText,
} from '../crypto/case-keys.js'
import { isSealed, type Sealed } from '../crypto/keyring.js'
import { type AppendedEvent, changeOnce, writeAtEnd } from '../db/appends.js'
import { compiledOnce, type Slot } from '../db/compiled.js'
import {
  type Consent,
  type DB,
  json,
  type NewAuditRecord,
  type Organisation,
  type Packet,
  type PacketDecision,
  type PacketRowSealed,
  type PacketStatus,
  type PacketStep,
} from '../db/schema.js'
import type { AgreementInForce } from '../transfers/basis.js'
import { agreementsInForceJson } from '../transfers/queries.js'

type Db = Kysely<DB> | Transaction<DB>

/** A packet with what the disclosure policy reads of its case: the reference, and the procedure's step. */
export type PacketRow = Packet & {
  case_reference: string
  case_sop_id: string
  case_sop_version: number
  case_step: string
  case_previous_step: string | null
  case_erased_at: Date | null
}

/** What an erased case's packets still show: nothing of their content. */
const ERASED_CONTENT: Packet['content'] = { profile: {} as Packet['content']['profile'], sections: {}, records: [] }

type FreeTextOpened<T> = Omit<T, 'note' | 'decision' | 'questions'> & Pick<Packet, 'note' | 'decision' | 'questions'>
type Opened<T> = Omit<FreeTextOpened<T>, 'content'> & Pick<Packet, 'content'>

/**
 * The packet's content and free text (note, decision, questions) opened with its case's key, loaded
 * in the same row. An erased case's packets keep none of them.
 */
export function openPacket<T extends PacketRowSealed>(
  keyColumns: CaseKeyColumns & { erased_at: Date | null },
  row: T,
): Opened<T> {
  const opened = openFreeText(keyColumns, row)
  if (keyColumns.erased_at !== null) return { ...opened, content: ERASED_CONTENT }
  return { ...opened, content: openSealed<Packet['content']>(keyColumns, 'packets.content', row.id, row.content) }
}

/** The packet's free text (note, decision, questions) opened with its case's key: all a summary shows of what is sealed. */
function openFreeText<T extends Omit<PacketRowSealed, 'content'>>(
  keyColumns: CaseKeyColumns & { erased_at: Date | null },
  row: T,
): FreeTextOpened<T> {
  if (keyColumns.erased_at !== null) return { ...row, note: null, decision: null, questions: null }
  if (keyColumns.data_key === null) {
    // A case still in the clear: its values pass as they are.
    return {
      ...row,
      note: row.note !== null && sealedText(row.note) ? null : row.note,
      decision: isSealed(row.decision) ? null : row.decision,
      questions: isSealed(row.questions) ? null : row.questions,
    }
  }
  const key = () => caseKey(keyColumns)
  return {
    ...row,
    note: row.note === null ? null : openText(key(), 'packets.note', row.id, row.note),
    decision: row.decision === null ? null : openJson<PacketDecision>(key(), 'packets.decision', row.id, row.decision),
    questions: row.questions === null ? null : openJson<string[]>(key(), 'packets.questions', row.id, row.questions),
  }
}

type JoinedPacket = PacketRowSealed &
  Omit<PacketRow, keyof Packet> & { case_data_key_id: string | null; case_data_key: Sealed | null }

function openJoined({ case_data_key_id, case_data_key, ...row }: JoinedPacket): PacketRow {
  return openPacket(
    { id: row.case_id, data_key_id: case_data_key_id, data_key: case_data_key, erased_at: row.case_erased_at },
    row,
  )
}

/** Every column of a packet but its content: what a list of packets reads. */
const summaryColumns = [
  'packets.id',
  'packets.seq',
  'packets.case_id',
  'packets.kind',
  'packets.version',
  'packets.sender_organisation_id',
  'packets.recipient_organisation_id',
  'packets.purpose',
  'packets.note',
  'packets.status',
  'packets.included_categories',
  'packets.withheld',
  'packets.content_hash',
  'packets.consents_by_category',
  'packets.supersedes',
  'packets.history',
  'packets.acknowledgement',
  'packets.decision',
  'packets.questions',
  'packets.transfer',
  'packets.attachment_ids',
  'packets.revision',
  'packets.sent_at',
  'packets.updated_at',
] as const

function packetsWithReference(db: Db) {
  return withReference(db).selectAll('packets')
}

function withReference(db: Db) {
  return db
    .selectFrom('packets')
    .innerJoin('cases', 'cases.id', 'packets.case_id')
    .select([
      'cases.reference as case_reference',
      'cases.sop_id as case_sop_id',
      'cases.sop_version as case_sop_version',
      'cases.step as case_step',
      'cases.previous_step as case_previous_step',
      'cases.erased_at as case_erased_at',
      'cases.data_key_id as case_data_key_id',
      'cases.data_key as case_data_key',
    ])
}

/** The packet `packetId` with its case's reference, if `organisationId` sent or received it. */
const packetOfParty = (db: Db, slot: Slot) =>
  packetsWithReference(db)
    .where('packets.id', '=', slot('packetId'))
    .where((eb) =>
      eb.or([
        eb('packets.sender_organisation_id', '=', slot('organisationId')),
        eb('packets.recipient_organisation_id', '=', slot('organisationId')),
      ]),
    )

const packetOfPartyRead = compiledOnce(packetOfParty)
const packetOfPartyLocked = compiledOnce((db, slot) => packetOfParty(db, slot).forUpdate('packets'))
const packetViewOfParty = compiledOnce((db, slot) =>
  packetOfParty(db, slot).select((eb) => consentsJson(eb).as('case_consents')),
)

/** The packet, if the organisation sent or received it; `lock` holds the row until the transaction ends. */
export async function findPacketForOrganisation(
  db: Db,
  packetId: string,
  organisationId: string,
  { lock = false } = {},
): Promise<PacketRow | undefined> {
  const [row] = await (lock ? packetOfPartyLocked : packetOfPartyRead)(db, { packetId, organisationId })
  return row && openJoined(row)
}

/** The packet, if the organisation sent or received it, with the consents of its case: one statement. */
export async function findPacketViewForOrganisation(
  db: Db,
  packetId: string,
  organisationId: string,
): Promise<{ packet: PacketRow; consents: Consent[] } | undefined> {
  const [row] = await packetViewOfParty(db, { packetId, organisationId })
  if (!row) return undefined
  const { case_consents, ...packet } = row
  const keyColumns = { id: packet.case_id, data_key_id: packet.case_data_key_id, data_key: packet.case_data_key }
  return { packet: openJoined(packet), consents: consentsFromJson(case_consents, keyColumns) }
}

/**
 * Marks a packet received, if it is still `sent` at the revision read, and writes its event and
 * audit record with it, in one statement: the condition makes concurrent readers agree on one
 * delivery without a lock taken first. Answers whether this call took delivery.
 */
export async function receivePacket(
  db: Kysely<DB>,
  current: Pick<Packet, 'id' | 'history' | 'revision'>,
  step: PacketStep,
  at: Date,
  appended: { events: AppendedEvent[]; audit: NewAuditRecord[] },
): Promise<boolean> {
  const changed = await changeOnce(
    db,
    db
      .updateTable('packets')
      .set({
        status: 'received',
        history: json([...current.history, step]),
        revision: current.revision + 1,
        updated_at: at,
      })
      .where('id', '=', current.id)
      .where('status', '=', 'sent')
      .where('revision', '=', current.revision)
      .returning('id'),
    appended,
  )
  return changed !== undefined
}

export interface PacketFilter {
  organisationId: string
  direction: 'inbound' | 'outbound'
  status?: PacketStatus | undefined
  after?: string | undefined
  limit: number
}

/** A packet as a list shows it: everything but its content. */
export type PacketSummaryRow = Omit<PacketRow, 'content'>

/**
 * A page of the organisation's packets, newest first, each with its case's consents (their free
 * text withheld: the disclosure policy reads only their scope, dates and status), in one statement.
 * No content is read or opened.
 */
export async function listPackets(
  db: Db,
  filter: PacketFilter,
): Promise<{ packet: PacketSummaryRow; consents: Consent[] }[]> {
  const column = filter.direction === 'inbound' ? 'packets.recipient_organisation_id' : 'packets.sender_organisation_id'
  let query = withReference(db)
    .select(summaryColumns)
    .select((eb) => consentsJson(eb).as('case_consents'))
    .where(column, '=', filter.organisationId)
  if (filter.status) query = query.where('packets.status', '=', filter.status)
  if (filter.after) query = query.where('packets.seq', '<', filter.after)
  const rows = await query
    .orderBy('packets.seq', 'desc')
    .limit(filter.limit + 1)
    .execute()
  return rows.map(({ case_consents, case_data_key_id, case_data_key, ...row }) => ({
    packet: openFreeText(
      { id: row.case_id, data_key_id: case_data_key_id, data_key: case_data_key, erased_at: row.case_erased_at },
      row,
    ),
    consents: consentsFromJson(case_consents),
  }))
}

/** What a packet's send reads besides the case's facts, in the same statement (`gatherFacts`). */
export interface SendingRead {
  recipient: Organisation | undefined
  /** The agreements from sender to recipient in force today, newest first. */
  agreements: AgreementInForce[]
  /** The version of the newest packet of the case to the recipient; 0 before the first. */
  lastVersion: number
  /** The newest packet to the recipient of the kinds a new packet may amend, locked. */
  amendable: AmendablePacket | undefined
}

export type AmendablePacket = Pick<
  Packet,
  | 'id'
  | 'status'
  | 'history'
  | 'revision'
  | 'kind'
  | 'case_id'
  | 'version'
  | 'sender_organisation_id'
  | 'recipient_organisation_id'
  | 'purpose'
>

/**
 * The selections of `SendingRead`, beside the case in scope. The case is locked already, and
 * every packet of it is sent or changed under that lock, so what they read stays true until commit.
 */
export function sendingRead(values: {
  senderId: string
  recipientId: string
  amendable: readonly Packet['kind'][]
  day: string
}): AlsoRead {
  return { select: sendingSelections, values: { ...values, amendable: [...values.amendable] } }
}

const sendingSelections: AlsoRead['select'] = (eb, slot) => [
  jsonObjectFrom(eb.selectFrom('organisations').selectAll().where('id', '=', slot('recipientId'))).as(
    'sending_recipient',
  ),
  agreementsInForceJson(eb, slot('senderId'), slot('recipientId'), slot('day')).as('sending_agreements'),
  eb
    .selectFrom('packets')
    .select(sql<number>`coalesce(max(version), 0)`.as('last'))
    .whereRef('packets.case_id', '=', 'cases.id')
    .where('recipient_organisation_id', '=', slot('recipientId'))
    .as('sending_last_version'),
  jsonObjectFrom(
    eb
      .selectFrom('packets')
      .select([
        'id',
        'status',
        'history',
        'revision',
        'kind',
        'case_id',
        'version',
        'sender_organisation_id',
        'recipient_organisation_id',
        'purpose',
      ])
      .whereRef('packets.case_id', '=', 'cases.id')
      .where('recipient_organisation_id', '=', slot('recipientId'))
      .where(sql<boolean>`kind = any(${slot('amendable')}::text[])`)
      .orderBy('version', 'desc')
      .limit(1)
      .forUpdate(),
  ).as('sending_amendable'),
]

/** `SendingRead` from what `sendingRead` selected. */
export function sendingFrom(also: Record<string, unknown>): SendingRead {
  const recipient = also.sending_recipient as (Omit<Organisation, 'created_at'> & { created_at: string }) | null
  return {
    recipient: recipient ? { ...recipient, created_at: new Date(recipient.created_at) } : undefined,
    agreements: also.sending_agreements as AgreementInForce[],
    lastVersion: Number(also.sending_last_version),
    amendable: (also.sending_amendable as AmendablePacket | null) ?? undefined,
  }
}

export type NewPacketRow = Omit<Packet, 'id' | 'seq' | 'revision'>

/**
 * Adds a packet, with its free text sealed with the case's key. Its version follows the newest one
 * the sending transaction read under the case's lock; the row is written with the transaction's
 * other writes, at its end.
 */
export async function insertPacket(
  trx: Transaction<DB>,
  keyColumns: CaseKeyColumns,
  packet: NewPacketRow,
): Promise<Omit<Packet, 'seq'>> {
  const id = randomUUID()
  const key = keyColumns.data_key === null ? undefined : caseKey(keyColumns)
  const seal = <T>(column: Parameters<typeof sealJson>[1], value: T) => (key ? sealJson(key, column, id, value) : value)
  await writeAtEnd(
    trx,
    trx.insertInto('packets').values({
      ...packet,
      id,
      note: packet.note === null || !key ? packet.note : sealText(key, 'packets.note', id, packet.note),
      withheld: json(packet.withheld),
      content: json(seal('packets.content', packet.content)),
      consents_by_category: json(packet.consents_by_category),
      history: json(packet.history),
      acknowledgement: packet.acknowledgement ? json(packet.acknowledgement) : null,
      decision: packet.decision ? json(seal('packets.decision', packet.decision)) : null,
      questions: packet.questions ? json(seal('packets.questions', packet.questions)) : null,
      transfer: packet.transfer ? json(packet.transfer) : null,
    }),
  )
  return { ...packet, id, revision: 1 }
}

export interface PacketChange {
  status: PacketStatus
  step: PacketStep
  acknowledgement?: Packet['acknowledgement']
  decision?: Packet['decision']
  questions?: Packet['questions']
  at: Date
}

/**
 * Moves a locked packet to its next status, adding the step to its history; a decision or questions
 * it takes are sealed with the key of its case (`keyColumns`, which such a change must name).
 */
export async function changePacket<T extends Pick<Packet, 'id' | 'history' | 'revision'>>(
  trx: Transaction<DB>,
  current: T,
  change: PacketChange,
  keyColumns?: CaseKeyColumns,
): Promise<void> {
  const freeText = change.decision !== undefined || change.questions !== undefined
  if (freeText && !keyColumns) throw new Error('a decision or questions are sealed with the case key')
  const key = freeText && keyColumns && keyColumns.data_key !== null ? caseKey(keyColumns) : undefined
  const seal = <V>(column: Parameters<typeof sealJson>[1], value: V) =>
    json(key ? sealJson(key, column, current.id, value) : value)
  await writeAtEnd(
    trx,
    trx
      .updateTable('packets')
      .set({
        status: change.status,
        history: json([...current.history, change.step]),
        ...(change.acknowledgement ? { acknowledgement: json(change.acknowledgement) } : {}),
        ...(change.decision ? { decision: seal('packets.decision', change.decision) } : {}),
        ...(change.questions ? { questions: seal('packets.questions', change.questions) } : {}),
        revision: current.revision + 1,
        updated_at: change.at,
      })
      .where('id', '=', current.id),
  )
}
