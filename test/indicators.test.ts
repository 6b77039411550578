import { readFileSync } from 'node:fs'
import { DOMParser, type Document, onWarningStopParsing } from '@xmldom/xmldom'
import t from 'tap'
import type { components } from '../openapi/dist/types.js'
import type { CaseProfile, Purpose } from '../src/db/schema.js'
import { DEMO_CHART_NOW, demoCharts } from '../src/demo/chart.js'
import { demoOrganisationIds as ORG } from '../src/demo/demo-data.js'
import {
  type HistoricCase,
  type HistoricMove,
  type HistoricRecord,
  insertHistoricCase,
  seedDemoHistory,
} from '../src/demo/history.js'
import { loadSops } from '../src/sops/registry.js'
import { demoKeys, startTestApp } from './fixtures/app.js'
import { recoverByAlgebra, recoverByHand } from './fixtures/intruder.js'

type Report = components['schemas']['IndicatorReport']
type Table = components['schemas']['IndicatorTable']

const supervisorPL = demoKeys.demoiomplsv1 as string
const supervisorUA = demoKeys.demoiomuasv1 as string
const auditor = demoKeys.demoauditor1 as string
const hubAdmin = demoKeys.demohubadmin as string
const caseworker = demoKeys.demoiomplcw1 as string

const NOW = new Date('2026-06-30T12:00:00Z')
const HOUR = 3_600_000
const DAY = 24 * HOUR
const STATISTICS: Purpose[] = ['return_assistance', 'reintegration', 'statistics']
const sops = loadSops()

const adult = (country_of_return: string): CaseProfile => ({
  country_of_return,
  age_band: '25_34',
  sex: 'female',
  vulnerabilities: ['victim_of_trafficking'],
})
const child: CaseProfile = { country_of_return: 'UA', age_band: '14_17', vulnerabilities: ['victim_of_trafficking'] }

/** The referral: identified for `identified` days, return decided for 5 days, acknowledged after `ackHours`. */
function referral(openedAt: Date, identified: number, ackHours: number): HistoricMove[] {
  const decided = new Date(openedAt.getTime() + identified * DAY)
  const sent = new Date(decided.getTime() + 5 * DAY)
  return [
    { action: 'decide_return', to: 'return_decided', at: decided, by: 'sending' },
    { action: 'send_referral', to: 'referral_sent', at: sent, by: 'sending' },
    {
      action: 'acknowledge_referral',
      to: 'acknowledged',
      at: new Date(sent.getTime() + ackHours * HOUR),
      by: 'receiving',
    },
  ]
}

const score = (economic: number, social: number, psychosocial: number, at: string): HistoricRecord => ({
  kind: 'sustainability_score',
  category: 'reintegration',
  side: 'receiving',
  data: { economic, social, psychosocial },
  at: new Date(at),
})

/**
 * The known data set:
 * - PL→UA, opened in 2025: 7 adults counted (two acknowledged after 24 and 48 hours; each of the
 *   seven has a sustainability score in 2026, five of them sustainable), plus one without the
 *   `statistics` purpose and one whose consent was withdrawn (neither counted anywhere).
 * - PL→UA, opened in 2026: 3 children and 3 adults; one adult re-trafficked in 2026.
 * - PL→AL, opened in 2025: 2 adults. Opened in 2026: 8 adults, identified for 10 days (two of
 *   them 40 days, past the 30-day deadline, escalated), return decided for 5 days, acknowledged
 *   after 10, 20, …, 80 hours.
 */
