// The benchmark's yardstick: the seven hot operations written by hand on the service's schema with
// plain Fastify and pg, in the fewest round trips: authentication folded into the first statement,
// every statement named (prepared once per connection), a read in one statement plus its audit
// insert, a change in one read-and-lock statement and one write statement. It answers the same
// bodies and writes the same rows as the service (the bench checks both, scripts/bench/equivalence.ts);
// the rules themselves (procedure, disclosure, consent, transfer basis, encryption, how a case or
// an event is shown) are the service's pure functions, imported; how a packet is shown is written
// out here, as the service keeps it private. It covers the paths the bench takes and answers 501
// where a change would need more (superseding a packet, obligations, alerts, an Idempotency-Key replay).
import { createHash, randomUUID } from 'node:crypto'
import canonicalize from 'canonicalize'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import type pg from 'pg'
import { presentCase, presentCaseSummary } from '../../src/cases/access.js'
import { disclosureFor } from '../../src/cases/disclosure.js'
import { factsFrom, openRecord } from '../../src/cases/procedure.js'
import { definitionOf, purposesAt } from '../../src/cases/procedure-definition.js'
import { presentRecord } from '../../src/cases/procedure-handlers.js'
import { openCase, openSealed } from '../../src/cases/queries.js'
import { presentSchedule } from '../../src/cases/schedule.js'
import type { Clock } from '../../src/clock.js'
import { systemClock } from '../../src/clock.js'
import { caseKey, sealJson } from '../../src/crypto/case-keys.js'
import type { Case, CaseParty, CaseRecordRow, CaseRow, Consent, Packet, PacketStep } from '../../src/db/schema.js'
import { type CategoriesView, composePacket, discloseCategories, disclosePacket } from '../../src/disclosure/policy.js'
import { presentEvent } from '../../src/events/outbox.js'
import { actingRoles, readingRoles } from '../../src/http/authentication.js'
import { answerLanguage } from '../../src/http/language.js'
import { decodeCursor, encodeCursor, toPage } from '../../src/http/pagination.js'
import { addDuration } from '../../src/sops/deadline.js'
import type { Transition } from '../../src/sops/definition.js'
import { evaluate, targetStep } from '../../src/sops/engine.js'
import type { SopRegistry } from '../../src/sops/registry.js'
import { transferBasis } from '../../src/transfers/basis.js'

type Row = Record<string, unknown>

class Answer extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
    this.name = 'Answer'
  }
}

/** Names every statement by its text: pg prepares a named statement once per connection. */
function named(text: string): { name: string; text: string } {
  return { name: `m_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`, text }
}

const caller = `caller as (
  select p.id as caller_principal_id, p.roles as caller_roles, o.id as caller_organisation_id,
         o.name as caller_name, o.country as caller_country, o.time_zone as caller_time_zone
  from api_keys k join principals p on p.id = k.principal_id join organisations o on o.id = p.organisation_id
  where k.prefix = $1 and k.secret_hash = $2 and k.revoked_at is null and (k.expires_at is null or k.expires_at > now()))`

const partiesOf = (id: string) =>
  `(select coalesce(json_agg(p order by p.since, p.organisation_id), '[]') from case_parties p where p.case_id = ${id})`
const consentsOf = (id: string) =>
  `(select coalesce(json_agg(s order by s.recorded_at desc, s.id desc), '[]') from consents s where s.case_id = ${id})`
const recordsOf = (id: string) =>
  `(select coalesce(json_agg(r order by r.recorded_at, r.id), '[]') from case_records r where r.case_id = ${id})`
const ownCase = `select * from cases c where c.id = $3
  and exists (select 1 from case_parties own where own.case_id = c.id and own.organisation_id = caller.caller_organisation_id)`

