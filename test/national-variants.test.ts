import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t, { type Test } from 'tap'
import type { components } from '../openapi/dist/types.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import type { SopDefinition } from '../src/sops/definition.js'
import { loadSops } from '../src/sops/registry.js'
import { demoKeys, startTestApp, type TestApp } from './fixtures/app.js'
import { eventually } from './fixtures/eventually.js'
import { record, transition } from './fixtures/referral.js'

// National variants through HTTP: which procedure a case opens on, by its corridor and age, what
// GET /v1/sops shows of them, and moving a case to another version of its procedure.

type Schemas = components['schemas']

const PL_CW = demoKeys.demoiomplcw1 as string
const PL_SV = demoKeys.demoiomplsv1 as string
const UA_SV = demoKeys.demoiomuasv1 as string

const child = (countryOfReturn: string) => ({
  profile: {
    age_band: '14_17',
    country_of_return: countryOfReturn,
    vulnerabilities: ['victim_of_trafficking', 'unaccompanied_or_separated_child'],
  },
})
const adult = (countryOfReturn: string) => ({
  profile: { age_band: '25_34', country_of_return: countryOfReturn, vulnerabilities: ['victim_of_trafficking'] },
})

async function openCase(app: TestApp, payload: object): Promise<Schemas['Case']> {
  const opened = await app.request({ method: 'POST', url: '/v1/cases', key: PL_CW, payload })
  if (opened.statusCode !== 201) throw new Error(`opening a case answered ${opened.statusCode}: ${opened.body}`)
  return opened.json()
}

async function migrate(app: TestApp, caseId: string, key: string, body: object, ifMatch = true) {
  const current = await app.request({ method: 'GET', url: `/v1/cases/${caseId}`, key: PL_CW })
  return app.request({
    method: 'POST',
    url: `/v1/cases/${caseId}/procedure-migrations`,
    key,
    headers: ifMatch ? { 'if-match': String(current.headers.etag) } : {},
    payload: body,
  })
}

t.test('a case opens on the most specific procedure for its corridor and age', async (t) => {
  const app = await startTestApp(t)
  const cases: [label: string, payload: object, sop: Schemas['SopReference']][] = [
    [
      'a child returning from Poland to Ukraine: the PL→UA variant',
      child('UA'),
      { id: 'child-return-pl-ua', version: 1 },
    ],
    [
      'a child returning from Poland to Albania: the generic child procedure',
      child('AL'),
      { id: 'child-return', version: 2 },
    ],
    [
      'an adult returning from Poland to Ukraine: the generic adult procedure',
      adult('UA'),
      { id: 'adult-return', version: 2 },
    ],
  ]
  for (const [label, payload, sop] of cases) {
    const opened = await openCase(app, payload)
    t.same(opened.sop, sop, label)
    const next = await app.request({ method: 'GET', url: `/v1/cases/${opened.id}/next-actions`, key: PL_CW })
    t.same(next.json().sop, sop, `${label}, in its next actions too`)
  }
})

t.test('GET /v1/sops shows the variants, their corridors and what they extend', async (t) => {
  const app = await startTestApp(t)
  const list = await app.request({ method: 'GET', url: '/v1/sops', key: PL_CW })
  t.equal(list.statusCode, 200)
  const items = list.json().items as Schemas['SopSummary'][]
  t.match(
    items.find((item) => item.id === 'child-return-pl-ua'),
    {
      version: 1,
      applies_to: 'child',
      corridors: [{ sending: 'PL', receiving: 'UA' }],
      extends: { id: 'child-return', version: 2 },
    },
    'the PL→UA child variant, extending child-return v2',
  )
  for (const id of ['adult-return', 'child-return']) {
    t.match(
      items.find((item) => item.id === id),
      { corridors: null, extends: null },
      `${id} is generic`,
    )
  }
  const variant = await app.request({ method: 'GET', url: '/v1/sops/child-return-pl-ua', key: PL_CW })
  t.equal(variant.statusCode, 200)
  const sop = variant.json() as Schemas['Sop']
  t.same(sop.corridors, [{ sending: 'PL', receiving: 'UA' }])
  t.same(sop.extends, { id: 'child-return', version: 2 })
  t.equal(sop.steps.referral_sent?.deadline, 'P3D', 'the resolved definition: 3 days to acknowledge')
  t.equal(sop.steps.accepted?.deadline, 'P30D', 'and what it does not change, from its base')
  t.ok(sop.diagram.includes('stateDiagram-v2'), 'with its diagram')
})

