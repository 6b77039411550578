import { readFileSync } from 'node:fs'
import { DOMParser, type Document, type Element, onWarningStopParsing } from '@xmldom/xmldom'
import t from 'tap'
import { renderBarChart, renderLineChart } from '../src/charts/svg-charts.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import type { SopDefinition, Step, Transition } from '../src/sops/definition.js'
import { procedureFiles, procedureSvg } from '../src/sops/diagram-svg.js'
import { loadSops } from '../src/sops/registry.js'
import { demoKeys, startTestApp } from './fixtures/app.js'
import { acknowledgement, answerPacket, newCase, openReferral, recipient, sender } from './fixtures/referral.js'

// The pictures: each procedure as an SVG graph, a case's place on its procedure, and the charts
// indicators are drawn with. Every SVG is parsed as XML; what it must show is read from the
// definition files, the procedures as written.

const DAY = 24 * 60 * 60 * 1000

function definitionFile(path: string) {
  return JSON.parse(readFileSync(new URL(`../src/sops/definitions/${path}`, import.meta.url), 'utf8'))
}

const adult = definitionFile('adult-return.v2.json') as SopDefinition
const child = definitionFile('child-return.v2.json') as SopDefinition
const variant = definitionFile('variants/child-return-pl-ua.v1.json') as { transitions?: Transition[] }
/** The PL→UA variant changes titles, deadlines and guards of the child's procedure: it has its steps and transitions. */
const expected: { id: string; steps: Record<string, Step>; transitions: Transition[]; initial: string }[] = [
  { id: 'adult-return', steps: adult.steps, transitions: adult.transitions, initial: adult.initial_step },
  { id: 'child-return', steps: child.steps, transitions: child.transitions, initial: child.initial_step },
  {
    id: 'child-return-pl-ua',
    steps: child.steps,
    transitions: [...child.transitions, ...(variant.transitions ?? [])],
    initial: child.initial_step,
  },
]

/** Parses an SVG strictly: a warning or error of the XML parser fails the test. */
function parseSvg(text: string): Document {
  return new DOMParser({ onError: onWarningStopParsing }).parseFromString(text, 'image/svg+xml')
}

function classes(element: Element): Set<string> {
  return new Set((element.getAttribute('class') ?? '').split(/\s+/).filter(Boolean))
}

function groups(document: Document, className: string): Element[] {
  return Array.from(document.getElementsByTagName('g')).filter((g) => classes(g).has(className))
}

function stepNode(document: Document, name: string): Element {
  const found = groups(document, 'step').filter((g) => g.getAttribute('data-step') === name)
  if (found.length !== 1) throw new Error(`${found.length} nodes for step ${name}`)
  return found[0] as Element
}

function edgeKeys(document: Document, only?: string): string[] {
  return groups(document, only ?? 'edge')
    .map((g) => `${g.getAttribute('data-action')} ${g.getAttribute('data-from')} → ${g.getAttribute('data-to')}`)
    .sort()
}

function texts(element: Element): string[] {
  return Array.from(element.getElementsByTagName('text')).map((text) => text.textContent ?? '')
}

