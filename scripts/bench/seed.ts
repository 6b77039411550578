// Seeds the benchmark's cases in bulk: each chunk of case numbers is one transaction of a few
// `insert … select` statements over generate_series, never a request or a statement per row.
import pg from 'pg'
import { newCaseKey, sealJson } from '../../src/crypto/case-keys.js'
import type { SopDefinition } from '../../src/sops/definition.js'
import { receiverSlotSql, receiverSlots, senderSlotSql, senderSlots } from './dataset.js'

export interface SeedOptions {
  connectionString: string
  schema: string
  cases: number
  /** Cases per transaction. */
  chunk: number
  /** Transactions in flight at once. */
  workers: number
  procedure: SopDefinition
  now: Date
  onProgress?: (seeded: number) => void
}

const uuidArray = (values: readonly string[]) => `array[${values.map((v) => `'${v}'`).join(', ')}]::uuid[]`
const textArray = (values: readonly string[]) => `array[${values.map((v) => `'${v}'`).join(', ')}]::text[]`

/** Synthetic names by country of return: obviously made up, so nobody mistakes the data set for real cases. */
const names: Record<string, { given: string[]; family: string[] }> = {
  UA: {
    given: ['Olena', 'Iryna', 'Oksana', 'Nataliia', 'Yuliia', 'Svitlana', 'Andrii', 'Taras'],
    family: ['Kovalenko', 'Shevchenko', 'Bondarenko', 'Tkachenko', 'Kravchenko', 'Melnyk', 'Boiko'],
  },
  AL: { given: ['Elira', 'Arta', 'Besa', 'Drita', 'Ardit'], family: ['Hoxha', 'Shehu', 'Dervishi', 'Krasniqi'] },
  MA: { given: ['Fatima', 'Khadija', 'Amina', 'Salma', 'Youssef'], family: ['El Amrani', 'Benali', 'Tazi', 'Alaoui'] },
}

function byCountry(pick: (list: { given: string[]; family: string[] }) => string[], index: string) {
  const branches = Object.entries(names).map(
    ([country, list]) => `when '${country}' then (${textArray(pick(list))})[1 + ${index} % ${pick(list).length}]`,
  )
  return `case c.country ${branches.join(' ')} end`
}

const conditions = ['"post-traumatic stress"', '"hypertension"', '"asthma"', '"type 2 diabetes"', '"anaemia"']
const medications = ['"sertraline 50 mg"', '"amlodipine 5 mg"', '"salbutamol inhaler"', '"metformin 500 mg"', '']

/** An enquiry never carries identity or contact data, whatever the consent. */
const enquiryWithheld =
  '[{"category": "identity", "reason": "not_needed_for_purpose"}, {"category": "contact", "reason": "not_needed_for_purpose"}]'