/** Takes a PL→UA child case to `referral_sent`: the return decided, the enquiry sent to IOM Ukraine. */
async function sendChildReferral(t: Test, app: TestApp, caseId: string): Promise<void> {
  for (const [kind, assessment] of [
    ['return_decision', undefined],
    ['guardian_appointment', undefined],
    ['assessment', 'best_interests_determination'],
  ] as const) {
    t.equal((await record(app, caseId, PL_CW, kind, assessment)).statusCode, 201, `${assessment ?? kind} recorded`)
  }
  t.equal((await transition(app, caseId, PL_CW, 'decide_return')).statusCode, 200, 'the return is decided')
  const consent = await app.request({
    method: 'POST',
    url: `/v1/cases/${caseId}/consents`,
    key: PL_CW,
    payload: {
      given_at: '2027-03-20T09:00:00Z',
      method: 'written',
      language: 'uk',
      interpreter: { used: false },
      guardian: { name: 'Halyna Melnyk', relationship: 'legal_guardian' },
      child_views: 'Wants to live with his aunt in Lviv.',
      provisions: [
        { categories: ['identity'], recipients: [demoOrganisationIds.iomUkraine], purposes: ['return_assistance'] },
      ],
      expires_at: null,
    },
  })
  t.equal(consent.statusCode, 201, 'the child and the guardian consent')
  const packet = await app.request({
    method: 'POST',
    url: `/v1/cases/${caseId}/packets`,
    key: PL_CW,
    payload: { recipient_organisation_id: demoOrganisationIds.iomUkraine, purpose: 'return_assistance' },
  })
  t.equal(packet.statusCode, 201, 'the enquiry goes to IOM Ukraine')
}

t.test('a supervisor of the lead moves a case to another version, checked and recorded', async (t) => {
  // 26 March 2027, 10:00 UTC: 12:00 in Kyiv, two days before summer time starts.
  let now = new Date('2027-03-26T10:00:00Z')
  const app = await startTestApp(t, {}, { now: () => now })
  const opened = await openCase(app, child('UA'))
  const caseId = opened.id
  await sendChildReferral(t, app, caseId)
  const sent = (await app.request({ method: 'GET', url: `/v1/cases/${caseId}`, key: PL_CW })).json()
  t.equal(sent.step, 'referral_sent')
  t.equal(sent.step_due_at, '2027-03-29T09:00:00.000Z', 'the variant: IOM Ukraine acknowledges by 29 March, 12:00 Kyiv')

  now = new Date('2027-03-26T11:00:00Z')
  const toGeneric = { sop: { id: 'child-return', version: 2 }, reason: 'The corridor variant does not fit this case.' }
  const refusals: [label: string, response: Awaited<ReturnType<typeof migrate>>, status: number, code?: string][] = [
    ['a caseworker may not', await migrate(app, caseId, PL_CW, toGeneric), 403],
    ['IOM Ukraine, not yet a party, does not see the case', await migrate(app, caseId, UA_SV, toGeneric), 404],
    ['without If-Match', await migrate(app, caseId, PL_SV, toGeneric, false), 428],
    [
      'an unknown version',
      await migrate(app, caseId, PL_SV, { ...toGeneric, sop: { id: 'child-return', version: 9 } }),
      422,
      'unknown-procedure',
    ],
    [
      'the procedure for adults',
      await migrate(app, caseId, PL_SV, { ...toGeneric, sop: { id: 'adult-return', version: 2 } }),
      422,
      'procedure-does-not-apply',
    ],
    [
      'the version it follows',
      await migrate(app, caseId, PL_SV, { ...toGeneric, sop: { id: 'child-return-pl-ua', version: 1 } }),
      422,
      'same-procedure',
    ],
    ['without a reason', await migrate(app, caseId, PL_SV, { sop: toGeneric.sop }), 400],
  ]
  for (const [label, response, status, code] of refusals) {
    t.equal(response.statusCode, status, `${label}: ${status}`)
    if (code) t.equal(response.json().type, `urn:trm:problem:${code}`, `${label}: ${code}`)
  }

  const moved = await migrate(app, caseId, PL_SV, toGeneric)
  t.equal(moved.statusCode, 200, "IOM Poland's supervisor moves the case to the generic procedure")
  const body = moved.json() as Schemas['CaseSummary']
  t.same(body.sop, { id: 'child-return', version: 2 })
  t.equal(body.step, 'referral_sent', 'the case stays at its step')
  t.equal(body.version, sent.version + 1, 'a new version of the case')
  t.equal(body.step_due_at, '2027-03-31T09:00:00.000Z', 'due anew by the generic 5 days: 31 March, 12:00 Kyiv')

  const timeline = await app.request({ method: 'GET', url: `/v1/cases/${caseId}/timeline`, key: PL_CW })
  t.match(timeline.json().items.at(-1), {
    action: 'migrate_procedure',
    from_step: 'referral_sent',
    to_step: 'referral_sent',
    at: '2027-03-26T11:00:00.000Z',
    organisation_id: demoOrganisationIds.iomPoland,
    reason: toGeneric.reason,
    note: 'child-return-pl-ua@1 → child-return@2',
  })
  // On PostgreSQL an event shows once every older transaction of the cluster has ended.
  const migrated = await eventually(
    async () =>
      (await app.request({ method: 'GET', url: '/v1/events?limit=100', key: PL_CW }))
        .json()
        .items.filter((event: Schemas['Event']) => event.type === 'case.procedure_migrated'),
    (found: Schemas['Event'][]) => found.length > 0,
  )
  t.match(
    migrated,
    [
      {
        case_id: caseId,
        data: {
          step: 'referral_sent',
          from_sop: { id: 'child-return-pl-ua', version: 1 },
          sop: { id: 'child-return', version: 2 },
        },
      },
    ],
    'one case.procedure_migrated event',
  )
  const audit = await app.request({
    method: 'GET',
    url: `/v1/cases/${caseId}/audit?limit=200`,
    key: demoKeys.demoiompldpo as string,
  })
  t.match(
    audit.json().items.filter((entry: Schemas['AuditRecord']) => entry.action === 'migrateCaseProcedure'),
    [
      {
        organisation_id: demoOrganisationIds.iomPoland,
        details: { from_sop: { id: 'child-return-pl-ua', version: 1 }, sop: toGeneric.sop, step: 'referral_sent' },
      },
    ],
    'and one audit record of the move',
  )

  const back = await migrate(app, caseId, PL_SV, { sop: { id: 'child-return-pl-ua', version: 1 }, reason: 'It fits.' })
  t.equal(back.statusCode, 200, 'and back to the variant of its corridor')
  t.equal(back.json().step_due_at, '2027-03-29T09:00:00.000Z', 'due by the variant again')

  const albania = await openCase(app, child('AL'))
  const wrongCorridor = await migrate(app, albania.id, PL_SV, {
    sop: { id: 'child-return-pl-ua', version: 1 },
    reason: 'Try the variant.',
  })
  t.equal(wrongCorridor.statusCode, 422, 'a PL→AL child case may not take the PL→UA variant')
  t.equal(wrongCorridor.json().type, 'urn:trm:problem:procedure-does-not-apply')
  t.match(wrongCorridor.json().detail, /PL→UA.*PL→AL/, 'saying which corridors')
})