function dataset(): HistoricCase[] {
  const base = { sendingOrganisationId: ORG.iomPoland, sop: { id: 'adult-return', version: 2 } }
  const ua = { ...base, receivingOrganisationId: ORG.iomUkraine }
  const al = { ...base, receivingOrganisationId: ORG.iomAlbania }
  const cases: HistoricCase[] = []
  const sustainable = [
    [0.9, 0.8, 0.7],
    [0.66, 0.66, 0.66],
    [1, 1, 1],
    [0.7, 0.9, 0.8],
    [0.8, 0.7, 0.95],
    [0.65, 0.9, 0.9], // economic below 0.66: not sustainable
    [0.2, 0.3, 0.4],
  ]
  for (let i = 0; i < 7; i++) {
    const openedAt = new Date(Date.UTC(2025, 1 + i, 3, 9))
    const [economic, social, psychosocial] = sustainable[i] as [number, number, number]
    cases.push({
      ...ua,
      profile: adult('UA'),
      openedAt,
      purposes: STATISTICS,
      moves: i < 2 ? referral(openedAt, 10, i === 0 ? 24 : 48) : [],
      records: [
        // An earlier score does not count: the last one does.
        ...(i === 0 ? [score(0.1, 0.1, 0.1, '2025-12-01T10:00:00Z')] : []),
        score(economic, social, psychosocial, `2026-0${1 + (i % 5)}-15T10:00:00Z`),
      ],
    })
  }
  cases.push(
    {
      ...ua,
      profile: adult('UA'),
      openedAt: new Date('2025-03-01T09:00:00Z'),
      purposes: ['return_assistance', 'reintegration'],
      moves: referral(new Date('2025-03-01T09:00:00Z'), 10, 1000),
    },
    {
      ...ua,
      profile: adult('UA'),
      openedAt: new Date('2025-04-01T09:00:00Z'),
      purposes: STATISTICS,
      consentWithdrawnAt: new Date('2025-06-01T09:00:00Z'),
      moves: referral(new Date('2025-04-01T09:00:00Z'), 10, 1000),
    },
  )
  for (let i = 0; i < 6; i++) {
    cases.push({
      ...ua,
      profile: i < 3 ? child : adult('UA'),
      sop: i < 3 ? { id: 'child-return', version: 2 } : base.sop,
      openedAt: new Date(Date.UTC(2026, i, 10, 9)),
      purposes: STATISTICS,
      moves:
        i === 5
          ? [
              {
                action: 'report_retrafficking',
                to: 'retrafficking_suspected',
                at: new Date('2026-06-20T09:00:00Z'),
                by: 'sending',
              },
            ]
          : [],
    })
  }
  for (let i = 0; i < 2; i++) {
    cases.push({
      ...al,
      profile: adult('AL'),
      openedAt: new Date(Date.UTC(2025, 5 + i, 1, 9)),
      purposes: STATISTICS,
      moves: [],
    })
  }
  for (let i = 0; i < 8; i++) {
    const openedAt = new Date(Date.UTC(2026, 0, 5 + i * 7, 9))
    const late = i < 2
    cases.push({
      ...al,
      profile: adult('AL'),
      openedAt,
      purposes: STATISTICS,
      moves: referral(openedAt, late ? 40 : 10, (i + 1) * 10),
      overdueSteps: late ? ['identified'] : [],
    })
  }
  return cases
}

function table(report: Report, name: Table['name']): Table {
  const found = report.tables.find((candidate) => candidate.name === name)
  if (!found) throw new Error(`no table ${name}`)
  return found
}

/** A table as `label: [cells…] | total`, `s` for a suppressed cell. */
function shape(found: Table): Record<string, (number | string | null)[]> {
  const show = (cell: { value: number | null; suppressed: boolean } | null) =>
    cell?.suppressed ? 's' : (cell?.value ?? null)
  const rows = [...found.rows, ...(found.totals ? [found.totals] : [])]
  return Object.fromEntries(
    rows.map((row) => [row.label, [...row.cells.map(show), ...(row.total ? ['|', show(row.total)] : [])]]),
  )
}

/** A chart, parsed strictly as XML: a warning of the parser fails the test. */
function parseSvg(text: string): Document {
  return new DOMParser({ onError: onWarningStopParsing }).parseFromString(text, 'image/svg+xml')
}

/** The marks of a chart that draw a number (a bar or a point), by what they say: `label: …; unit: n; series: …`. */
function drawn(chart: Document, mark: 'bar' | 'point'): string[] {
  return Array.from(chart.getElementsByTagName('path'))
    .filter((path) => path.getAttribute('aria-roledescription') === mark)
    .map((path) => path.getAttribute('aria-label') ?? '')
    .sort()
}

function texts(chart: Document): string[] {
  return Array.from(chart.getElementsByTagName('text')).map((text) => text.textContent ?? '')
}