/** Every statement of the minimal implementation, named. */
export const statements = {
  readCase: named(`with ${caller}
    select caller.*, c.*, ${partiesOf('c.id')} as parties, ${consentsOf('c.id')} as consents,
      (select coalesce(json_agg(o order by o.due_at, o.id), '[]') from (
         select ob.*, h.proceeding_id from case_obligations ob left join proceeding_hearings h on h.id = ob.hearing_id
         where ob.case_id = c.id) o) as obligations
    from caller left join lateral (${ownCase}) c on true`),
  audit: named(`insert into audit_records (action, principal_id, organisation_id, request_id, case_id, resource_type,
      resource_id, details) values ($1, $2, $3, $4, $5, $6, $7, $8)`),
  listCases: named(`with ${caller}
    select caller.*, c.*, ${partiesOf('c.id')} as parties,
      (select coalesce(json_agg(s), '[]') from consents s where s.case_id = c.id) as consents
    from caller left join lateral (
      select c.id, c.seq, c.reference, c.profile, c.sending_organisation_id, c.receiving_organisation_id,
        c.lead_organisation_id, c.version, c.created_at, c.updated_at, c.sop_id, c.sop_version, c.step, c.previous_step,
        c.step_entered_at, c.step_due_at, c.erased_at, c.erased_by_principal_id, c.erasure_reason
      from cases c join case_parties own on own.case_id = c.id
      where own.organisation_id = caller.caller_organisation_id and c.seq < $3
      order by c.seq desc limit $4) c on true`),
  feed: named(`with ${caller}
    select caller.*, e.* from caller left join lateral (
      select events.id, events.type, events.occurred_at, events.case_id, events.organisation_ids, events.data,
        audience.txid::text as txid, audience.seq::text as seq
      from event_audiences as audience join events on events.id = audience.event_id
      where audience.organisation_id = caller.caller_organisation_id
        and (audience.txid, audience.seq) > ($3::xid8, $4::bigint)
        and audience.txid < pg_snapshot_xmin(pg_current_snapshot())
      order by audience.txid, audience.seq limit $5) e on true`),
  inbox: named(`with ${caller}
    select caller.*, k.*, (select coalesce(json_agg(s), '[]') from consents s where s.case_id = k.case_id) as consents
    from caller left join lateral (
      select packets.*, c.reference as case_reference, c.sop_id as case_sop_id, c.sop_version as case_sop_version,
        c.step as case_step, c.previous_step as case_previous_step, c.erased_at as case_erased_at
      from packets join cases c on c.id = packets.case_id
      where packets.recipient_organisation_id = caller.caller_organisation_id and packets.seq < $3
      order by packets.seq desc limit $4) k on true`),
  readPacket: named(`with ${caller}
    select caller.*, k.*, ${consentsOf('k.case_id')} as consents
    from caller left join lateral (
      select packets.*, c.reference as case_reference, c.sop_id as case_sop_id, c.sop_version as case_sop_version,
        c.step as case_step, c.previous_step as case_previous_step, c.erased_at as case_erased_at,
        c.data_key_id as case_data_key_id, c.data_key as case_data_key
      from packets join cases c on c.id = packets.case_id
      where packets.id = $3 and caller.caller_organisation_id in (packets.sender_organisation_id,
        packets.recipient_organisation_id)) k on true`),
  /** The packet taken into receipt, if it still waits: its event and the read's audit row in the same statement. */
  receivePacket: named(`with received as (
      update packets set status = 'received', history = history || $2::jsonb, revision = revision + 1, updated_at = $3
      where id = $1 and status = 'sent' returning *),
    event as (
      insert into events (type, case_id, organisation_ids, data)
      select 'packet.received', case_id, array[sender_organisation_id, recipient_organisation_id], $4::jsonb
      from received returning id, txid, seq, organisation_ids),
    audience as (
      insert into event_audiences (organisation_id, txid, seq, event_id)
      select organisation_id, event.txid, event.seq, event.id from event, unnest(event.organisation_ids) as organisation_id),
    audit as (
      insert into audit_records (action, principal_id, organisation_id, request_id, case_id, resource_type, resource_id,
        details) values ('getPacket', $5, $6, $7, $8, 'packet', $1, $9))
    select * from received`),
  /** The case locked with everything a change of it reads; a packet send also claims its Idempotency-Key here. */
  lockCase: named(`with ${caller},
    claim as (
      insert into idempotency_keys (organisation_id, key, operation_id, fingerprint)
      select caller_organisation_id, $4, $5, $6 from caller where $4::text is not null
      on conflict (organisation_id, key) do update set operation_id = excluded.operation_id,
        fingerprint = excluded.fingerprint, status_code = null, resource_id = null, location = null, created_at = now()
        where idempotency_keys.created_at < now() - interval '1 day'
      returning key)
    select caller.*, (select count(*) from claim) as claimed, c.*,
      ${partiesOf('c.id')} as parties, ${consentsOf('c.id')} as consents, ${recordsOf('c.id')} as records,
      (select to_jsonb(r) from organisations r where r.id = $7) as recipient,
      (select coalesce(json_agg(a), '[]') from (
         select id, reference, safeguard from transfer_agreements
         where exporter_organisation_id = caller.caller_organisation_id and importer_organisation_id = $7
           and valid_from <= $8::date and (valid_until is null or valid_until >= $8::date)
         order by seq desc) a) as agreements,
      (select max(version) from packets where case_id = c.id and recipient_organisation_id = $7) as last_version,
      counterpart.id as counterpart_id,
      (select json_object_agg(o.id, o.time_zone) from organisations o
       where o.id in (c.sending_organisation_id, c.lead_organisation_id, $7, counterpart.id)) as time_zones
    from caller left join lateral (${ownCase} for update) c on true
    left join lateral (
      select coalesce(c.receiving_organisation_id, (
        select recipient_organisation_id from packets where case_id = c.id and kind = 'enquiry'
          and status not in ('declined', 'superseded') order by seq desc limit 1)) as id) counterpart on true`),
  /** A change's writes, every value known beforehand: events and audit rows keep the order the service writes them in. */
  writeChange: named(`with packet as (
      insert into packets (id, case_id, kind, version, sender_organisation_id, recipient_organisation_id, purpose, note,
        status, included_categories, withheld, content, content_hash, consents_by_category, supersedes, history,
        acknowledgement, decision, questions, transfer, sent_at, updated_at)
      select p.id, p.case_id, p.kind, p.version, p.sender_organisation_id, p.recipient_organisation_id, p.purpose,
        p.note, p.status, p.included_categories, p.withheld, p.content, p.content_hash, p.consents_by_category,
        p.supersedes, p.history, p.acknowledgement, p.decision, p.questions, p.transfer, p.sent_at, p.updated_at
      from jsonb_populate_record(null::packets, $1::jsonb) as p where $1::jsonb is not null
      returning *),
    changed as (
      update cases set step = $3, previous_step = $4, step_entered_at = $5, step_due_at = $6,
        lead_organisation_id = $7, version = version + 1, updated_at = $5
      where id = $2 returning version),
    transition as (
      insert into case_transitions (case_id, action, from_step, to_step, at, principal_id, organisation_id,
        lead_organisation_id, note, reason, review_date)
      values ($2, $8, $4, $3, $5, $9, $10, $7, $11, $12, $13)),
    event as (
      insert into events (type, case_id, organisation_ids, data)
      select e.type, $2, e.audience, e.data
      from jsonb_to_recordset($14::jsonb) as e (n int, type text, audience uuid[], data jsonb)
      order by e.n returning id, txid, seq, organisation_ids),
    audience as (
      insert into event_audiences (organisation_id, txid, seq, event_id)
      select organisation_id, event.txid, event.seq, event.id from event, unnest(event.organisation_ids) as organisation_id),
    audit as (
      insert into audit_records (action, principal_id, organisation_id, request_id, case_id, resource_type, resource_id,
        details)
      select $15, $9, $10, $16, $2, a.resource_type, a.resource_id, a.details
      from jsonb_to_recordset($17::jsonb) as a (n int, resource_type text, resource_id uuid, details jsonb)
      order by a.n),
    outcome as (
      update idempotency_keys set status_code = $19, resource_id = $20, location = $21
      where organisation_id = $10 and key = $18)
    select (select version from changed) as version, (select to_jsonb(packet) from packet) as packet`),
}

