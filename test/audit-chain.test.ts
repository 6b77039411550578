import { stat } from 'node:fs/promises'
import path from 'node:path'
import { compactVerify, createLocalJWKSet, exportJWK, exportPKCS8, generateKeyPair } from 'jose'
import { sql } from 'kysely'
import t, { type Test } from 'tap'
import { auditSigner, EMBEDDED_KEY_FILE, resolveAuditSigningKey } from '../src/audit/signing-key.js'
import type { Clock } from '../src/clock.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { demoKeys, startTestApp, type TestApp, testDatabaseUrl } from './fixtures/app.js'
import { auditSealer } from './fixtures/audit-sealer.js'
import { type FeedEvent, feedUntil } from './fixtures/feed.js'
import { acceptReferral, openReferral, recipient, sender } from './fixtures/referral.js'

const dpo = demoKeys.demoiompldpo as string
const moroccoCaseworker = demoKeys.demoiommacw1 as string

class TestClock implements Clock {
  #now = new Date()
  now(): Date {
    return new Date(this.#now)
  }
  advance(minutes: number): void {
    this.#now = new Date(this.#now.getTime() + minutes * 60_000)
  }
}

async function newSigningKey(): Promise<string> {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
  return JSON.stringify(await exportJWK(privateKey))
}

interface Verification {
  valid: boolean
  sealed_batches: number
  sealed_records: number
  unsealed_records: number
  checkpoints_verified: number
  last_checkpoint: { seq: number; batch_seq: number; batch_hash: string; key_id: string } | null
  first_failure: { problem: string; batch_seq: number; record_id: string | null; detail: string } | null
}

/** A service with a signing key, a referral taken to acceptance, and every audit record sealed. */
async function sealedReferral(t: Test) {
  const clock = new TestClock()
  const signingKey = await newSigningKey()
  const app = await startTestApp(t, { auditSigningKey: signingKey, auditCheckpointMinutes: 60 }, clock)
  const referral = await openReferral(t, app)
  await acceptReferral(t, app, referral)
  const sealer = await auditSealer(t, app, clock, { signingKey })
  t.equal(await sealer.sealAll(), 0, 'every audit record of the referral is sealed')
  return { app, clock, sealer, referral }
}

async function verify(app: TestApp): Promise<Verification> {
  const response = await app.request({ method: 'GET', url: '/v1/audit/verification', key: dpo })
  if (response.statusCode !== 200) throw new Error(`verification answered ${response.statusCode}: ${response.body}`)
  return response.json() as Verification
}

/** The audit records of a case in the chain's order, as an administrator with SQL sees them. */
async function auditRows(app: TestApp, caseId: string) {
  return (
    await sql<{ id: string; txid: string; action: string; organisation_id: string }>`
      select id::text as id, txid::text as txid, action, organisation_id::text as organisation_id
      from audit_records where case_id = ${caseId} order by audit_records.txid, audit_records.id
    `.execute(app.database.db)
  ).rows
}

/** What an administrator with SQL can do: lift the append-only trigger, then write. */
async function tamper(app: TestApp, statement: ReturnType<typeof sql>) {
  await app.database.db.transaction().execute(async (trx) => {
    await sql`alter table audit_records disable trigger audit_records_append_only`.execute(trx)
    await statement.execute(trx)
    await sql`alter table audit_records enable trigger audit_records_append_only`.execute(trx)
  })
}

t.test('an untouched trail verifies after a referral, and only the DPO may ask', async (t) => {
  const { app } = await sealedReferral(t)
  const total = Number(
    (await sql<{ count: string }>`select count(*)::text as count from audit_records`.execute(app.database.db)).rows[0]
      ?.count,
  )
  t.ok(total >= 10, `the referral left its audit trail (${total} records)`)
  const verification = await verify(app)
  t.equal(verification.valid, true, 'the chain holds')
  t.equal(verification.first_failure, null, 'and no failure is named')
  t.equal(verification.sealed_records, total, 'every record is sealed')
  t.equal(verification.unsealed_records, 0)
  t.equal(verification.checkpoints_verified, 1, 'the first sealing signed a checkpoint, which verifies')
  for (const key of [sender, recipient, demoKeys.demohubadmin as string]) {
    const refused = await app.request({ method: 'GET', url: '/v1/audit/verification', key })
    t.equal(refused.statusCode, 403, 'a caseworker or the hub admin may not run it')
  }
})

t.test('a record edited with SQL is named as changed', async (t) => {
  const { app, referral } = await sealedReferral(t)
  const rows = await auditRows(app, referral.caseId)
  // IOM Ukraine's read of the enquiry: someone wants that read to look like IOM Poland's own.
  const read = rows.find((row) => row.action === 'getPacket' && row.organisation_id === demoOrganisationIds.iomUkraine)
  if (!read) throw new Error('the recipient read the enquiry: its audit record must exist')
  t.not(read.id, rows[0]?.id, 'the record edited is not the first of the trail')
  await tamper(
    app,
    sql`update audit_records set organisation_id = ${demoOrganisationIds.iomPoland} where id = ${read.id}::bigint`,
  )
  const verification = await verify(app)
  t.equal(verification.valid, false, 'the chain no longer holds')
  t.match(verification.first_failure, { problem: 'record_changed', batch_seq: 1, record_id: read.id })
})

t.test('a timestamp moved by one microsecond is a change', async (t) => {
  const { app, referral } = await sealedReferral(t)
  const rows = await auditRows(app, referral.caseId)
  const target = rows[3]
  if (!target) throw new Error('the referral leaves more than three audit records')
  await tamper(app, sql`update audit_records set at = at + interval '1 microsecond' where id = ${target.id}::bigint`)
  t.match((await verify(app)).first_failure, { problem: 'record_changed', record_id: target.id })
})

t.test('a deleted record is named as deleted', async (t) => {
  const { app, referral } = await sealedReferral(t)
  const rows = await auditRows(app, referral.caseId)
  const target = rows[5]
  if (!target) throw new Error('the referral leaves more than five audit records')
  await tamper(app, sql`delete from audit_records where id = ${target.id}::bigint`)
  const verification = await verify(app)
  t.equal(verification.valid, false)
  t.match(verification.first_failure, { problem: 'record_deleted', batch_seq: 1, record_id: target.id })
})

t.test('a record inserted into a sealed range is named as inserted', async (t) => {
  const { app, referral } = await sealedReferral(t)
  const rows = await auditRows(app, referral.caseId)
  const first = rows[0]
  if (!first) throw new Error('the referral has audit records')
  // A read backdated into the transaction that opened the case, long sealed.
  const inserted = (
    await sql<{ id: string }>`
      insert into audit_records (txid, action, principal_id, organisation_id, request_id, case_id, resource_type, resource_id)
      values (${first.txid}::xid8, 'getCase', '00000000-0000-4000-8001-000000000101', ${demoOrganisationIds.iomPoland},
              'backdated', ${referral.caseId}, 'case', ${referral.caseId})
      returning id::text as id
    `.execute(app.database.db)
  ).rows[0]
  const verification = await verify(app)
  t.equal(verification.valid, false)
  t.match(verification.first_failure, { problem: 'record_inserted', batch_seq: 1, record_id: inserted?.id })
})

t.test('a sealed batch rewritten to match an edited record still fails', async (t) => {
  const { app, referral } = await sealedReferral(t)
  const rows = await auditRows(app, referral.caseId)
  const target = rows[2]
  if (!target) throw new Error('the referral has audit records')
  await tamper(app, sql`update audit_records set action = 'listCases' where id = ${target.id}::bigint`)
  // The administrator recomputes the record's hash and writes it into the batch: the batch's seal breaks.
  const { recordHash } = await import('../src/audit/chain.js')
  const { recordContentColumns } = await import('../src/audit/seal.js')
  const content = (
    await sql<Parameters<typeof recordHash>[0]>`
      select ${recordContentColumns} from audit_records where id = ${target.id}::bigint
    `.execute(app.database.db)
  ).rows[0]
  if (!content) throw new Error('the record is there')
  await sql`
    update audit_batches set record_hashes[array_position(record_ids, ${target.id}::bigint)] = ${recordHash(content)}
    where ${target.id}::bigint = any(record_ids)
  `.execute(app.database.db)
  t.match((await verify(app)).first_failure, { problem: 'batch_altered', batch_seq: 1, record_id: null })
})

t.test('checkpoints: signed, published to every partner, verifiable with the published key', async (t) => {
  const { app, clock, sealer, referral } = await sealedReferral(t)
  const keys = await app.request({ method: 'GET', url: '/.well-known/jwks.json' })
  t.equal(keys.statusCode, 200, 'the key set needs no key')
  const jwks = createLocalJWKSet(keys.json())

  /** The checkpoints in the feed of `key`, once it shows `count` of them. */
  const checkpointsOf = async (key: string, count = 1) => {
    const checkpoints = (events: FeedEvent[]) => events.filter((event) => event.type === 'audit.checkpoint')
    return checkpoints(await feedUntil(app.request, key, (events) => checkpoints(events).length >= count))
  }
  const ofUkraine = await checkpointsOf(recipient)
  const ofMorocco = await checkpointsOf(moroccoCaseworker)
  t.equal(ofUkraine.length, 1, 'IOM Ukraine received the checkpoint')
  t.equal(ofMorocco.length, 1, 'and so did IOM Morocco, which has no part in the case')
  const event = ofUkraine[0] as (typeof ofUkraine)[number]
  t.equal(event.case_id, null, 'a checkpoint concerns no case')

  // As a partner would: verify the JWS with the published key set, then compare what it says.
  const { payload, protectedHeader } = await compactVerify(String(event.data.jws), jwks)
  const claims = JSON.parse(new TextDecoder().decode(payload))
  t.equal(protectedHeader.alg, 'EdDSA')
  t.equal(protectedHeader.kid, event.data.key_id, 'the header names the key')
  t.match(claims, { checkpoint_seq: 1, batch_seq: event.data.batch_seq, batch_hash: event.data.batch_hash })
  const verification = await verify(app)
  t.equal(verification.last_checkpoint?.batch_hash, claims.batch_hash, 'the checkpoint signs the head the DPO verified')

  const tampered = `${String(event.data.jws).slice(0, -4)}AAAA`
  await t.rejects(compactVerify(tampered, jwks), 'a forged signature does not verify')

  // More audit records: sealed at once, but the next checkpoint waits for the interval.
  const readCase = async () => {
    const read = await app.request({ method: 'GET', url: `/v1/cases/${referral.caseId}`, key: sender })
    t.equal(read.statusCode, 200, 'IOM Poland reads the case: one more audit record')
  }
  await readCase()
  t.equal(await sealer.sealAll(), 0, 'the new records are sealed')
  t.equal((await checkpointsOf(recipient)).length, 1, 'with no new checkpoint within the hour')
  clock.advance(61)
  await readCase()
  await sealer.sealAll()
  const later = await checkpointsOf(recipient, 2)
  t.equal(later.length, 2, 'an hour later the next checkpoint is signed')
  const second = await compactVerify(String(later[1]?.data.jws), jwks)
  t.match(JSON.parse(new TextDecoder().decode(second.payload)), { checkpoint_seq: 2 })
  t.equal((await verify(app)).checkpoints_verified, 2)
})

t.test(
  'a record that commits after a later one was sealed takes its place after it, without waiting',
  { skip: testDatabaseUrl ? false : 'PGlite runs one transaction at a time: this needs PostgreSQL' },
  async (t) => {
    const { app, sealer } = await sealedReferral(t)
    const db = app.database.db
    const insertRead = (trx: Parameters<Parameters<ReturnType<typeof db.transaction>['execute']>[0]>[0], tag: string) =>
      sql<{ id: string; txid: string }>`
        insert into audit_records (action, principal_id, organisation_id, request_id, resource_type, resource_id)
        values ('getCase', '00000000-0000-4000-8001-000000000101', ${demoOrganisationIds.iomPoland}, ${tag}, 'case',
                '00000000-0000-4000-8001-000000000101')
        returning id::text as id, txid::text as txid
      `.execute(trx)
    let releaseLate: () => void = () => {}
    const lateMayCommit = new Promise<void>((resolve) => {
      releaseLate = resolve
    })
    let earlyTookItsTxid: () => void = () => {}
    const earlyHasTxid = new Promise<void>((resolve) => {
      earlyTookItsTxid = resolve
    })
    let lateInserted: (row: { id: string; txid: string }) => void = () => {}
    const lateRow = new Promise<{ id: string; txid: string }>((resolve) => {
      lateInserted = resolve
    })
    let earlyMayInsert: () => void = () => {}
    const earlyInsertGate = new Promise<void>((resolve) => {
      earlyMayInsert = resolve
    })
    // `early` takes its transaction id first, `late` takes the lower record id, and commits last.
    const early = db.transaction().execute(async (trx) => {
      await sql`select pg_current_xact_id()`.execute(trx)
      earlyTookItsTxid()
      await earlyInsertGate
      return (await insertRead(trx, 'early')).rows[0] as { id: string; txid: string }
    })
    await earlyHasTxid
    const late = db.transaction().execute(async (trx) => {
      await sql`select pg_current_xact_id()`.execute(trx)
      lateInserted((await insertRead(trx, 'late')).rows[0] as { id: string; txid: string })
      await lateMayCommit
    })
    const lateRecord = await lateRow
    earlyMayInsert()
    const started = Date.now()
    const earlyRecord = await early
    t.ok(Date.now() - started < 5_000, 'a writer commits while another writer holds its audit record open')
    t.ok(BigInt(lateRecord.id) < BigInt(earlyRecord.id), 'the late transaction took the lower record id')
    t.ok(BigInt(earlyRecord.txid) < BigInt(lateRecord.txid), 'and the higher transaction id')

    await sealer.runOnce()
    const listed = async (id: string) =>
      (
        await sql<{
          seq: string
        }>`select seq::text as seq from audit_batches where ${id}::bigint = any(record_ids)`.execute(db)
      ).rows[0]?.seq
    t.equal(await listed(lateRecord.id), undefined, 'the open transaction’s record is not sealed')
    releaseLate()
    await late
    t.equal(await sealer.sealAll(), 0, 'once it commits, it is sealed')
    const earlyBatch = await listed(earlyRecord.id)
    const lateBatch = await listed(lateRecord.id)
    t.ok(earlyBatch && lateBatch && BigInt(earlyBatch) <= BigInt(lateBatch), 'after the record with the higher id')
    const verification = await verify(app)
    t.equal(verification.valid, true, 'and the chain holds: the late record is in its place, not inserted')
  },
)

t.test('the signing key: a JWK or a PKCS8 PEM, or made once in the embedded data directory', async (t) => {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
  const fromJwk = await auditSigner(JSON.stringify(await exportJWK(privateKey)))
  const fromPem = await auditSigner(await exportPKCS8(privateKey))
  t.equal(fromPem.keyId, fromJwk.keyId, 'the same key, whichever form it is given in')
  await t.rejects(auditSigner('not a key'), { name: 'ConfigError' })
  await t.rejects(auditSigner('{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}'), {
    name: 'ConfigError',
    message: /private key/,
  })

  const dataDir = t.testdir({})
  const embedded = { auditSigningKey: undefined, databaseUrl: undefined, dataDir }
  const made = await resolveAuditSigningKey(embedded)
  t.ok(made, 'the embedded database gets a key on first start')
  t.equal((await stat(path.join(dataDir, EMBEDDED_KEY_FILE))).mode & 0o777, 0o600, 'readable by its owner alone')
  t.equal(await resolveAuditSigningKey(embedded), made, 'and keeps it')
  t.equal(
    await resolveAuditSigningKey({ ...embedded, databaseUrl: 'postgres://db.internal/trm' }),
    undefined,
    'PostgreSQL takes the key from the environment only',
  )
})

t.test('a long trail: records and batches are sealed and verified in number order, not text order', async (t) => {
  const clock = new TestClock()
  const signingKey = await newSigningKey()
  const app = await startTestApp(t, { auditSigningKey: signingKey }, clock)
  // 21,500 reads in three transactions: record ids cross 999 → 1000 and 9999 → 10000, and the chain
  // needs 22 batches of 1,000, more than one sealing transaction makes.
  for (const size of [999, 9_001, 11_500]) {
    await sql`
      insert into audit_records (action, principal_id, organisation_id, request_id, resource_type, resource_id)
      select 'getCase', '00000000-0000-4000-8001-000000000101', ${demoOrganisationIds.iomPoland}, 'read ' || n, 'case',
             '00000000-0000-4000-8001-000000000101'
      from generate_series(1, ${size}::int) as n
    `.execute(app.database.db)
  }
  const sealer = await auditSealer(t, app, clock, { signingKey })
  t.equal(await sealer.sealAll(), 0, 'every record is sealed')
  const verification = await verify(app)
  t.match(verification, { valid: true, sealed_batches: 22, sealed_records: 21_500, unsealed_records: 0 })
  const tenThousandth = (
    await sql<{
      id: string
    }>`select id::text as id from audit_records order by audit_records.id offset 9999 limit 1`.execute(app.database.db)
  ).rows[0]?.id as string
  await tamper(app, sql`update audit_records set request_id = 'rewritten' where id = ${tenThousandth}::bigint`)
  t.match((await verify(app)).first_failure, { problem: 'record_changed', batch_seq: 10, record_id: tenThousandth })
})