/** The texts a chart writes at its cells (the numbers above bars, `<5` on the axis); not the axes' ticks. */
function cellTexts(chart: Document): string[] {
  return Array.from(chart.getElementsByTagName('g'))
    .filter((group) => /\brole-mark\b/.test(group.getAttribute('class') ?? ''))
    .flatMap((group) => Array.from(group.getElementsByTagName('text')).map((text) => text.textContent ?? ''))
    .sort()
}

t.test(
  'the indicators of a known data set, as JSON and CSV, with suppression that the totals cannot undo',
  async (t) => {
    const clock = { now: () => NOW }
    const app = await startTestApp(t, {}, clock)
    await app.database.db.transaction().execute(async (trx) => {
      for (const spec of dataset()) await insertHistoricCase(trx, sops, spec)
    })

    // The training registry, through its operations.
    const create = (key: string, body: Record<string, unknown>, idempotencyKey?: string) =>
      app.request({
        method: 'POST',
        url: '/v1/trainings',
        key,
        payload: body,
        ...(idempotencyKey ? { headers: { 'idempotency-key': idempotencyKey } } : {}),
      })
    const borderTraining = {
      kind: 'training',
      held_on: '2025-03-10',
      place: 'Warsaw',
      country: 'PL',
      topic: 'Identifying victims at the border',
      participants: [
        { institution_type: 'border_guard', count: 40 },
        { institution_type: 'police', count: 12 },
      ],
      ngo_partner_ids: [ORG.ngoWarsaw],
      participant_organisation_ids: [ORG.borderGuardPoland],
    }
    const first = await create(supervisorPL, borderTraining, 'training-1')
    t.equal(first.statusCode, 201)
    t.equal(first.json().participants_total, 52)
    t.equal(first.json().organiser_organisation_id, ORG.iomPoland)
    const replay = await create(supervisorPL, borderTraining, 'training-1')
    t.equal(replay.statusCode, 201)
    t.equal(replay.headers['idempotent-replayed'], 'true')
    t.equal(replay.json().id, first.json().id, 'a retry creates nothing twice')
    t.equal((await create(caseworker, borderTraining)).statusCode, 403, 'a caseworker registers no training')
    t.equal(
      (await create(supervisorPL, { ...borderTraining, ngo_partner_ids: ['00000000-0000-4000-8000-00000000ffff'] }))
        .statusCode,
      422,
      'a partner must be in the directory',
    )
    const trainings = [
      {
        kind: 'training_of_trainers',
        held_on: '2026-02-01',
        place: 'Kraków',
        country: 'PL',
        topic: 'Trainers',
        participants: [{ institution_type: 'ngo', count: 15 }],
      },
      {
        kind: 'centre_improvement',
        held_on: '2026-04-01',
        place: 'Kyiv',
        country: 'UA',
        topic: 'Shelter rooms',
        improved_centre_ids: [ORG.kyivShelter, ORG.ngoWarsaw],
      },
    ]
    for (const body of trainings) t.equal((await create(supervisorPL, body)).statusCode, 201)
    t.equal(
      (
        await create(supervisorUA, {
          kind: 'training',
          held_on: '2026-05-05',
          place: 'Lviv',
          country: 'UA',
          topic: 'Reception',
          participants: [{ institution_type: 'social_services', count: 30 }],
        })
      ).statusCode,
      201,
    )

    // Corrected: ETag and If-Match, as every change.
    const url = `/v1/trainings/${first.json().id}`
    const read = await app.request({ method: 'GET', url, key: demoKeys.demobgplcw01 as string })
    t.equal(read.statusCode, 200, 'a participating organisation reads the training')
    t.equal(
      (await app.request({ method: 'GET', url, key: demoKeys.demoiommacw1 as string })).statusCode,
      404,
      'an organisation it does not name does not',
    )
    t.equal(
      (await app.request({ method: 'GET', url, key: auditor })).statusCode,
      200,
      'an auditor reads every training',
    )
    const patch = (headers: Record<string, string>, key = supervisorPL) =>
      app.request({
        method: 'PATCH',
        url,
        key,
        headers,
        payload: { participants: [{ institution_type: 'border_guard', count: 60 }] },
      })
    t.equal((await patch({})).statusCode, 428)
    t.equal((await patch({ 'if-match': '"7"' })).statusCode, 412)
    t.equal(
      (await patch({ 'if-match': String(read.headers.etag) }, supervisorUA)).statusCode,
      404,
      'another supervisor does not see it',
    )
    const patched = await patch({ 'if-match': String(read.headers.etag) })
    t.equal(patched.statusCode, 200)
    t.equal(patched.json().participants_total, 60)
    t.equal(patched.headers.etag, '"2"')

    const get = (query: string, key = supervisorPL) =>
      app.request({ method: 'GET', url: `/v1/indicators?${query}`, key })
    const response = await get('from=2025-01-01&to=2026-06-30')
    t.equal(response.statusCode, 200)
    const report: Report = response.json()
    t.same(
      [report.from, report.to, report.period, report.threshold, report.consent_purpose],
      ['2025-01-01', '2026-06-30', 'year', 5, 'statistics'],
    )

    // Beneficiaries: PL→AL 2 and 8, PL→UA 7 and 6 (the cases without the statistics purpose or
    // with a withdrawn consent are not counted). The 2 is suppressed, and with it the cheapest
    // rectangle (8, 7, 6): the totals alone are published.
    t.same(shape(table(report, 'beneficiaries_served')), {
      'PL-AL': ['s', 's', '|', 10],
      'PL-UA': ['s', 's', '|', 13],
      total: [9, 14, '|', 23],
    })
    // Minors: 3 children, all in 2026: suppressed, with the totals that would reveal them.
    t.same(shape(table(report, 'minors_supported')), { 'PL-UA': [0, 's', '|', 's'], total: [0, 's', '|', 's'] })
    // Sustainability: 7 scored in 2026, 5 sustainable (each dimension at least 0.66; the last score counts).
    t.same(shape(table(report, 'reintegrations_scored')), { 'PL-UA': [0, 7, '|', 7], total: [0, 7, '|', 7] })
    t.same(shape(table(report, 'sustainable_reintegrations')), { 'PL-UA': [0, 5, '|', 5], total: [0, 5, '|', 5] })
    t.same(shape(table(report, 'retrafficked')), { 'PL-UA': [0, 's', '|', 's'], total: [0, 's', '|', 's'] })

    // Acknowledgement: PL→AL in 2026 after 10…80 hours: median 45, 90th percentile 73 (interpolated);
    // PL→UA's two in 2025 are too few to publish.
    t.same(shape(table(report, 'time_to_acknowledge_median')), { 'PL-AL': [null, 45], 'PL-UA': ['s', null] })
    t.same(shape(table(report, 'time_to_acknowledge_p90')), { 'PL-AL': [null, 73], 'PL-UA': ['s', null] })
    // Steps left: PL→AL 24 in 2026, two of them after their deadline; PL→UA 6 in 2025, all in time.
    // (and PL→UA's re-trafficked case left its first step in 2026: one step, too few).
    t.same(shape(table(report, 'steps_within_deadline')), { 'PL-AL': [null, 0.917], 'PL-UA': [1, 's'] })
    // Time per step: PL→AL identified 10 days (six) and 40 days (two): median 240 hours; 120 hours
    // with the return decided; 45 hours to acknowledge. PL→UA: two of each, too few.
    const perStep = table(report, 'time_per_step_median')
    t.same(perStep.columns, ['PL-AL', 'PL-UA'])
    t.same(shape(perStep), { identified: [240, 's'], referral_sent: [45, 's'], return_decided: [120, 's'] })

    // The registry's figures: by organiser and year, never suppressed (no one's personal data).
    t.same(shape(table(report, 'staff_trained')), {
      'IOM Poland (demo)': [60, 15, '|', 75],
      'IOM Ukraine (demo)': [0, 30, '|', 30],
      total: [60, 45, '|', 105],
    })
    t.same(shape(table(report, 'initiatives_with_ngos')), {
      'IOM Poland (demo)': [1, 0, '|', 1],
      'IOM Ukraine (demo)': [0, 0, '|', 0],
      total: [1, 0, '|', 1],
    })
    t.same(shape(table(report, 'centres_improved')), {
      'IOM Poland (demo)': [0, 2, '|', 2],
      'IOM Ukraine (demo)': [0, 0, '|', 0],
      total: [0, 2, '|', 2],
    })

    // The intruder recovers nothing from any protected table of counts.
    for (const found of report.tables.filter((candidate) => candidate.protected && candidate.totals)) {
      t.same(recoverByHand(found), [], `${found.name}: nothing by hand`)
      t.same(recoverByAlgebra(found), [], `${found.name}: nothing by algebra`)
    }

    // One corridor, one organisation.
    const corridor: Report = (await get('from=2025-01-01&to=2026-06-30&corridor=PL-AL')).json()
    t.same(shape(table(corridor, 'beneficiaries_served')), { 'PL-AL': ['s', 's', '|', 10], total: ['s', 's', '|', 10] })
    const albania: Report = (await get(`from=2026-01-01&to=2026-06-30&organisation=${ORG.iomAlbania}`)).json()
    t.same(shape(table(albania, 'beneficiaries_served')), { 'PL-AL': [8, '|', 8], total: [8, '|', 8] })
    t.same(shape(table(albania, 'staff_trained')), { total: [0, '|', 0] }, 'IOM Albania took part in no training')

    // By quarter: the columns follow the range.
    const quarters: Report = (await get('from=2026-01-01&to=2026-06-30&period=quarter')).json()
    t.same(table(quarters, 'beneficiaries_served').columns, ['2026-Q1', '2026-Q2'])

    // CSV: the same figures, a line each, suppressed counts as <5.
    const csv = await get('from=2025-01-01&to=2026-06-30&format=csv')
    t.equal(csv.statusCode, 200)
    t.match(String(csv.headers['content-type']), /^text\/csv/)
    const lines = csv.body.split('\r\n')
    t.equal(lines[0], 'indicator,row,column,value')
    for (const line of [
      'beneficiaries_served,PL-AL,2025,<5',
      'beneficiaries_served,PL-AL,2026,<5',
      'beneficiaries_served,PL-AL,total,10',
      'beneficiaries_served,total,total,23',
      'minors_supported,PL-UA,2025,0',
      'minors_supported,PL-UA,2026,<5',
      'time_to_acknowledge_median,PL-AL,2026,45',
      'time_to_acknowledge_median,PL-UA,2025,<5',
      'staff_trained,IOM Poland (demo),total,75',
    ]) {
      t.ok(lines.includes(line), line)
    }

    // Each table as a chart: what the table publishes, a suppressed cell as <5 and never as a number.
    const chart = async (name: string, query: string, key = supervisorPL) => {
      const answer = await app.request({ method: 'GET', url: `/v1/indicators/${name}/chart.svg?${query}`, key })
      t.equal(answer.statusCode, 200, `${name} drawn`)
      t.match(String(answer.headers['content-type']), /^image\/svg\+xml/)
      return parseSvg(answer.body)
    }
    // Beneficiaries by year: every corridor's cell is suppressed (2, 8, 7 and 6 cases), so only
    // the totals of each year (9 and 14) have bars; the four cells say <5.
    const served = await chart('beneficiaries_served', 'from=2025-01-01&to=2026-06-30')
    t.same(
      drawn(served, 'bar'),
      ['label: 2025; cases: 9; series: total', 'label: 2026; cases: 14; series: total'],
      'a bar for each published count, none for a suppressed one',
    )
    t.same(cellTexts(served), ['14', '9', '<5', '<5', '<5', '<5'], 'each suppressed cell says <5')
    t.ok(texts(served).includes('Beneficiaries served (cases opened), 2025-01-01 to 2026-06-30'), 'titled')
    // Time to acknowledge: PL→AL in 2026 (45 hours) is published; PL→UA's two in 2025 (a median
    // of 36 hours) are too few; the other cells have nothing to measure and are left out.
    const acknowledged = await chart('time_to_acknowledge_median', 'from=2025-01-01&to=2026-06-30')
    t.same(drawn(acknowledged, 'bar'), ['label: 2026; hours: 45; series: PL-AL'])
    t.same(cellTexts(acknowledged), ['45', '<5'], 'the suppressed median (36) is <5')
    // Minors by quarter of 2026, drawn as a line: three children in the first quarter
    // (suppressed), none in the second.
    const minors = await chart('minors_supported', 'from=2026-01-01&to=2026-06-30&period=quarter')
    t.same(drawn(minors, 'point'), ['label: 2026-Q2; cases: 0; series: PL-UA'])
    t.same(cellTexts(minors), ['<5'], 'the first quarter says <5 (a line chart writes no number at its points)')
    // Steps by corridor: a group per step, a bar per corridor; PL→UA's steps are too few.
    const steps = await chart('time_per_step_median', 'from=2025-01-01&to=2026-06-30')
    t.same(drawn(steps, 'bar'), [
      'label: identified; hours: 240; series: PL-AL',
      'label: referral_sent; hours: 45; series: PL-AL',
      'label: return_decided; hours: 120; series: PL-AL',
    ])
    t.same(cellTexts(steps), ['120', '240', '45', '<5', '<5', '<5'])
    // One corridor: its own cells, still suppressed.
    const albanian = await chart('beneficiaries_served', 'from=2025-01-01&to=2026-06-30&corridor=PL-AL')
    t.same(drawn(albanian, 'bar'), [], 'one corridor: no totals series, and both cells suppressed')
    t.ok(texts(albanian).includes('Beneficiaries served (cases opened), 2025-01-01 to 2026-06-30, PL-AL'))
    // The training registry's figures are not suppressed: a bar each, the zeros too.
    const trained = await chart('staff_trained', 'from=2025-01-01&to=2026-06-30')
    t.same(drawn(trained, 'bar'), [
      'label: 2025; people: 0; series: IOM Ukraine (demo)',
      'label: 2025; people: 60; series: IOM Poland (demo)',
      'label: 2025; people: 60; series: total',
      'label: 2026; people: 15; series: IOM Poland (demo)',
      'label: 2026; people: 30; series: IOM Ukraine (demo)',
      'label: 2026; people: 45; series: total',
    ])
    // The same roles and the same checks of input as the tables.
    for (const [key, status] of [
      [demoKeys.demoiompldpo as string, 200],
      [auditor, 200],
      [hubAdmin, 200],
      [caseworker, 403],
      [demoKeys.demoiomuacw1 as string, 403],
    ] as const) {
      const answer = await app.request({ method: 'GET', url: '/v1/indicators/minors_supported/chart.svg', key })
      t.equal(answer.statusCode, status, `chart: ${status}`)
      if (status === 403) t.equal(answer.json().type, 'urn:trm:problem:forbidden')
    }
    t.equal((await app.request({ method: 'GET', url: '/v1/indicators/minors_supported/chart.svg' })).statusCode, 401)
    for (const url of [
      '/v1/indicators/no_such_indicator/chart.svg',
      '/v1/indicators/minors_supported/chart.svg?from=2026-02-01&to=2026-01-01',
      '/v1/indicators/minors_supported/chart.svg?format=csv',
    ]) {
      t.equal((await app.request({ method: 'GET', url, key: supervisorPL })).statusCode, 400, url)
    }

    // Who may read them.
    for (const [key, status] of [
      [supervisorPL, 200],
      [demoKeys.demoiompldpo as string, 200],
      [auditor, 200],
      [hubAdmin, 200],
      [caseworker, 403],
    ] as const) {
      t.equal((await get('', key)).statusCode, status)
    }
    // Bad input is a problem, not a failure.
    for (const query of [
      'from=2026-02-01&to=2026-01-01',
      'corridor=PL',
      'period=week',
      'format=xml',
      'from=1990-01-01&to=2026-01-01',
    ]) {
      const bad = await get(query)
      t.equal(bad.statusCode, 400, query)
      t.match(String(bad.headers['content-type']), /application\/problem\+json/)
    }
  },
)