/** Timestamps inside a JSON aggregate arrive as text: the service's rows hold them as dates. */
function dated<T>(row: Row): T {
  const copy: Row = { ...row }
  for (const [key, value] of Object.entries(copy)) {
    if (typeof value === 'string' && (key.endsWith('_at') || key === 'since')) copy[key] = new Date(value)
  }
  return copy as T
}

/** Rows for one insert, numbered so that they are written (and take their ids) in this order. */
function ordered(rows: Row[]): string {
  return JSON.stringify(rows.map((row, n) => ({ n, ...row })))
}

function secretHash(request: FastifyRequest): [string, string] {
  const match = /^Bearer trm_([a-z0-9]{12})_([A-Za-z0-9_-]{20,100})$/.exec(request.headers.authorization ?? '')
  if (!match) throw new Answer(401, 'The API key is malformed.')
  return [
    match[1] as string,
    createHash('sha256')
      .update(match[2] as string)
      .digest('hex'),
  ]
}

interface Caller {
  principalId: string
  organisationId: string
  roles: string[]
  organisation: { id: string; name: string; country: string; time_zone: string }
}

function callerOf(row: Row | undefined, roles: readonly string[]): Caller {
  if (!row) throw new Answer(401, 'The API key is unknown, expired or revoked.')
  const held = row.caller_roles as string[]
  if (!held.some((role) => roles.includes(role))) throw new Answer(403, 'The role does not allow this.')
  const organisationId = row.caller_organisation_id as string
  return {
    principalId: row.caller_principal_id as string,
    organisationId,
    roles: held,
    organisation: {
      id: organisationId,
      name: row.caller_name as string,
      country: row.caller_country as string,
      time_zone: row.caller_time_zone as string,
    },
  }
}