const iso = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`

/**
 * One row per case of the chunk with every fact the inserts share. The JSON is written as canonical
 * text (RFC 8785: sorted keys, no spaces), so that the packet's content hash is the one the service
 * computes for the same content.
 */
function chunkTable(procedure: SopDefinition): string {
  const due = (step: string) => {
    const deadline = procedure.steps[step]?.deadline
    if (!deadline) throw new Error(`${procedure.id} v${procedure.version} has no deadline for the step ${step}`)
    return `interval '${deadline}'`
  }
  return `
    create temp table chunk on commit drop as
    select n, c.*, t.*, f.*, d.*,
      '{"profile":' || d.shared_profile || ',"records":[],"sections":{"health":' || d.health || '}}' as content,
      '{"contact":' || d.contact || ',"health":' || d.health || ',"identity":' || d.identity || '}' as sections,
      case when c.waiting then t.decided_at + ${due('return_decided')} else c.referred_at + ${due('referral_sent')} end
        as step_due_at
    from generate_series($1::bigint, $2::bigint) as n
    cross join lateral (
      select
        md5('case-' || n)::uuid as case_id,
        md5('consent-' || n)::uuid as consent_id,
        md5('packet-' || n)::uuid as packet_id,
        (${uuidArray(senderSlots.map((s) => s.organisationId))})[${senderSlotSql}] as sender,
        (${uuidArray(senderSlots.map((s) => s.principalId))})[${senderSlotSql}] as sender_principal,
        (${uuidArray(receiverSlots.map((s) => s.organisationId))})[${receiverSlotSql}] as receiver,
        (${uuidArray(receiverSlots.map((s) => s.principalId))})[${receiverSlotSql}] as receiver_principal,
        (${textArray(receiverSlots.map((s) => s.country))})[${receiverSlotSql}] as country,
        (${textArray(receiverSlots.map((s) => s.language))})[${receiverSlotSql}] as language,
        n % 3 = 0 as waiting,
        -- Of the cases that moved on, a half have their enquiry still unread by the recipient.
        n % 3 = 1 as unreceived,
        -- Opened over the past half year in the order of n, so that seq order is creation order.
        $4::timestamptz - interval '170 days' + (n::float8 / $3::float8) * interval '164 days' as opened_at,
        -- Referred within the past four days, so that every step's deadline lies ahead.
        $4::timestamptz - ((n % 96) + 1) * interval '1 hour' as referred_at
    ) as c
    cross join lateral (
      select
        c.referred_at - interval '1 day' as decided_at,
        c.opened_at + (c.referred_at - interval '1 day' - c.opened_at) / 2 as consented_at,
        c.referred_at - interval '10 minutes' as sent_at,
        c.referred_at + interval '20 minutes' as received_at,
        date '1961-01-01' + ((n * 7919) % 13500)::integer as born_on,
        'PL-' || c.country || '-' || to_char(c.opened_at, 'YYYY') || '-' || lpad(n::text, greatest(6, length(n::text)), '0')
          as reference
    ) as t
    cross join lateral (
      select
        case when t.born_on > $4::date - interval '25 years' then '18_24'
             when t.born_on > $4::date - interval '35 years' then '25_34'
             when t.born_on > $4::date - interval '50 years' then '35_49'
             when t.born_on > $4::date - interval '65 years' then '50_64'
             else '65_plus' end as age_band,
        case when n % 5 = 0 then 'male' else 'female' end as sex,
        case when n % 4 = 0 then '["sgbv_survivor","victim_of_trafficking"]' else '["victim_of_trafficking"]' end
          as vulnerabilities
    ) as f
    cross join lateral (
      select
        format('{"age_band":"%s","country_of_return":"%s","languages":["%s"],"nationality":"%s","sex":"%s","vulnerabilities":%s}',
          f.age_band, c.country, c.language, c.country, f.sex, f.vulnerabilities) as profile,
        -- What an enquiry carries of the profile: the same without nationality.
        format('{"age_band":"%s","country_of_return":"%s","languages":["%s"],"sex":"%s","vulnerabilities":%s}',
          f.age_band, c.country, c.language, f.sex, f.vulnerabilities) as shared_profile,
        format('{"date_of_birth":"%s","document":{"issuing_country":"%s","number":"%s","type":"passport"},"family_name":"%s","given_name":"%s"}',
          to_char(t.born_on, 'YYYY-MM-DD'), c.country, c.country || lpad(((n * 104729) % 10000000)::text, 7, '0'),
          ${byCountry((list) => list.family, '(n / 7)')}, ${byCountry((list) => list.given, 'n')}
        ) as identity,
        format('{"conditions":[%s],"medications":[%s],"notes":"%s"}',
          (${textArray(conditions)})[1 + n % ${conditions.length}],
          (${textArray(medications)})[1 + n % ${medications.length}],
          'Synthetic benchmark case ' || n || ': fit to travel; needs a follow-up with a psychologist within two weeks of arrival and prefers a female doctor.'
        ) as health,
        format('{"phone":"+48 5%s","preferred_language":"%s","safe_contact_instructions":"%s"}',
          lpad(((n * 7477) % 100000000)::text, 8, '0'), c.language,
          'Call only between 10:00 and 16:00 on weekdays; ask for the counsellor, never leave a message.'
        ) as contact
    ) as d`
}

/**
 * Case events go to the parties of the moment (the sender, until the recipient acknowledges the enquiry);
 * packet events to the packet's sender and recipient. Newer schemas also keep the audience on the
 * event itself (`events.organisation_ids`); it is filled where the column exists.
 */
function events(initial: string, packetData: (status: string) => string, withAudienceColumn: boolean): string {
  const audienceColumn = withAudienceColumn ? ', organisation_ids' : ''
  const audience = (both: boolean) =>
    withAudienceColumn ? (both ? ', array[sender, receiver]' : ', array[sender]') : ''
  return `insert into events (id, seq, type, occurred_at, case_id, data${audienceColumn})
     overriding system value
     select md5('event-' || n || '-' || e.k)::uuid, (n - 1) * 6 + e.k, e.type, e.at, case_id, e.data${audienceColumn}
     from chunk cross join lateral (values
       (1, 'case.opened', opened_at, jsonb_build_object('case_reference', reference, 'version', 1, 'step', '${initial}',
         'lead_organisation_id', sender)${audience(false)}),
       (2, 'consent.recorded', consented_at, jsonb_build_object('case_reference', reference, 'consent_id', consent_id)
         ${audience(false)}),
       (3, 'case.transitioned', decided_at, jsonb_build_object('case_reference', reference, 'version', 2,
         'action', 'decide_return', 'from_step', '${initial}', 'to_step', 'return_decided', 'lead_organisation_id', sender)
         ${audience(false)}),
       (4, 'packet.sent', sent_at, ${packetData('sent')}${audience(true)}),
       (5, 'case.transitioned', referred_at, jsonb_build_object('case_reference', reference, 'version', 4,
         'action', 'send_referral', 'from_step', 'return_decided', 'to_step', 'referral_sent',
         'lead_organisation_id', sender)${audience(false)}),
       (6, 'packet.received', received_at, ${packetData('received')}${audience(true)})
     ) as e (k, type, at, data${audienceColumn})
     where e.k < 4 or (not waiting and (e.k < 6 or not unreceived))`
}

function inserts(procedure: SopDefinition, withAudienceColumn: boolean): string[] {
  const initial = procedure.initial_step
  const packetData = (status: string) => `jsonb_build_object('case_reference', reference, 'packet_id', packet_id,
      'packet_version', 1, 'status', '${status}', 'sender_organisation_id', sender,
      'recipient_organisation_id', receiver, 'purpose', 'return_assistance')`
  const provisions = `jsonb_build_array(jsonb_build_object('categories', jsonb_build_array('identity', 'health'),
      'recipients', jsonb_build_array(receiver), 'purposes', jsonb_build_array('return_assistance')))`
  return [
    `insert into cases (id, seq, reference, profile, sections, sending_organisation_id,
       receiving_organisation_id, lead_organisation_id, version, created_at, updated_at, sop_id, sop_version, step,
       previous_step, step_entered_at, step_due_at, data_key_id, data_key)
     overriding system value
     select case_id, n, reference, profile::jsonb, sealed_sections, sender, null, sender,
       case when waiting then 3 else 4 end, opened_at, case when waiting then sent_at else referred_at end,
       '${procedure.id}', ${procedure.version}, case when waiting then 'return_decided' else 'referral_sent' end,
       case when waiting then '${initial}' else 'return_decided' end,
       case when waiting then decided_at else referred_at end, step_due_at, data_key_id, data_key
     from chunk`,
    `insert into case_parties (case_id, organisation_id, role, since)
     select case_id, p.organisation_id, p.role, p.since
     from chunk cross join lateral (values (sender, 'sending', opened_at)) as p (organisation_id, role, since)`,
    `insert into consents (id, case_id, given_at, method, language, interpreter, guardian, child_views, provisions,
       expires_at, recorded_at, recorded_by_principal_id, recorded_by_organisation_id)
     select consent_id, case_id, consented_at - interval '15 minutes', case when n % 4 = 0 then 'oral' else 'written' end,
       language,
       sealed_interpreter, null, null, ${provisions}, null, consented_at, sender_principal, sender
     from chunk`,
    `insert into case_transitions (id, case_id, action, from_step, to_step, at, principal_id, organisation_id,
       lead_organisation_id)
     overriding system value
     select (n - 1) * 3 + s.k, case_id, s.action, s.from_step, s.to_step, s.at, sender_principal, sender, sender
     from chunk cross join lateral (values
       (1, 'open', null::text, '${initial}', opened_at),
       (2, 'decide_return', '${initial}', 'return_decided', decided_at),
       (3, 'send_referral', 'return_decided', 'referral_sent', referred_at)
     ) as s (k, action, from_step, to_step, at)
     where s.k < 3 or not waiting`,
    `insert into packets (id, seq, case_id, kind, version, sender_organisation_id, recipient_organisation_id, purpose, note,
       status, included_categories, withheld, content, content_hash, consents_by_category, supersedes, history,
       revision, sent_at, updated_at)
     overriding system value
     select packet_id, n, case_id, 'enquiry', 1, sender, receiver, 'return_assistance', null,
       case when unreceived then 'sent' else 'received' end, '{health}', '${enquiryWithheld}', sealed_content,
       encode(sha256(convert_to(content, 'UTF8')), 'hex'),
       jsonb_build_object('health', jsonb_build_array(consent_id)), null,
       jsonb_build_array(
         jsonb_build_object('status', 'sent', 'at', ${iso('sent_at')}, 'principal_id', sender_principal,
           'organisation_id', sender))
       || case when unreceived then '[]'::jsonb else jsonb_build_array(
         jsonb_build_object('status', 'received', 'at', ${iso('received_at')}, 'principal_id', receiver_principal,
           'organisation_id', receiver)) end,
       case when unreceived then 1 else 2 end, sent_at, case when unreceived then sent_at else received_at end
     from chunk
     where not waiting`,
    events(initial, packetData, withAudienceColumn),
    `insert into event_audiences (organisation_id, txid, seq, event_id)
     select a.organisation_id, pg_current_xact_id(), (n - 1) * 6 + a.k, md5('event-' || n || '-' || a.k)::uuid
     from chunk cross join lateral (values
       (1, sender), (2, sender), (3, sender), (4, sender), (4, receiver), (5, sender), (6, sender), (6, receiver)
     ) as a (k, organisation_id)
     where a.k < 4 or (not waiting and (a.k < 6 or not unreceived))`,
    `insert into audit_records (id, at, action, principal_id, organisation_id, request_id, case_id, resource_type,
       resource_id, details)
     overriding system value
     select (n - 1) * 6 + r.k, r.at, r.action, r.principal_id, r.organisation_id,
       md5('request-' || n || '-' || r.k)::uuid::text, case_id, r.resource_type, r.resource_id, r.details
     from chunk cross join lateral (values
       (1, opened_at, 'createCase', sender_principal, sender, 'case', case_id,
         jsonb_build_object('reference', reference, 'sections', '["identity", "contact", "health"]'::jsonb)),
       (2, consented_at, 'recordConsent', sender_principal, sender, 'consent', consent_id,
         jsonb_build_object('provisions', ${provisions})),
       (3, decided_at, 'performTransition', sender_principal, sender, 'case', case_id,
         jsonb_build_object('action', 'decide_return', 'from', '${initial}', 'to', 'return_decided',
           'lead_organisation_id', sender)),
       (4, sent_at, 'sendPacket', sender_principal, sender, 'packet', packet_id,
         jsonb_build_object('recipient_organisation_id', receiver, 'purpose', 'return_assistance',
           'kind', 'enquiry', 'included_categories', '["health"]'::jsonb, 'withheld', '${enquiryWithheld}'::jsonb,
           'content_hash', encode(sha256(convert_to(content, 'UTF8')), 'hex'))),
       (5, referred_at, 'performTransition', sender_principal, sender, 'case', case_id,
         jsonb_build_object('action', 'send_referral', 'from', 'return_decided', 'to', 'referral_sent',
           'lead_organisation_id', sender)),
       (6, received_at, 'getPacket', receiver_principal, receiver, 'packet', packet_id,
         jsonb_build_object('withdrawn_categories', '[]'::jsonb))
     ) as r (k, at, action, principal_id, organisation_id, resource_type, resource_id, details)
     where r.k < 4 or (not waiting and (r.k < 6 or not unreceived))`,
  ]
}

/** After explicit ids, the identity sequences and the reference counter continue past the seeded rows. */
const sequenceFixes = [
  `select setval(pg_get_serial_sequence('cases', 'seq'), greatest((select max(seq) from cases), 1))`,
  `select setval(pg_get_serial_sequence('packets', 'seq'), greatest((select max(seq) from packets), 1))`,
  `select setval(pg_get_serial_sequence('events', 'seq'), greatest((select max(seq) from events), 1))`,
  `select setval(pg_get_serial_sequence('audit_records', 'id'), greatest((select max(id) from audit_records), 1))`,
  `select setval(pg_get_serial_sequence('case_transitions', 'id'), greatest((select max(id) from case_transitions), 1))`,
  `select setval('case_reference_numbers', greatest((select max(seq) from cases), 1))`,
]

/**
 * Encryption at rest, as the service stores a case (src/crypto/case-keys.ts): a data key per case,
 * wrapped under the current master key, sealing the case's sections, its consent's free text (the
 * interpreter) and its packet's content; else the service would seal the consents one by one when
 * it starts. AES-GCM is not in PostgreSQL, so the chunk's rows make one trip through this process.
 */
async function sealChunk(client: pg.PoolClient): Promise<void> {
  const { rows } = await client.query<{
    n: number
    case_id: string
    consent_id: string
    packet_id: string
    sections: string
    content: string
  }>('select n, case_id, consent_id, packet_id, sections, content from chunk')
  const sealed = rows.map((row) => {
    const key = newCaseKey(row.case_id)
    const interpreter = Number(row.n) % 2 === 0 ? { used: true, name: 'Interpreter (benchmark)' } : { used: false }
    return {
      id: row.case_id,
      sections: JSON.stringify(sealJson(key.key, 'cases.sections', row.case_id, JSON.parse(row.sections))),
      keyId: key.data_key_id,
      dataKey: JSON.stringify(key.data_key),
      content: JSON.stringify(sealJson(key.key, 'packets.content', row.packet_id, JSON.parse(row.content))),
      interpreter: JSON.stringify(sealJson(key.key, 'consents.interpreter', row.consent_id, interpreter)),
    }
  })
  await client.query(
    'alter table chunk add column sealed_sections jsonb, add column data_key_id uuid, add column data_key jsonb, add column sealed_content jsonb, add column sealed_interpreter jsonb',
  )
  await client.query(
    `update chunk set sealed_sections = v.sections, data_key_id = v.key_id, data_key = v.data_key,
       sealed_content = v.content, sealed_interpreter = v.interpreter
     from unnest($1::uuid[], $2::jsonb[], $3::uuid[], $4::jsonb[], $5::jsonb[], $6::jsonb[])
       as v (id, sections, key_id, data_key, content, interpreter)
     where chunk.case_id = v.id`,
    [
      sealed.map((row) => row.id),
      sealed.map((row) => row.sections),
      sealed.map((row) => row.keyId),
      sealed.map((row) => row.dataKey),
      sealed.map((row) => row.content),
      sealed.map((row) => row.interpreter),
    ],
  )
}

export async function seedCases(options: SeedOptions): Promise<void> {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.workers,
    options: `-c search_path="${options.schema}" -c synchronous_commit=off`,
  })
  const column = await pool.query(
    `select 1 from information_schema.columns
     where table_schema = $1 and table_name = 'events' and column_name = 'organisation_ids'`,
    [options.schema],
  )
  const create = chunkTable(options.procedure)
  const statements = inserts(options.procedure, (column.rowCount ?? 0) > 0)
  const chunks: [number, number][] = []
  for (let first = 1; first <= options.cases; first += options.chunk) {
    chunks.push([first, Math.min(options.cases, first + options.chunk - 1)])
  }
  let seeded = 0
  const work = async () => {
    for (let next = chunks.shift(); next; next = chunks.shift()) {
      const [first, last] = next
      const client = await pool.connect()
      try {
        await client.query('begin')
        await client.query(create, [first, last, options.cases, options.now])
        await sealChunk(client)
        for (const statement of statements) await client.query(statement)
        await client.query('commit')
      } catch (error) {
        await client.query('rollback').catch(() => {})
        throw error
      } finally {
        client.release()
      }
      seeded += last - first + 1
      options.onProgress?.(seeded)
    }
  }
  try {
    await Promise.all(Array.from({ length: options.workers }, work))
    for (const statement of sequenceFixes) await pool.query(statement)
  } finally {
    await pool.end()
  }
}

/**
 * Fresh statistics for the planner. The vacuum also sets the visibility map, so that autovacuum does
 * not start on the freshly loaded tables in the middle of a load run. Only the bench schema's
 * tables: a bare VACUUM would walk every schema of the database, other people's included.
 */
export async function vacuumAnalyze(connectionString: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString })
  await client.connect()
  try {
    const { rows } = await client.query<{ name: string }>(
      `select format('%I.%I', schemaname, tablename) as name from pg_tables where schemaname = $1`,
      [schema],
    )
    if (rows.length > 0) await client.query(`vacuum (analyze) ${rows.map((row) => row.name).join(', ')}`)
  } finally {
    await client.end()
  }
}