t.test('the demo history shows every indicator on a fresh start', async (t) => {
  const app = await startTestApp(t, {}, { now: () => NOW })
  const seeded = await seedDemoHistory(app.database.db, sops, NOW)
  t.ok(seeded >= 100, `seeded ${seeded} cases`)
  const report: Report = (await app.request({ method: 'GET', url: '/v1/indicators', key: hubAdmin })).json()
  const total = (name: Table['name']) => table(report, name).totals?.total?.value ?? 0
  t.ok(total('beneficiaries_served') >= 50, 'beneficiaries served')
  t.ok(total('staff_trained') > 500, 'staff trained')
  t.ok(total('initiatives_with_ngos') >= 2, 'initiatives with NGOs')
  t.ok(total('centres_improved') >= 2, 'centres improved')
  t.ok(total('reintegrations_scored') >= 5, 'sustainability scores')
  t.ok(
    table(report, 'time_to_acknowledge_median').rows.some((row) => row.cells.some((cell) => cell.value !== null)),
    'a median time to acknowledge',
  )
  t.ok(
    table(report, 'steps_within_deadline').rows.some((row) =>
      row.cells.some((cell) => cell.value !== null && cell.value < 1),
    ),
    'some steps late',
  )
  // The demo's small cells are suppressed, and nothing suppressed can be recovered from its totals.
  const csv = await app.request({ method: 'GET', url: '/v1/indicators?format=csv&period=quarter', key: hubAdmin })
  t.ok(
    csv.body.split('\r\n').some((line) => line.endsWith(',<5')),
    'some cells suppressed',
  )
  const quarterly: Report = (
    await app.request({ method: 'GET', url: '/v1/indicators?period=quarter', key: hubAdmin })
  ).json()
  for (const protectedTable of [...report.tables, ...quarterly.tables].filter(
    (found) => found.protected && found.totals,
  )) {
    t.same(recoverByAlgebra(protectedTable), [], `${protectedTable.name}: nothing recovered`)
  }
  // The README's chart is this history's, as the operation draws it now (else: npm run diagrams).
  t.equal(NOW.getTime(), DEMO_CHART_NOW.getTime())
  for (const { name, request, file } of demoCharts) {
    const drawnNow = await app.request({
      method: 'GET',
      url: `/v1/indicators/${name}/chart.svg?from=${request.from}&to=${request.to}&period=${request.grain}`,
      key: hubAdmin,
    })
    const committed = readFileSync(new URL(`../docs/indicators/${file}`, import.meta.url), 'utf8')
    t.ok(drawnNow.body === committed, `docs/indicators/${file} is current (else: npm run diagrams)`)
    // It draws what the table publishes: a bar for each number, <5 for each suppressed cell.
    const published: Report = (
      await app.request({
        method: 'GET',
        url: `/v1/indicators?from=${request.from}&to=${request.to}&period=${request.grain}`,
        key: hubAdmin,
      })
    ).json()
    const shown = table(published, name)
    const series = shown.totals && shown.rows.length > 1 ? [...shown.rows, shown.totals] : shown.rows
    const cells = series.flatMap((row) =>
      row.cells.map((cell, j) => ({ row: row.label, column: shown.columns[j], cell })),
    )
    const chart = parseSvg(committed)
    t.same(
      drawn(chart, 'bar'),
      cells
        .filter(({ cell }) => cell.value !== null)
        .map(({ row, column, cell }) => `label: ${column}; ${shown.unit}: ${cell.value}; series: ${row}`)
        .sort(),
      'a bar for each published figure of the demo',
    )
    t.equal(
      cellTexts(chart).filter((text) => text === '<5').length,
      cells.filter(({ cell }) => cell.suppressed).length,
      'and <5 for each suppressed one',
    )
    t.ok(cells.some(({ cell }) => cell.suppressed) && cells.some(({ cell }) => cell.value), 'the demo has both')
  }
  // Every step of both procedures holds or held a case.
  const steps = await app.database.db
    .selectFrom('case_transitions')
    .innerJoin('cases', 'cases.id', 'case_transitions.case_id')
    .select(['cases.sop_id', 'case_transitions.to_step'])
    .distinct()
    .execute()
  for (const sop of ['adult-return', 'child-return']) {
    const definition = sops.find(sop, 2)
    const reached = new Set(steps.filter((row) => row.sop_id === sop).map((row) => row.to_step))
    const missing = Object.keys(definition?.steps ?? {}).filter((step) => !reached.has(step))
    t.same(missing, [], `${sop}: every step reached`)
  }
})