/** The shipped definitions, with a child-return v3 that has no `on_hold` step. */
function registryWithoutHold(t: Test) {
  const source = new URL('../src/sops/definitions/', import.meta.url)
  const dir = mkdtempSync(join(tmpdir(), 'trm-variants-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'variants'))
  const copy = (name: string) => readFileSync(new URL(name, source), 'utf8')
  for (const name of ['adult-return.v2.json', 'child-return.v2.json']) writeFileSync(join(dir, name), copy(name))
  const variant = 'child-return-pl-ua.v1.json'
  writeFileSync(join(dir, 'variants', variant), copy(`variants/${variant}`))
  const v3 = JSON.parse(copy('child-return.v2.json')) as SopDefinition
  v3.version = 3
  delete v3.steps.on_hold
  v3.transitions = v3.transitions
    .filter((tr) => tr.action !== 'put_on_hold' && tr.action !== 'resume')
    .map((tr) => ({ ...tr, from: tr.from.filter((step) => step !== 'on_hold') }))
  writeFileSync(join(dir, 'child-return.v3.json'), JSON.stringify(v3))
  return loadSops(pathToFileURL(`${dir}/`))
}

t.test('a case moves only to a version that has its step, and only while it is open', async (t) => {
  const app = await startTestApp(t, {}, undefined, registryWithoutHold(t))
  const held = await openCase(app, child('UA'))
  t.same(held.sop, { id: 'child-return-pl-ua', version: 1 }, 'the PL→UA variant still extends child-return v2')
  const hold = await transition(app, held.id, PL_CW, 'put_on_hold', {
    reason: 'Pending proceedings.',
    review_date: '2027-05-01',
  })
  t.equal(hold.statusCode, 200, 'the case is put on hold')
  const toV3 = { sop: { id: 'child-return', version: 3 }, reason: 'Version 3 applies now.' }
  const refused = await migrate(app, held.id, PL_SV, toV3)
  t.equal(refused.statusCode, 422, 'version 3 has no on_hold step')
  t.equal(refused.json().type, 'urn:trm:problem:step-not-in-procedure')
  t.match(refused.json().detail, /child-return@3 has no step on_hold/)
  t.ok(refused.json().valid_steps.includes('identified'), 'naming the steps it has')
  t.notOk(refused.json().valid_steps.includes('on_hold'))
  const unchanged = await app.request({ method: 'GET', url: `/v1/cases/${held.id}`, key: PL_CW })
  t.same(unchanged.json().sop, { id: 'child-return-pl-ua', version: 1 }, 'the case keeps its procedure')

  const resumed = await transition(app, held.id, PL_CW, 'resume')
  t.equal(resumed.statusCode, 200, 'resumed at identified')
  const moved = await migrate(app, held.id, PL_SV, toV3)
  t.equal(moved.statusCode, 200, 'from identified it moves to version 3')
  t.same(moved.json().sop, { id: 'child-return', version: 3 })

  const cancelled = await openCase(app, child('AL'))
  t.same(cancelled.sop, { id: 'child-return', version: 3 }, 'a new case opens on the newest generic version')
  t.equal((await transition(app, cancelled.id, PL_SV, 'cancel', { reason: 'Stays.' })).statusCode, 200)
  const finished = await migrate(app, cancelled.id, PL_SV, { ...toV3, sop: { id: 'child-return', version: 2 } })
  t.equal(finished.statusCode, 409, 'a finished case is not moved')
  t.equal(finished.json().type, 'urn:trm:problem:case-finished')
})