function parties(row: Row): CaseParty[] {
  return (row.parties as Row[]).map((party) => dated<CaseParty>(party))
}

function consents(row: Row): Consent[] {
  return (row.consents as Row[]).map((consent) => dated<Consent>(consent))
}

/** What the service shows of a packet in a list (src/packets/handlers.ts), from its row and the caller's view of it. */
function summaryOfPacket(row: Row, view: CategoriesView) {
  return {
    id: row.id as string,
    case_id: row.case_id as string,
    case_reference: row.case_reference as string,
    kind: row.kind as Packet['kind'],
    version: row.version as number,
    etag: `"${row.revision}"`,
    sender_organisation_id: row.sender_organisation_id as string,
    recipient_organisation_id: row.recipient_organisation_id as string,
    purpose: row.purpose as Packet['purpose'],
    note: row.note as string | null,
    status: row.status as Packet['status'],
    included_categories: view.included,
    withheld: view.withheld,
    content_hash: row.content_hash as string,
    supersedes: row.supersedes as string | null,
    history: row.history as PacketStep[],
    acknowledgement: row.acknowledgement as Packet['acknowledgement'],
    decision: row.decision as Packet['decision'],
    questions: row.questions as Packet['questions'],
    transfer: row.transfer as Packet['transfer'],
  }
}

function fullPacket(row: Row, view: ReturnType<typeof disclosePacket>) {
  return {
    ...summaryOfPacket(row, view),
    content: view.content,
    withdrawn_categories: view.gone,
    content_notice:
      view.gone.length === 0
        ? null
        : `The consent this packet relied on for ${view.gone.join(', ')} was withdrawn or has expired: ` +
          'the packet no longer carries that content, and any copies of it must be deleted or restricted.',
  }
}

function purposesOfPacket(sops: SopRegistry, row: Row) {
  const found = {
    id: row.case_id as string,
    sop_id: row.case_sop_id as string,
    sop_version: row.case_sop_version as number,
  }
  return purposesAt(definitionOf(sops, found), {
    step: row.case_step as string,
    previous_step: row.case_previous_step as string | null,
  })
}

/** The facts the procedure's guards read, from the locked row, by the service's own rule. */
function factsOf(found: Case, records: CaseRecordRow[], all: Consent[], counterpartId: string | null, now: Date) {
  const opened = records.map((row) => openRecord(found, row))
  return { facts: factsFrom(found, opened, all, counterpartId, now), records: opened }
}

