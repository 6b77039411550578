// What sealing the audit trail costs, and that writers of audit records do not wait for one another
// or for the sealer. On a schema of its own on PostgreSQL; it reports, it never fails.
//   DATABASE_URL=postgres://… npm run bench:audit -- [--records 100000] [--writers 16] [--seconds 10]
//     [--hold-ms 10] [--schema audit_bench_x] [--keep]
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { exportJWK, generateKeyPair } from 'jose'
import { sql } from 'kysely'
import pg from 'pg'
import { sealAuditRecords } from '../src/audit/seal.js'
import { auditSigner } from '../src/audit/signing-key.js'
import { verifyAuditTrail } from '../src/audit/verify.js'
import { systemClock } from '../src/clock.js'
import { openDatabase } from '../src/db/database.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { dropSchema, migrateWithDemoOrganisations } from './bench/schema.js'

const { values: flags } = parseArgs({
  options: {
    records: { type: 'string', default: '100000' },
    writers: { type: 'string', default: '16' },
    seconds: { type: 'string', default: '10' },
    'hold-ms': { type: 'string', default: '10' },
    schema: { type: 'string', default: `audit_bench_${randomBytes(4).toString('hex')}` },
    keep: { type: 'boolean', default: false },
  },
})
const connectionString = process.env.DATABASE_URL
if (!connectionString) throw new Error('set DATABASE_URL to a PostgreSQL database to benchmark on')
const target = { connectionString, schema: flags.schema as string }
const records = Number(flags.records)
const writers = Number(flags.writers)
const seconds = Number(flags.seconds)
const holdMs = Number(flags['hold-ms'])

const PRINCIPAL = '00000000-0000-4000-8001-000000000101'
const insertRecord = `
  insert into audit_records (action, principal_id, organisation_id, request_id, resource_type, resource_id, details)
  values ('getCase', '${PRINCIPAL}', '${demoOrganisationIds.iomPoland}', 'bench', 'case', gen_random_uuid(),
          '{"categories": ["identity", "health"]}')
`

await migrateWithDemoOrganisations(target)
const database = await openDatabase({ databaseUrl: connectionString, databaseSchema: target.schema })
const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
const signer = await auditSigner(JSON.stringify(await exportJWK(privateKey)))
const options = { signer, checkpointEveryMs: 0 }
try {
  // 1. Sealing a backlog: records written in transactions of 1,000, then sealed in one run.
  const seeding = Date.now()
  for (let written = 0; written < records; written += 1000) {
    await sql
      .raw(
        `insert into audit_records (action, principal_id, organisation_id, request_id, resource_type, resource_id, details)
         select 'getCase', '${PRINCIPAL}', '${demoOrganisationIds.iomPoland}', 'bench-' || n, 'case', gen_random_uuid(),
                '{"categories": ["identity", "health"]}'
         from generate_series(1, ${Math.min(1000, records - written)}) as n`,
      )
      .execute(database.db)
  }
  console.log(`wrote ${records.toLocaleString('en-US')} audit records in ${Date.now() - seeding} ms`)
  await sql`analyze audit_records`.execute(database.db)
  const sealing = Date.now()
  const sealed = await sealAuditRecords(database.db, systemClock, options)
  const sealMs = Date.now() - sealing
  console.log(
    `sealed ${sealed.records.toLocaleString('en-US')} records in ${sealed.batches} batches in ${sealMs} ms: ` +
      `${((sealMs * 10_000) / sealed.records).toFixed(0)} ms per 10,000 records (checkpoint ${sealed.checkpoint})`,
  )
  const verifying = Date.now()
  const verification = await verifyAuditTrail(database.db, [signer.publicJwk], new Date())
  const verifyMs = Date.now() - verifying
  console.log(
    `verified ${verification.sealed_records.toLocaleString('en-US')} records (valid: ${verification.valid}) in ${verifyMs} ms: ` +
      `${((verifyMs * 10_000) / verification.sealed_records).toFixed(0)} ms per 10,000 records`,
  )

  // 2. Writers: each transaction inserts one audit record and stays open `holdMs` (the rest of a
  // request's work) before it commits; the sealer runs in a loop beside them. For contrast, the
  // same writers when each must first lock one chain head, as a per-record chain would.
  const writes = async (label: string, statements: string[], sealing: boolean) => {
    const pool = new pg.Pool({ connectionString, max: writers + 1, options: `-c search_path="${target.schema}"` })
    const until = Date.now() + seconds * 1000
    let committed = 0
    let sealedDuring = 0
    let lockWaitSamples = 0
    let samples = 0
    const sealer = (async () => {
      while (sealing && Date.now() < until) {
        sealedDuring += (await sealAuditRecords(database.db, systemClock, options)).records
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    })()
    const monitor = (async () => {
      while (Date.now() < until) {
        const waiting = await pool.query<{ count: string }>(
          `select count(*)::text as count from pg_stat_activity where wait_event_type = 'Lock' and query like '%audit%'`,
        )
        lockWaitSamples += Number(waiting.rows[0]?.count ?? 0) > 0 ? 1 : 0
        samples += 1
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    })()
    await Promise.all(
      Array.from({ length: writers }, async () => {
        while (Date.now() < until) {
          const client = await pool.connect()
          try {
            await client.query('begin')
            for (const statement of statements) await client.query(statement)
            await client.query(`select pg_sleep(${holdMs / 1000})`)
            await client.query('commit')
            committed += 1
          } finally {
            client.release()
          }
        }
      }),
    )
    await Promise.all([sealer, monitor])
    await pool.end()
    console.log(
      `${label}: ${writers} writers, ${(committed / seconds).toFixed(0)} transactions/s ` +
        `(one at a time would be at most ${(1000 / holdMs).toFixed(0)}/s); ` +
        `samples with a writer waiting on a lock: ${lockWaitSamples} of ${samples}` +
        (sealing ? `; sealed meanwhile: ${sealedDuring.toLocaleString('en-US')}` : ''),
    )
  }
  await writes('no sealer', [insertRecord], false)
  await writes('sealer running every 200 ms', [insertRecord], true)
  await writes('chain by one head lock (contrast)', ['select id from audit_seal_lock for update', insertRecord], false)
  const left = await sealAuditRecords(database.db, systemClock, options)
  const final = await verifyAuditTrail(database.db, [signer.publicJwk], new Date())
  console.log(
    `after the runs: sealed ${left.records} more; the trail verifies: ${final.valid}, ` +
      `${final.sealed_records.toLocaleString('en-US')} records in ${final.sealed_batches} batches`,
  )
} finally {
  await database.close()
  if (!flags.keep) await dropSchema(target)
}