t.test('every procedure is drawn with a node for each step and an arrow for each transition', async (t) => {
  const { request } = await startTestApp(t)
  for (const sop of expected) {
    const response = await request({ method: 'GET', url: `/v1/sops/${sop.id}/diagram.svg` })
    t.equal(response.statusCode, 200, `${sop.id}: drawn for anyone, without a key`)
    t.match(response.headers['content-type'], /^image\/svg\+xml/, 'as SVG')
    t.match(response.headers['content-security-policy'], /default-src 'none'/, 'that runs nothing if opened directly')
    const document = parseSvg(response.body)
    const root = document.documentElement as Element
    t.equal(root.tagName, 'svg')
    t.equal(root.namespaceURI, 'http://www.w3.org/2000/svg')
    t.equal(root.getAttribute('data-sop'), sop.id)

    const steps = groups(document, 'step').map((g) => g.getAttribute('data-step'))
    t.same(steps.sort(), Object.keys(sop.steps).sort(), `${sop.id}: one node per step, no other`)
    for (const name of Object.keys(sop.steps)) {
      t.ok(
        Array.from(stepNode(document, name).getElementsByTagName('title')).some((title) =>
          title.textContent?.endsWith(`(${name})`),
        ),
        `${sop.id}: ${name} is named`,
      )
    }
    const marked = (className: string) =>
      groups(document, 'step')
        .filter((g) => classes(g).has(className))
        .map((g) => g.getAttribute('data-step'))
        .sort()
    t.same(marked('initial'), [sop.initial], `${sop.id}: the initial step is marked`)
    t.same(
      marked('terminal'),
      Object.keys(sop.steps)
        .filter((name) => sop.steps[name]?.terminal)
        .sort(),
      `${sop.id}: terminal steps are styled as such`,
    )
    t.same(
      marked('exit'),
      Object.keys(sop.steps)
        .filter((name) => sop.steps[name]?.exit)
        .sort(),
      `${sop.id}: so are the exits of a failed return`,
    )

    const wanted = [
      `open $start → ${sop.initial}`,
      ...sop.transitions.flatMap((transition) =>
        transition.from.map((from) => `${transition.action} ${from} → ${transition.to}`),
      ),
    ].sort()
    t.same(edgeKeys(document), wanted, `${sop.id}: an arrow for each transition from each step it leaves`)
    for (const edge of groups(document, 'edge').filter((g) => g.getAttribute('data-action') !== 'open')) {
      const action = edge.getAttribute('data-action') as string
      const label = edge.getAttribute('data-to') === '$previous' ? `${action} ↩ step before` : action
      t.same(texts(edge), [label], `${sop.id}: the arrow of ${action} from ${edge.getAttribute('data-from')} says so`)
    }
    t.same(edgeKeys(document, 'taken'), [], `${sop.id}: a procedure without a case highlights no path`)
  }

  const older = await request({ method: 'GET', url: '/v1/sops/adult-return/diagram.svg?version=99' })
  t.equal(older.statusCode, 404, 'a version that does not exist is not found')
  t.match(older.headers['content-type'], /^application\/problem\+json/)
  const unknown = await request({ method: 'GET', url: '/v1/sops/no-such-procedure/diagram.svg' })
  t.equal(unknown.statusCode, 404, 'nor a procedure that does not exist')
  const bad = await request({ method: 'GET', url: '/v1/sops/adult-return/diagram.svg?version=first' })
  t.equal(bad.statusCode, 400, 'a version that is not a number is a bad request')
  const ukrainian = await request({ method: 'GET', url: '/v1/sops/adult-return/diagram.svg?lang=uk' })
  t.equal(ukrainian.headers['content-language'], 'uk', 'step titles in the language asked for')
  t.not(ukrainian.body, (await request({ method: 'GET', url: '/v1/sops/adult-return/diagram.svg' })).body)
})

t.test('the pictures in docs/procedures are those the procedures draw now', async (t) => {
  for (const { file, svg } of procedureFiles(loadSops().all())) {
    const committed = readFileSync(new URL(`../docs/procedures/${file}`, import.meta.url), 'utf8')
    t.ok(committed === svg, `docs/procedures/${file} is current (else: npm run diagrams)`)
  }
})

t.test('the text of a procedure is escaped, whatever it says', async (t) => {
  const hostile = structuredClone(adult)
  hostile.title = `Return <of> "an" & 'adult' </svg>`
  ;(hostile.steps.identified as Step).title = '<script>alert(1)</script>'
  const document = parseSvg(procedureSvg(hostile))
  t.equal(document.getElementsByTagName('script').length, 0, 'no element comes out of a title')
  t.ok(
    texts(document.documentElement as Element).includes(`Return <of> "an" & 'adult' </svg> (adult-return, version 2)`),
    'the title reads as written',
  )
  t.ok(texts(stepNode(document, 'identified')).includes('<script>alert(1)</script>'), 'so does a step title')
})

