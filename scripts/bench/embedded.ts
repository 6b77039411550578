// The embedded database: the service on PGlite (its own process, as `npm start` runs it) reading
// and opening cases over HTTP, beside PGlite alone in this process doing the same database work
// (the minimal implementation's read statement and audit insert; one statement that opens a case)
// with nothing around it. What the service reaches of bare PGlite is the cost of everything else.
import { createHash, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { newCaseKey, sealJson } from '../../src/crypto/case-keys.js'
import { demoOrganisationIds } from '../../src/demo/demo-data.js'
import { loadSops } from '../../src/sops/registry.js'
import { iomPolandKey } from './dataset.js'
import { type LoadResult, load } from './load.js'
import { statements } from './minimal.js'
import { highWaterMark, startServer } from './processes.js'
import { fixed, megabytes, table } from './report.js'

const poland = { authorization: `Bearer ${iomPolandKey}` }
const newCase = {
  profile: { age_band: '25_34', sex: 'female', nationality: 'UA', country_of_return: 'UA', vulnerabilities: [] },
  sections: {
    identity: { given_name: 'Olena', family_name: 'Kovalenko (benchmark)' },
    health: { conditions: ['post-traumatic stress'] },
  },
}

/** What the service writes when it opens a case, in one statement: the bare database's share of createCase. */
const openCase = `with number as (select nextval('case_reference_numbers') as n),
  opened as (
    insert into cases (id, reference, profile, sections, data_key_id, data_key, sending_organisation_id,
      lead_organisation_id, sop_id, sop_version, step, step_due_at, step_entered_at, created_at, updated_at)
    select $1, 'PL-UA-2026-' || lpad(n::text, 6, '0'), $2, $3, $4, $5, $6, $6, $7, $8, $9, $10, $11, $11, $11 from number
    returning id, reference, version, step),
  party as (insert into case_parties (case_id, organisation_id, role, since) values ($1, $6, 'sending', $11)),
  timeline as (
    insert into case_transitions (case_id, action, from_step, to_step, at, principal_id, organisation_id,
      lead_organisation_id) values ($1, 'open', null, $9, $11, $12, $6, $6)),
  event as (
    insert into events (type, case_id, organisation_ids, data)
    select 'case.opened', $1, array[$6::uuid], jsonb_build_object('case_reference', reference, 'version', version,
      'step', step, 'lead_organisation_id', $6::uuid) from opened returning id, txid, seq),
  audience as (insert into event_audiences (organisation_id, txid, seq, event_id) select $6, txid, seq, id from event)
  insert into audit_records (action, principal_id, organisation_id, request_id, case_id, resource_type, resource_id,
    details)
  select 'createCase', $12, $6, $13, $1, 'case', $1, jsonb_build_object('reference', reference,
    'sections', '["identity","health"]'::jsonb) from opened`

/** A value as an SQL literal, for EXECUTE: PGlite prepares no named statements of its own. */
function literal(value: unknown): string {
  if (value === null || value === undefined) return 'null'
  if (typeof value === 'number') return String(value)
  const text = value instanceof Date ? value.toISOString() : String(value)
  return `'${text.replaceAll("'", "''")}'`
}

/** Prepares a statement once (its plan kept, as the minimal implementation's named statements are on pg); answers how to run it. */
async function prepared(pglite: PGlite, name: string, text: string) {
  await pglite.exec(`prepare ${name} as ${text}`)
  return (values: unknown[]) => pglite.exec(`execute ${name} (${values.map(literal).join(', ')})`)
}

/** Runs `work` back to back for `seconds`; answers how many times a second it ran. */
async function perSecond(seconds: number, work: () => Promise<unknown>): Promise<number> {
  const until = performance.now() + seconds * 1000
  const started = performance.now()
  let done = 0
  while (performance.now() < until) {
    await work()
    done += 1
  }
  return done / ((performance.now() - started) / 1000)
}

export async function runEmbedded(options: {
  root: string
  entry: string
  seconds: number
  connections: number
  log: (line: string) => void
}): Promise<string> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'trm-bench-pglite-'))
  try {
    const service = await startServer(
      'embedded service',
      options.entry,
      { DATABASE_URL: '', DATA_DIR: dataDir, LOG_LEVEL: 'warn', RATE_LIMIT_PER_MINUTE: '1000000' },
      '/health/ready',
      options.root,
    )
    const common = { url: service.url, pid: service.pid, connections: options.connections, seconds: options.seconds }
    const idleRss = highWaterMark(service.pid) ?? 0
    let writes: LoadResult
    let reads: LoadResult
    let ids: string[]
    try {
      writes = await load({
        ...common,
        next: () => ({
          method: 'POST',
          path: '/v1/cases',
          headers: { ...poland, 'content-type': 'application/json' },
          body: JSON.stringify(newCase),
        }),
      })
      const page = await fetch(`${service.url}/v1/cases?limit=100`, { headers: poland })
      ids = ((await page.json()) as { items: { id: string }[] }).items.map((item) => item.id)
      let index = 0
      reads = await load({
        ...common,
        next: () => ({ method: 'GET', path: `/v1/cases/${ids[index++ % ids.length]}`, headers: poland }),
      })
    } finally {
      await service.stop()
    }
    options.log(
      `  service: ${fixed(reads.requestsPerSecond)} reads/s, ${fixed(writes.requestsPerSecond)} writes/s ` +
        `(errors and non-2xx ${fixed(reads.errors + reads.non2xx + writes.errors + writes.non2xx)}) ` +
        `(${options.connections} connections); memory at start ${megabytes(idleRss)} MB, peak ` +
        `${megabytes(Math.max(reads.peakRss, writes.peakRss))} MB`,
    )

    const pglite = await PGlite.create(dataDir)
    try {
      const [prefix, secret] = iomPolandKey.replace(/^trm_/, '').split(/_(.*)/s) as [string, string]
      const hash = createHash('sha256').update(secret).digest('hex')
      const principal = (
        await pglite.query<{ principal_id: string }>('select principal_id from api_keys where prefix = $1', [prefix])
      ).rows[0]?.principal_id
      const readCase = await prepared(pglite, 'read_case', statements.readCase.text)
      const audit = await prepared(pglite, 'audit', statements.audit.text)
      const open = await prepared(pglite, 'open_case', openCase)
      let index = 0
      const bareReads = await perSecond(options.seconds, async () => {
        const id = ids[index++ % ids.length] as string
        await readCase([prefix, hash, id])
        await audit([
          'getCase',
          principal,
          demoOrganisationIds.iomPoland,
          randomUUID(),
          id,
          'case',
          id,
          JSON.stringify({ sections: ['identity', 'health'] }),
        ])
      })
      const procedure = loadSops().current('adult')
      const bareWrites = await perSecond(options.seconds, async () => {
        const id = randomUUID()
        const key = newCaseKey(id)
        const now = new Date()
        await open([
          id,
          JSON.stringify(newCase.profile),
          JSON.stringify(sealJson(key.key, 'cases.sections', id, newCase.sections)),
          key.data_key_id,
          JSON.stringify(key.data_key),
          demoOrganisationIds.iomPoland,
          procedure.id,
          procedure.version,
          procedure.initial_step,
          null,
          now,
          principal,
          randomUUID(),
        ])
      })
      options.log(`  bare PGlite: ${fixed(bareReads)} reads/s, ${fixed(bareWrites)} writes/s (one caller, in process)`)
      return table(
        ['embedded', 'service', 'bare PGlite', 'service / bare', 'target'],
        [
          [
            'reads/s (GET /v1/cases/{id})',
            fixed(reads.requestsPerSecond),
            fixed(bareReads),
            fixed(reads.requestsPerSecond / bareReads, 2),
            '≥ 1,000 and ≥ 0.4',
          ],
          [
            'writes/s (POST /v1/cases)',
            fixed(writes.requestsPerSecond),
            fixed(bareWrites),
            fixed(writes.requestsPerSecond / bareWrites, 2),
            '≥ 300 and ≥ 0.4',
          ],
        ],
      )
    } finally {
      await pglite.close()
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
}
