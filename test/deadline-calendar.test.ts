import t from 'tap'
import type { components } from '../openapi/dist/types.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { demoKeys, startTestApp, type TestApp } from './fixtures/app.js'
import { deadlineRunner } from './fixtures/deadline-runner.js'
import { record, transition } from './fixtures/referral.js'

// Deadlines as the calendar means them, through HTTP: every organisation keeps an IANA time zone,
// and a step falls due on the calendar of the organisation responsible for it.

type Schemas = components['schemas']

const ADMIN = demoKeys.demohubadmin as string
const PL_CW = demoKeys.demoiomplcw1 as string

t.test('organisations keep an IANA time zone, by default their country’s', async (t) => {
  const { request } = await startTestApp(t)
  for (const [id, zone] of [
    [demoOrganisationIds.iomPoland, 'Europe/Warsaw'],
    [demoOrganisationIds.iomUkraine, 'Europe/Kyiv'],
    [demoOrganisationIds.iomAlbania, 'Europe/Tirane'],
    [demoOrganisationIds.iomMorocco, 'Africa/Casablanca'],
  ] as const) {
    const read = await request({ method: 'GET', url: `/v1/organisations/${id}`, key: PL_CW })
    t.equal(read.json().time_zone, zone, `${read.json().name}: ${zone}`)
  }
  const me = await request({ method: 'GET', url: '/v1/me', key: PL_CW })
  t.equal(me.json().organisation.time_zone, 'Europe/Warsaw', "the caller's own organisation says it too")

  const partner = { kind: 'ngo', can_send: false, can_receive: true }
  const create = (body: object) => request({ method: 'POST', url: '/v1/organisations', key: ADMIN, payload: body })
  const accepted: [label: string, body: object, zone: string][] = [
    ['a Ukrainian NGO without a zone: Kyiv', { ...partner, name: 'La Strada Ukraine', country: 'UA' }, 'Europe/Kyiv'],
    [
      'a Spanish NGO: Madrid, not the Canaries',
      { ...partner, name: 'Proyecto Esperanza', country: 'ES' },
      'Europe/Madrid',
    ],
    [
      'an office in the Canaries names its zone',
      { ...partner, name: 'Oficina Canarias', country: 'ES', time_zone: 'Atlantic/Canary' },
      'Atlantic/Canary',
    ],
    [
      'a Brazilian partner names its zone',
      { ...partner, name: 'Projeto Trama', country: 'BR', time_zone: 'America/Sao_Paulo' },
      'America/Sao_Paulo',
    ],
  ]
  for (const [label, body, zone] of accepted) {
    const created = await create(body)
    t.equal(created.statusCode, 201, label)
    t.equal(created.json().time_zone, zone, `${label}: ${zone}`)
  }
  const refused: [label: string, body: object, code: string][] = [
    ['an unknown zone', { ...partner, name: 'X', country: 'PL', time_zone: 'Europe/Atlantis' }, 'invalid-time-zone'],
    ['an offset is not a zone', { ...partner, name: 'X', country: 'PL', time_zone: '+01:00' }, 'invalid-time-zone'],
    ['a country without a default zone', { ...partner, name: 'X', country: 'BR' }, 'time-zone-required'],
  ]
  for (const [label, body, code] of refused) {
    const response = await create(body)
    t.equal(response.statusCode, 422, `${label}: 422`)
    const problem = response.json() as Schemas['Problem']
    t.equal(problem.type, `urn:trm:problem:${code}`, `${label}: ${code}`)
    t.same(
      problem.errors?.map((error) => error.pointer),
      ['#/time_zone'],
      `${label}: points at time_zone`,
    )
  }
})