/** The seven operations on a pg pool; `sops` is the service's procedure registry, `clock` its clock. */
export function buildMinimal(pool: pg.Pool, sops: SopRegistry, clock: Clock = systemClock): FastifyInstance {
  const app = Fastify({ logger: false, requestIdHeader: 'x-request-id', genReqId: () => randomUUID() })
  const run = async (
    statement: { name: string; text: string },
    values: unknown[],
    client: pg.Pool | pg.PoolClient = pool,
  ) => (await (client as pg.Pool).query<Row>({ ...statement, values })).rows

  app.setErrorHandler((error: Error, _request, reply) => {
    const status = error instanceof Answer ? error.status : 500
    reply
      .code(status)
      .type('application/problem+json')
      .send({ status, title: status === 500 ? 'Internal Server Error' : error.message, detail: error.message })
  })

  /** A change in one transaction: the read-and-lock statement, the write statement, between begin and commit. */
  async function change<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect()
    try {
      await client.query('begin')
      const result = await work(client)
      await client.query('commit')
      return result
    } catch (error) {
      await client.query('rollback').catch(() => {})
      throw error
    } finally {
      client.release()
    }
  }

  app.get<{ Params: { caseId: string } }>('/v1/cases/:caseId', async (request, reply) => {
    const language = answerLanguage(request, reply)
    const [row] = await run(statements.readCase, [...secretHash(request), request.params.caseId])
    const who = callerOf(row, readingRoles)
    if (!row || row.id === null) throw new Answer(404, 'No such case.')
    const found = openCase(row as unknown as CaseRow)
    if (found.erased_at !== null) throw new Answer(410, 'The case was erased.')
    const now = clock.now()
    const own = parties(row)
    const disclosure = disclosureFor(sops, found, own, consents(row), who.organisationId, now)
    const open = !definitionOf(sops, found).steps[found.step]?.terminal
    const obligations = (row.obligations as Row[]).map((o) => dated<Parameters<typeof presentSchedule>[0][number]>(o))
    const schedule = presentSchedule(obligations, disclosure, who.organisationId, open, now)
    const body = presentCase(found, own, disclosure, schedule, now, language)
    await run(statements.audit, [
      'getCase',
      who.principalId,
      who.organisationId,
      request.id,
      found.id,
      'case',
      found.id,
      { sections: Object.keys(body.sections) },
    ])
    reply.header('etag', `"${found.version}"`)
    return body
  })

  app.get<{ Querystring: { limit?: string; cursor?: string } }>('/v1/cases', async (request, reply) => {
    const language = answerLanguage(request, reply)
    const limit = Number(request.query.limit ?? 50)
    const after = request.query.cursor ? decodeCursor(request.query.cursor, ['integer'])[0] : '9223372036854775807'
    const rows = await run(statements.listCases, [...secretHash(request), after, limit + 1])
    const who = callerOf(rows[0], readingRoles)
    const now = clock.now()
    return toPage(
      rows.filter((row) => row.id !== null),
      limit,
      (row) => {
        const own = parties(row)
        const found = row as unknown as Case
        const disclosure = disclosureFor(sops, found, own, consents(row), who.organisationId, now)
        return presentCaseSummary(found, own, disclosure, now, language)
      },
      (row) => [String(row.seq)],
    )
  })

  app.get<{ Querystring: { limit?: string; cursor?: string } }>('/v1/events', async (request) => {
    const limit = Number(request.query.limit ?? 100)
    const [txid, seq] = request.query.cursor ? decodeCursor(request.query.cursor, ['integer', 'integer']) : ['0', '0']
    const rows = await run(statements.feed, [...secretHash(request), txid, seq, limit + 1])
    callerOf(rows[0], readingRoles)
    const events = rows.filter((row) => row.id !== null) as unknown as Parameters<typeof presentEvent>[0][]
    const items = events.slice(0, limit) as (Parameters<typeof presentEvent>[0] & { txid: string; seq: string })[]
    const last = items.at(-1)
    return {
      items: items.map(presentEvent),
      next_cursor: encodeCursor(last ? [last.txid, last.seq] : [txid, seq]),
      has_more: events.length > limit,
    }
  })

  app.get<{ Querystring: { direction: string; limit?: string; cursor?: string } }>('/v1/packets', async (request) => {
    if (request.query.direction !== 'inbound') throw new Answer(501, 'The minimal implementation lists the inbox only.')
    const limit = Number(request.query.limit ?? 50)
    const after = request.query.cursor ? decodeCursor(request.query.cursor, ['integer'])[0] : '9223372036854775807'
    const rows = await run(statements.inbox, [...secretHash(request), after, limit + 1])
    const who = callerOf(rows[0], readingRoles)
    const now = clock.now()
    return toPage(
      rows.filter((row) => row.id !== null),
      limit,
      (row) => {
        const view = discloseCategories(
          row as unknown as Packet,
          consents(row),
          who.organisationId,
          purposesOfPacket(sops, row),
          now,
        )
        return summaryOfPacket(row, view)
      },
      (row) => [String(row.seq)],
    )
  })

  app.get<{ Params: { packetId: string } }>('/v1/packets/:packetId', async (request, reply) => {
    const [row] = await run(statements.readPacket, [...secretHash(request), request.params.packetId])
    const who = callerOf(row, readingRoles)
    if (!row || row.id === null) throw new Answer(404, 'No such packet.')
    if (row.case_erased_at !== null) throw new Answer(410, 'The case was erased.')
    const now = clock.now()
    const keyColumns = { id: row.case_id as string, data_key_id: row.case_data_key_id, data_key: row.case_data_key }
    const content = openSealed<Packet['content']>(
      keyColumns as Parameters<typeof openSealed>[0],
      'packets.content',
      row.id as string,
      row.content,
    )
    const all = consents(row)
    const view = disclosePacket(
      { ...(row as unknown as Packet), content },
      all,
      who.organisationId,
      purposesOfPacket(sops, row),
      now,
    )
    const details = { included_categories: view.included, withdrawn_categories: view.gone }
    const audit = [who.principalId, who.organisationId, request.id, row.case_id, details]
    let shown: Row = row
    const acting = who.roles.some((role) => (actingRoles as string[]).includes(role))
    if (acting && row.recipient_organisation_id === who.organisationId && row.status === 'sent') {
      const step: PacketStep = {
        status: 'received',
        at: now.toISOString(),
        principal_id: who.principalId,
        organisation_id: who.organisationId,
      }
      const event = {
        case_reference: row.case_reference,
        packet_id: row.id,
        packet_version: row.version,
        status: 'received',
        sender_organisation_id: row.sender_organisation_id,
        recipient_organisation_id: row.recipient_organisation_id,
        purpose: row.purpose,
      }
      const [received] = await run(statements.receivePacket, [row.id, JSON.stringify([step]), now, event, ...audit])
      // Another request took it into receipt first: show the packet as that one left it.
      shown = received
        ? { ...row, ...received }
        : ((await run(statements.readPacket, [...secretHash(request), row.id]))[0] ?? row)
    } else {
      await run(statements.audit, ['getPacket', audit[0], audit[1], audit[2], audit[3], 'packet', row.id, details])
    }
    reply.header('etag', `"${shown.revision}"`)
    return fullPacket(shown, view)
  })

  /** The read-and-lock statement of a change, and what the procedure makes of it for this caller. */
  async function lockCase(
    client: pg.PoolClient,
    request: FastifyRequest<{ Params: { caseId: string } }>,
    claim: { key: string; operation: string; fingerprint: string } | undefined,
    recipientId: string | null,
    now: Date,
  ) {
    const [row] = await run(
      statements.lockCase,
      [
        ...secretHash(request),
        request.params.caseId,
        claim?.key ?? null,
        claim?.operation ?? null,
        claim?.fingerprint ?? null,
        recipientId,
        now.toISOString().slice(0, 10),
      ],
      client,
    )
    const who = callerOf(row, actingRoles)
    if (!row || row.id === null) throw new Answer(404, 'No such case.')
    if (claim && Number(row.claimed) === 0) throw new Answer(501, 'The minimal implementation does not replay.')
    const found = openCase(row as unknown as CaseRow)
    if (found.erased_at !== null) throw new Answer(410, 'The case was erased.')
    const all = consents(row)
    const counterpartId = (row.counterpart_id as string | null) ?? recipientId
    const { facts, records } = factsOf(found, (row.records as Row[]).map(dated<CaseRecordRow>), all, counterpartId, now)
    return { row, who, found, all, facts, records, zones: (row.time_zones ?? {}) as Record<string, string> }
  }

  /** The transition open to this caller, or the answer the service would give instead (its details aside). */
  function openTransition(
    locked: Awaited<ReturnType<typeof lockCase>>,
    matches: (transition: Transition) => boolean,
  ): Transition {
    const definition = definitionOf(sops, locked.found)
    const transition = definition.transitions.find((t) => matches(t) && t.from.includes(locked.found.step))
    if (!transition) throw new Answer(409, 'The action is not open at this step.')
    const side =
      locked.who.organisationId === locked.found.sending_organisation_id
        ? 'sending'
        : locked.who.organisationId === locked.facts.counterpartId
          ? 'receiving'
          : null
    const refused = evaluate(definition, locked.facts, { side, roles: locked.who.roles as never }).refused
    if (refused.some((option) => option.action === transition.action)) throw new Answer(409, 'Preconditions unmet.')
    const entered = definition.steps[targetStep(transition, locked.facts)]
    if (transition.effects?.length || transition.notify?.length || entered?.schedule || entered?.terminal) {
      throw new Answer(501, 'The minimal implementation takes transitions without effects only.')
    }
    return transition
  }

  /** The writes of a transition (and of a packet sent with it), in one statement. */
  async function writeChange(
    client: pg.PoolClient,
    request: FastifyRequest,
    operation: 'performTransition' | 'sendPacket',
    locked: Awaited<ReturnType<typeof lockCase>>,
    transition: Transition,
    input: { note?: string; reason?: string; review_date?: string; counterpartId?: string },
    now: Date,
    packet?: { row: Row; event: Row; audit: Row; key: string | null },
  ) {
    const { found, who, facts, zones } = locked
    const missing = (transition.inputs ?? []).filter((name) => input[name] === undefined)
    if (missing.length > 0) throw new Answer(422, `${transition.action} needs ${missing.join(' and ')}.`)
    const definition = definitionOf(sops, found)
    const to = targetStep(transition, facts)
    const counterpartId = input.counterpartId ?? facts.counterpartId
    const lead = found.lead_organisation_id
    const step = definition.steps[to]
    let dueAt: Date | null = null
    if (input.review_date) dueAt = new Date(`${input.review_date}T00:00:00Z`)
    else if (step?.deadline) {
      const responsible =
        step.responsible === 'sending'
          ? found.sending_organisation_id
          : step.responsible === 'receiving'
            ? (counterpartId ?? lead)
            : lead
      const zone = responsible === who.organisationId ? who.organisation.time_zone : zones[responsible]
      dueAt = addDuration(now, step.deadline, zone)
    }
    const audience = parties(locked.row).map((party) => party.organisation_id)
    const transitioned = {
      type: 'case.transitioned',
      audience,
      data: {
        case_reference: found.reference,
        version: found.version + 1,
        action: transition.action,
        from_step: found.step,
        to_step: to,
        lead_organisation_id: lead,
      },
    }
    const caseAudit = {
      resource_type: 'case',
      resource_id: found.id,
      details: { action: transition.action, from: found.step, to, lead_organisation_id: lead },
    }
    const [written] = await run(
      statements.writeChange,
      [
        packet ? packet.row : null,
        found.id,
        to,
        found.step,
        now,
        dueAt,
        lead,
        transition.action,
        who.principalId,
        who.organisationId,
        input.note ?? null,
        input.reason ?? null,
        input.review_date ?? null,
        ordered(packet ? [packet.event, transitioned] : [transitioned]),
        operation,
        request.id,
        ordered(packet ? [packet.audit, caseAudit] : [caseAudit]),
        packet?.key ?? null,
        packet ? 201 : null,
        packet ? packet.row.id : null,
        packet ? `/v1/packets/${packet.row.id}` : null,
      ],
      client,
    )
    const changed: Case = {
      ...found,
      step: to,
      previous_step: found.step,
      step_entered_at: now,
      step_due_at: dueAt,
      version: Number(written?.version),
      updated_at: now,
    }
    return { changed, packet: written?.packet as Row | null }
  }

  app.post<{
    Params: { caseId: string }
    Body: { action: string; note?: string; reason?: string; review_date?: string }
  }>('/v1/cases/:caseId/transitions', async (request, reply) => {
    const language = answerLanguage(request, reply)
    const expected = /^"(\d{1,9})"$/.exec(String(request.headers['if-match'] ?? ''))
    if (!expected) throw new Answer(428, 'Send If-Match.')
    if (request.headers['idempotency-key'] !== undefined) throw new Answer(501, 'No Idempotency-Key here.')
    const now = clock.now()
    const { changed, locked } = await change(async (client) => {
      const locked = await lockCase(client, request, undefined, null, now)
      if (locked.found.version !== Number(expected[1])) throw new Answer(412, 'The case changed since you read it.')
      const transition = openTransition(locked, (t) => t.action === request.body.action && !t.exchange)
      const { changed } = await writeChange(client, request, 'performTransition', locked, transition, request.body, now)
      return { changed, locked }
    })
    const own = parties(locked.row)
    const disclosure = disclosureFor(sops, changed, own, locked.all, locked.who.organisationId, now)
    reply.header('etag', `"${changed.version}"`)
    return presentCaseSummary(changed, own, disclosure, now, language)
  })

  app.post<{
    Params: { caseId: string }
    Body: { recipient_organisation_id: string; purpose: Packet['purpose']; note?: string; transfer_basis?: never }
  }>('/v1/cases/:caseId/packets', async (request, reply) => {
    const key = request.headers['idempotency-key']
    const claim =
      typeof key === 'string'
        ? {
            key,
            operation: 'sendPacket',
            fingerprint: createHash('sha256')
              .update(`${request.method} ${request.url}\n${canonicalize(request.body ?? null)}`)
              .digest('hex'),
          }
        : undefined
    const body = request.body
    const now = clock.now()
    const { row, view } = await change(async (client) => {
      const locked = await lockCase(client, request, claim, body.recipient_organisation_id, now)
      const recipient = locked.row.recipient as { id: string; name: string; country: string; can_receive: boolean }
      if (!recipient?.can_receive || recipient.id === locked.who.organisationId) {
        throw new Answer(422, 'The recipient cannot receive referrals.')
      }
      const transition = openTransition(locked, (t) => t.exchange?.operation === 'send')
      const kind = transition.exchange?.packet ?? 'update'
      if (kind !== 'enquiry' && kind !== 'information') {
        throw new Answer(501, 'The minimal implementation sends packets that amend none.')
      }
      const definition = definitionOf(sops, locked.found)
      if (!purposesAt(definition, locked.found).includes(body.purpose as never)) {
        throw new Answer(422, 'The purpose is not served at this step.')
      }
      const records = locked.records.map(presentRecord)
      const composed = composePacket({ ...locked.found, records }, locked.all, recipient.id, body.purpose, kind, now)
      const transfer = transferBasis({
        sender: locked.who.organisation,
        recipient,
        choice: body.transfer_basis,
        agreements: locked.row.agreements as never,
        consents: locked.all,
        now,
      })
      const id = randomUUID()
      const step: PacketStep = {
        status: 'sent',
        at: now.toISOString(),
        principal_id: locked.who.principalId,
        organisation_id: locked.who.organisationId,
      }
      const packet = {
        id,
        case_id: locked.found.id,
        kind,
        version: Number(locked.row.last_version ?? 0) + 1,
        sender_organisation_id: locked.who.organisationId,
        recipient_organisation_id: recipient.id,
        purpose: body.purpose,
        note: body.note ?? null,
        status: 'sent',
        included_categories: composed.included,
        withheld: composed.withheld,
        content: sealJson(caseKey(locked.found), 'packets.content', id, composed.content),
        content_hash: composed.contentHash,
        consents_by_category: composed.consentsByCategory,
        supersedes: null,
        history: [step],
        acknowledgement: null,
        decision: null,
        questions: null,
        transfer,
        sent_at: now,
        updated_at: now,
      }
      const event = {
        type: 'packet.sent',
        audience: [...new Set([packet.sender_organisation_id, packet.recipient_organisation_id])],
        data: {
          case_reference: locked.found.reference,
          packet_id: id,
          packet_version: packet.version,
          status: 'sent',
          sender_organisation_id: packet.sender_organisation_id,
          recipient_organisation_id: packet.recipient_organisation_id,
          purpose: packet.purpose,
        },
      }
      const audit = {
        resource_type: 'packet',
        resource_id: id,
        details: {
          kind,
          recipient_organisation_id: recipient.id,
          purpose: body.purpose,
          included_categories: composed.included,
          withheld: composed.withheld,
          content_hash: composed.contentHash,
          attachments: [], // the benchmark's packets carry none
          transfer: transfer && { legal_basis: transfer.legal_basis, article: transfer.article },
        },
      }
      const written = await writeChange(
        client,
        request,
        'sendPacket',
        locked,
        transition,
        { counterpartId: recipient.id },
        now,
        {
          row: packet,
          event,
          audit,
          key: claim?.key ?? null,
        },
      )
      const stored: Row = { ...(written.packet as Row), case_reference: locked.found.reference }
      const purposes = purposesAt(definition, written.changed)
      const view = disclosePacket(
        { ...(stored as unknown as Packet), content: composed.content },
        locked.all,
        locked.who.organisationId,
        purposes,
        now,
      )
      return { row: stored, view }
    })
    reply.code(201).header('location', `/v1/packets/${row.id}`).header('etag', `"${row.revision}"`)
    return fullPacket(row, view)
  })

  app.get('/ready', async () => ({ ready: true }))
  return app
}