t.test("a case's picture highlights its path and its current step, red once overdue", async (t) => {
  let now = new Date()
  const clock = { now: () => now }
  const app = await startTestApp(t, {}, clock)
  const { request } = app
  const referral = await openReferral(t, app)
  const acknowledged = await answerPacket(app, referral.packetId, recipient, 'acknowledge', acknowledgement)
  t.equal(acknowledged.statusCode, 200, 'IOM Ukraine acknowledges the enquiry')
  const url = `/v1/cases/${referral.caseId}/procedure.svg`

  const read = await request({ method: 'GET', url, key: sender })
  t.equal(read.statusCode, 200, 'the sending partner draws the case')
  t.match(read.headers['content-type'], /^image\/svg\+xml/)
  const document = parseSvg(read.body)
  t.equal((document.documentElement as Element).getAttribute('data-sop'), 'adult-return', 'on its procedure')
  const current = groups(document, 'current')
  t.same(
    current.map((g) => g.getAttribute('data-step')),
    ['acknowledged'],
    'the current step, and only it, is marked current',
  )
  t.notOk(classes(current[0] as Element).has('overdue'), 'within its deadline')
  const caseRead = await request({ method: 'GET', url: `/v1/cases/${referral.caseId}`, key: sender })
  const due = new Date(caseRead.json().step_due_at as string)
  t.ok(texts(current[0] as Element).includes(`due ${due.toISOString().slice(0, 10)}`), 'it says when it is due')
  t.same(
    groups(document, 'visited')
      .map((g) => g.getAttribute('data-step'))
      .sort(),
    ['acknowledged', 'identified', 'referral_sent', 'return_decided'],
    'the steps the case passed through are marked',
  )
  t.same(
    edgeKeys(document, 'taken'),
    [
      'acknowledge_referral referral_sent → acknowledged',
      'decide_return identified → return_decided',
      'open $start → identified',
      'send_referral return_decided → referral_sent',
    ],
    'so are the transitions it took',
  )
  t.ok(groups(document, 'edge').length > 5, 'among the ones it did not take')
  for (const personal of [
    newCase.sections.identity.given_name,
    newCase.sections.identity.family_name,
    newCase.sections.health.conditions[0] as string,
    caseRead.json().reference as string,
    demoOrganisationIds.iomPoland,
    demoOrganisationIds.iomUkraine,
    referral.caseId,
  ]) {
    t.notOk(read.body.includes(personal), `nothing of the person or the partners: ${personal}`)
  }

  const counterpart = await request({ method: 'GET', url, key: recipient })
  t.equal(counterpart.statusCode, 200, 'the receiving party, a party since it acknowledged, draws it too')
  t.same(
    groups(parseSvg(counterpart.body), 'current').map((g) => g.getAttribute('data-step')),
    ['acknowledged'],
  )
  const stranger = await request({ method: 'GET', url, key: demoKeys.demoiommacw1 })
  t.equal(stranger.statusCode, 404, 'an organisation with no part in the case learns nothing of it')
  t.match(stranger.headers['content-type'], /^application\/problem\+json/)
  t.equal((await request({ method: 'GET', url })).statusCode, 401, 'without a key, nothing')

  const audit = await request({
    method: 'GET',
    url: `/v1/cases/${referral.caseId}/audit?limit=200`,
    key: demoKeys.demoiompldpo,
  })
  const pictures = audit
    .json()
    .items.filter((item: { action: string }) => item.action === 'getCaseProcedureDiagram')
    .map((item: { organisation_id: string; resource_id: string }) => [item.organisation_id, item.resource_id])
  t.same(
    pictures.sort(),
    [
      [demoOrganisationIds.iomPoland, referral.caseId],
      [demoOrganisationIds.iomUkraine, referral.caseId],
    ].sort(),
    'every picture drawn is in the audit trail, as a read of the case',
  )

  now = new Date(due.getTime() + DAY)
  const late = parseSvg((await request({ method: 'GET', url, key: sender })).body)
  const overdue = groups(late, 'current')
  t.same(
    overdue.map((g) => g.getAttribute('data-step')),
    ['acknowledged'],
    'a day past the deadline, still there',
  )
  t.ok(classes(overdue[0] as Element).has('overdue'), 'and marked overdue')
  t.ok(texts(overdue[0] as Element).includes(`overdue since ${due.toISOString().slice(0, 10)}`), 'since its deadline')
})

t.test('indicator tables draw as bar and line charts, suppressed cells without a bar', async (t) => {
  const table = {
    title: 'Beneficiaries <served> & "minors"',
    unit: 'people',
    rows: [
      { label: 'PL→UA', adults: 120, minors: 12 },
      { label: 'PL→AL', adults: 40, minors: '<5' },
      { label: 'PL→MA', adults: 30, minors: 6 },
    ],
  }
  const bars = parseSvg(await renderBarChart(table))
  const drawn = Array.from(bars.getElementsByTagName('path')).filter(
    (path) => path.getAttribute('aria-roledescription') === 'bar',
  )
  t.same(
    drawn.map((path) => path.getAttribute('aria-label')).sort(),
    [
      'label: PL→AL; people: 40; series: adults',
      'label: PL→MA; people: 30; series: adults',
      'label: PL→MA; people: 6; series: minors',
      'label: PL→UA; people: 120; series: adults',
      'label: PL→UA; people: 12; series: minors',
    ],
    'a bar for each number; none for the suppressed cell',
  )
  const height = (label: string) => {
    const path = drawn.find((p) => p.getAttribute('aria-label') === label)
    return Number(/v(-?[\d.]+)/.exec(path?.getAttribute('d') ?? '')?.[1])
  }
  t.equal(
    height('label: PL→UA; people: 120; series: adults') / height('label: PL→UA; people: 12; series: minors'),
    10,
    'bars are as long as their numbers',
  )
  const words = texts(bars.documentElement as Element)
  t.ok(words.includes('<5'), 'the suppressed cell says <5')
  t.ok(words.includes('Beneficiaries <served> & "minors"'), 'the title is escaped and reads as written')
  for (const label of ['PL→UA', 'PL→AL', 'PL→MA']) t.ok(words.includes(label), `a group for ${label}`)

  const lines = parseSvg(
    await renderLineChart({
      title: 'Minors supported per quarter',
      rows: [
        { label: '2026-Q1', minors: '<5' },
        { label: '2026-Q2', minors: 7 },
        { label: '2026-Q3', minors: 9 },
      ],
    }),
  )
  const points = Array.from(lines.getElementsByTagName('path'))
    .filter((path) => path.getAttribute('aria-roledescription') === 'point')
    .map((path) => path.getAttribute('aria-label'))
  t.same(
    points.sort(),
    ['label: 2026-Q2; value: 7; series: minors', 'label: 2026-Q3; value: 9; series: minors'],
    'a point for each number; none for the suppressed quarter',
  )
  t.ok(texts(lines.documentElement as Element).includes('<5'), 'which says <5')
})
