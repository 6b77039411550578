import { randomBytes } from 'node:crypto'
import { type AddressInfo, connect } from 'node:net'
import { Writable } from 'node:stream'
import type { InjectOptions } from 'fastify'
import { sql } from 'kysely'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { readMigrations } from '../src/db/migrate.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { seedDemoIfEmpty } from '../src/demo/seed.js'
import { createLogger } from '../src/logger.js'
import { demoKeys, openTestDatabase } from './fixtures/app.js'

const sender = demoKeys.demoiomplcw1 as string
const recipient = demoKeys.demoiomuacw1 as string

/** Every personal value of this test carries the token: finding it in the log means a leak. */
const token = `canary${randomBytes(6).toString('hex')}`
const canary = (what: string) => `${what}-${token}`

const sections = {
  identity: {
    given_name: canary('Olena'),
    family_name: canary('Kovalenko'),
    other_names: [canary('Lena')],
    place_of_birth: canary('Kharkiv'),
    document: { type: 'passport', number: canary('FX123456') },
    notes: canary('identity note'),
  },
  contact: {
    phone: canary('+48 600 100 200'),
    email: `${token}@example.org`,
    address: canary('ul. Hoza 5, Warszawa'),
    safe_contact_instructions: canary('call after 18:00 only'),
  },
  health: {
    conditions: [canary('post-traumatic stress')],
    medications: [canary('sertraline')],
    notes: canary('health'),
  },
  family: { household: [{ relationship: 'son', name: canary('Taras'), age: 7 }] },
  legal: { identified_by: canary('Border Guard officer'), residence_status: canary('temporary') },
}

