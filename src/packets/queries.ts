import type { Kysely, Transaction } from 'kysely'
import { type DB, json, type Packet, type PacketStatus, type PacketStep } from '../db/schema.js'

type Db = Kysely<DB> | Transaction<DB>

/** A packet with what the disclosure policy reads of its case: the reference, and the procedure's step. */
export type PacketRow = Packet & {
  case_reference: string
  case_sop_id: string
  case_sop_version: number
  case_step: string
  case_previous_step: string | null
}

function packetsWithReference(db: Db) {
  return db
    .selectFrom('packets')
    .innerJoin('cases', 'cases.id', 'packets.case_id')
    .selectAll('packets')
    .select([
      'cases.reference as case_reference',
      'cases.sop_id as case_sop_id',
      'cases.sop_version as case_sop_version',
      'cases.step as case_step',
      'cases.previous_step as case_previous_step',
    ])
}

/** The packet, if the organisation sent or received it; `lock` holds the row until the transaction ends. */
export async function findPacketForOrganisation(
  db: Db,
  packetId: string,
  organisationId: string,
  { lock = false } = {},
): Promise<PacketRow | undefined> {
  let query = packetsWithReference(db)
    .where('packets.id', '=', packetId)
    .where((eb) =>
      eb.or([
        eb('packets.sender_organisation_id', '=', organisationId),
        eb('packets.recipient_organisation_id', '=', organisationId),
      ]),
    )
  if (lock) query = query.forUpdate('packets')
  return query.executeTakeFirst()
}

export interface PacketFilter {
  organisationId: string
  direction: 'inbound' | 'outbound'
  status?: PacketStatus | undefined
  after?: string | undefined
  limit: number
}

export async function listPackets(db: Db, filter: PacketFilter): Promise<PacketRow[]> {
  const column = filter.direction === 'inbound' ? 'packets.recipient_organisation_id' : 'packets.sender_organisation_id'
  let query = packetsWithReference(db).where(column, '=', filter.organisationId)
  if (filter.status) query = query.where('packets.status', '=', filter.status)
  if (filter.after) query = query.where('packets.seq', '<', filter.after)
  return query
    .orderBy('packets.seq', 'desc')
    .limit(filter.limit + 1)
    .execute()
}

/** The newest packet of these kinds from the case to this recipient, locked. */
export async function latestPacket(trx: Transaction<DB>, caseId: string, recipientId: string, kinds: Packet['kind'][]) {
  if (kinds.length === 0) return undefined
  return trx
    .selectFrom('packets')
    .selectAll()
    .where('case_id', '=', caseId)
    .where('recipient_organisation_id', '=', recipientId)
    .where('kind', 'in', kinds)
    .orderBy('version', 'desc')
    .limit(1)
    .forUpdate()
    .executeTakeFirst()
}

/** How many packets the case sent to this recipient: the next one's version follows. */
export async function packetCount(trx: Transaction<DB>, caseId: string, recipientId: string): Promise<number> {
  const row = await trx
    .selectFrom('packets')
    .select((eb) => eb.fn.max('version').as('last'))
    .where('case_id', '=', caseId)
    .where('recipient_organisation_id', '=', recipientId)
    .executeTakeFirst()
  return Number(row?.last ?? 0)
}

export type NewPacketRow = Omit<Packet, 'id' | 'seq' | 'revision'>

export async function insertPacket(trx: Transaction<DB>, packet: NewPacketRow): Promise<Packet> {
  return trx
    .insertInto('packets')
    .values({
      ...packet,
      withheld: json(packet.withheld),
      content: json(packet.content),
      consents_by_category: json(packet.consents_by_category),
      history: json(packet.history),
      acknowledgement: packet.acknowledgement ? json(packet.acknowledgement) : null,
      decision: packet.decision ? json(packet.decision) : null,
      questions: packet.questions ? json(packet.questions) : null,
      transfer: packet.transfer ? json(packet.transfer) : null,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
}

export interface PacketChange {
  status: PacketStatus
  step: PacketStep
  acknowledgement?: Packet['acknowledgement']
  decision?: Packet['decision']
  questions?: Packet['questions']
  at: Date
}

/** Moves a locked packet to its next status, adding the step to its history. */
export async function changePacket(trx: Transaction<DB>, current: Packet, change: PacketChange): Promise<Packet> {
  return trx
    .updateTable('packets')
    .set({
      status: change.status,
      history: json([...current.history, change.step]),
      ...(change.acknowledgement ? { acknowledgement: json(change.acknowledgement) } : {}),
      ...(change.decision ? { decision: json(change.decision) } : {}),
      ...(change.questions ? { questions: json(change.questions) } : {}),
      revision: current.revision + 1,
      updated_at: change.at,
    })
    .where('id', '=', current.id)
    .returningAll()
    .executeTakeFirstOrThrow()
}