/** IOM Poland opens an adult's case, decides the return and sends the enquiry to a partner in the country of return. */
async function enquiryTo(app: TestApp, countryOfReturn: string, recipientId: string): Promise<string> {
  const opened = await app.request({
    method: 'POST',
    url: '/v1/cases',
    key: PL_CW,
    payload: { profile: { country_of_return: countryOfReturn, vulnerabilities: ['victim_of_trafficking'] } },
  })
  const caseId = opened.json().id as string
  await app.request({
    method: 'POST',
    url: `/v1/cases/${caseId}/consents`,
    key: PL_CW,
    payload: {
      given_at: '2027-03-25T09:00:00Z',
      method: 'written',
      language: 'en',
      interpreter: { used: false },
      guardian: null,
      provisions: [{ categories: ['identity'], recipients: [recipientId], purposes: ['return_assistance'] }],
      expires_at: null,
    },
  })
  await record(app, caseId, PL_CW, 'return_decision')
  await transition(app, caseId, PL_CW, 'decide_return')
  const sent = await app.request({
    method: 'POST',
    url: `/v1/cases/${caseId}/packets`,
    key: PL_CW,
    payload: { recipient_organisation_id: recipientId, purpose: 'return_assistance' },
  })
  if (sent.statusCode !== 201) throw new Error(`the enquiry answered ${sent.statusCode}: ${sent.body}`)
  return caseId
}

t.test('a step falls due on the calendar of the side responsible for it', async (t) => {
  // Friday 26 March 2027, 10:00 UTC: 11:00 in Warsaw and Casablanca, 12:00 in Kyiv. Summer time
  // starts in Poland and Ukraine on Sunday 28 March; Morocco keeps UTC+1.
  let now = new Date('2027-03-26T10:00:00Z')
  const clock = { now: () => now }
  const app = await startTestApp(t, {}, clock)

  const opened = await app.request({
    method: 'POST',
    url: '/v1/cases',
    key: PL_CW,
    payload: { profile: { country_of_return: 'UA', vulnerabilities: ['victim_of_trafficking'] } },
  })
  t.equal(
    opened.json().step_due_at,
    '2027-04-25T09:00:00.000Z',
    'identified, P30D for IOM Poland: 25 April at 11:00 Warsaw summer time, not 10:00 UTC',
  )

  const toKyiv = await enquiryTo(app, 'UA', demoOrganisationIds.iomUkraine)
  const toCasablanca = await enquiryTo(app, 'MA', demoOrganisationIds.iomMorocco)
  const dueOf = async (caseId: string) =>
    (await app.request({ method: 'GET', url: `/v1/cases/${caseId}`, key: PL_CW })).json() as Schemas['Case']
  t.match(
    await dueOf(toKyiv),
    { step: 'referral_sent', step_due_at: '2027-03-31T09:00:00.000Z' },
    'IOM Ukraine acknowledges within P5D: 31 March at 12:00 Kyiv (now UTC+3), 09:00 UTC',
  )
  t.match(
    await dueOf(toCasablanca),
    { step: 'referral_sent', step_due_at: '2027-03-31T10:00:00.000Z' },
    'IOM Morocco within P5D: 31 March at 11:00 Casablanca (UTC+1), 10:00 UTC',
  )

  const runToCompletion = await deadlineRunner(t, app, clock)
  now = new Date('2027-03-31T09:30:00Z')
  t.equal(await runToCompletion(), 1, 'at 09:30 UTC only the Kyiv deadline has passed')
  now = new Date('2027-03-31T10:30:00Z')
  t.equal(await runToCompletion(), 1, 'an hour later the Casablanca one too')
  const escalations = await app.request({ method: 'GET', url: '/v1/escalations', key: demoKeys.demoiomplsv1 })
  t.same(
    escalations
      .json()
      .items.map((e: Schemas['Escalation']) => [e.case_id, e.step, e.due_at, e.responsible_organisation_id])
      .sort(),
    [
      [toKyiv, 'referral_sent', '2027-03-31T09:00:00.000Z', demoOrganisationIds.iomUkraine],
      [toCasablanca, 'referral_sent', '2027-03-31T10:00:00.000Z', demoOrganisationIds.iomMorocco],
    ].sort(),
    'each escalation names the partner that had to act, at its own deadline',
  )
})