t.test(`no personal data reaches the log, even inside a database error (${token})`, async (t) => {
  const lines: string[] = []
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean))
      done()
    },
  })
  const database = await openTestDatabase(t)
  await seedDemoIfEmpty(database.db)
  const app = await buildApp({
    config: { ...loadConfig({}), logLevel: 'trace' },
    database,
    migrations: await readMigrations(),
    logger: createLogger('trace', destination),
  })
  t.teardown(() => app.close())
  const inject = (key: string, options: InjectOptions) =>
    app.inject({ ...options, headers: { authorization: `Bearer ${key}`, ...(options.headers ?? {}) } })

  t.comment('a referral full of personal data')
  const opened = await inject(sender, { method: 'POST', url: '/v1/cases', payload: { profile, sections } })
  t.equal(opened.statusCode, 201, 'the case is opened')
  const caseId = opened.json().id as string
  const consent = await inject(sender, {
    method: 'POST',
    url: `/v1/cases/${caseId}/consents`,
    payload: {
      given_at: new Date(Date.now() - 3_600_000).toISOString(),
      method: 'oral',
      language: 'uk',
      interpreter: { used: true, name: canary('interpreter') },
      guardian: null,
      provisions: [
        {
          categories: ['identity', 'contact', 'health', 'family', 'legal'],
          recipients: [demoOrganisationIds.iomUkraine],
          purposes: ['return_assistance'],
        },
      ],
      expires_at: null,
    },
  })
  t.equal(consent.statusCode, 201, 'consent is recorded')
  const decision = await inject(sender, {
    method: 'POST',
    url: `/v1/cases/${caseId}/records`,
    payload: { kind: 'return_decision', data: { voluntary: true, informed: true, summary: canary('decision') } },
  })
  t.equal(decision.statusCode, 201, 'the return decision is recorded')
  const beforeDecision = await inject(sender, { method: 'GET', url: `/v1/cases/${caseId}` })
  const decided = await inject(sender, {
    method: 'POST',
    url: `/v1/cases/${caseId}/transitions`,
    headers: { 'if-match': String(beforeDecision.headers.etag) },
    payload: { action: 'decide_return', note: canary('transition note') },
  })
  t.ok(decided.statusCode < 500, 'the procedure moves on where it has that step')
  const packet = await inject(sender, {
    method: 'POST',
    url: `/v1/cases/${caseId}/packets`,
    headers: { 'idempotency-key': canary('idempotency') },
    payload: {
      recipient_organisation_id: demoOrganisationIds.iomUkraine,
      purpose: 'return_assistance',
      note: canary('note'),
    },
  })
  t.equal(packet.statusCode, 201, 'a packet is sent')
  const read = await inject(recipient, { method: 'GET', url: `/v1/packets/${packet.json().id}` })
  t.equal(read.statusCode, 200, 'and read')
  const current = await inject(sender, { method: 'GET', url: `/v1/cases/${caseId}` })
  t.equal(current.statusCode, 200)
  t.match(current.body, token, 'the case holds the personal data')

  t.comment('bad input that the service refuses')
  for (const payload of [
    JSON.stringify({ profile, sections: { identity: { given_name: `${canary('nul')}\u0000` } } }),
    JSON.stringify({ profile, sections: { identity: { given_name: canary('surrogate') } } }).replace(
      token,
      `${token}\\ud800`,
    ),
    `{"profile": {}, "sections": {"identity": {"given_name": "${canary('broken json')}"`,
    `{"profile": ${canary('not json')}}`,
  ]) {
    const refused = await inject(sender, {
      method: 'POST',
      url: '/v1/cases',
      headers: { 'content-type': 'application/json' },
      payload,
    })
    t.equal(refused.statusCode, 400, 'is a 400')
  }

  t.comment('a database that refuses what it is given')
  // Sections reach the database sealed: the probes refuse what they see there, a row that holds them.
  await sql`alter table cases add constraint log_privacy_probe check (sections::text not like '%A256GCM%') not valid`.execute(
    database.db,
  )
  await sql`create function log_privacy_probe() returns trigger language plpgsql as $$
    begin
      perform (new.sections ->> 'ct')::jsonb;
      return new;
    end $$`.execute(database.db)
  await sql`create trigger log_privacy_probe before update on cases for each row execute function log_privacy_probe()`.execute(
    database.db,
  )
  const constraint = await inject(sender, {
    method: 'POST',
    url: '/v1/cases',
    payload: { profile, sections: { ...sections, health: { notes: `refuse-me ${canary('health')}` } } },
  })
  t.equal(constraint.statusCode, 500, 'a check constraint refuses the new case')
  const json = await inject(sender, {
    method: 'PATCH',
    url: `/v1/cases/${caseId}`,
    headers: { 'if-match': String(current.headers.etag) },
    payload: { sections: { health: { notes: canary('not json but parsed as json') } } },
  })
  t.equal(json.statusCode, 500, 'a trigger fails to read the new sections')

  t.comment('headers too large for the HTTP parser, which keeps the raw bytes in its error')
  await app.listen({ host: '127.0.0.1', port: 0 })
  const socket = connect((app.server.address() as AddressInfo).port, '127.0.0.1')
  socket.write(
    `POST /v1/cases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${sender}\r\nX-Note: ${canary('header').repeat(1000)}\r\n\r\n`,
  )
  for await (const _chunk of socket) {
  }

  const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
  const errors = entries.map((entry) => entry.err as Record<string, unknown> | undefined).filter((err) => err)
  t.ok(entries.length > 20, `the log was captured (${entries.length} lines)`)
  t.ok(
    errors.some((err) => err?.code === '23514' && err.constraint === 'log_privacy_probe' && err.table === 'cases'),
    'the check violation is logged by its SQLSTATE, constraint and table',
  )
  t.ok(
    errors.some((err) => err?.code === '22P02'),
    'the failed JSON read is logged by its SQLSTATE',
  )
  t.ok(
    errors.some((err) => err?.code === 'HPE_HEADER_OVERFLOW'),
    'the refused headers are logged',
  )
  for (const err of errors) {
    for (const property of ['detail', 'where', 'query', 'params', 'internalQuery', 'hint', 'rawPacket']) {
      t.notOk(property in (err as object), `no ${property} in a logged error`)
    }
  }
  const leaks = lines.filter((line) => line.includes(token))
  t.same(leaks, [], 'no personal value appears in the log')
  for (const key of [sender, recipient]) {
    const secret = key.split('_').slice(2).join('_')
    t.notOk(
      lines.some((line) => line.includes(secret)),
      'no API key secret appears in the log',
    )
  }
})

const profile = { age_band: '25_34', sex: 'female', nationality: 'UA', country_of_return: 'UA', vulnerabilities: [] }
