import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'kysely'
import t from 'tap'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { recordEvent } from '../src/events/outbox.js'
import { demoKeys, startTestApp, type TestApp, testDatabaseUrl } from './fixtures/app.js'
import { newCase, openReferral, recipient, sender } from './fixtures/referral.js'

interface FeedItem {
  id: string
  type: string
  case_id: string
  organisation_ids: string[]
  data: Record<string, unknown>
}

/** Every event of the caller's feed after a cursor, page by page. */
async function readFeed(request: TestApp['request'], key: string, after?: string, limit = 100) {
  const items: FeedItem[] = []
  let cursor = after
  for (;;) {
    const query = new URLSearchParams({ limit: String(limit), ...(cursor ? { after: cursor } : {}) })
    const response = await request({ method: 'GET', url: `/v1/events?${query}`, key })
    const page = response.json() as { items: FeedItem[]; next_cursor: string; has_more: boolean }
    items.push(...page.items)
    cursor = page.next_cursor
    if (!page.has_more) return { items, cursor }
  }
}

/**
 * The feed after a cursor once it holds at least `count` events, asking for at most 60 seconds: on
 * PostgreSQL an event shows only once every older transaction of the cluster has ended, and other
 * clients of the same cluster may hold one open for a moment.
 */
async function readFeedOf(request: TestApp['request'], key: string, count: number, after?: string) {
  const until = Date.now() + 60_000
  for (;;) {
    const feed = await readFeed(request, key, after)
    if (feed.items.length >= count || Date.now() > until) return feed
    await sleep(100)
  }
}

t.test('each organisation reads the events of what it is party to, in order, without personal data', async (t) => {
  const app = await startTestApp(t)
  const { request } = app
  const { caseId, packetId } = await openReferral(t, app)

  const poland = await readFeedOf(request, sender, 7)
  t.same(
    poland.items.map((event) => event.type),
    [
      'case.opened',
      'consent.recorded',
      'case.record_added',
      'case.transitioned',
      'packet.sent',
      'case.transitioned',
      'packet.received',
    ],
    'IOM Poland sees its case opened, the consent, the return decision recorded and taken, the enquiry sent (which moves the case on) and received',
  )
  t.ok(
    poland.items.every((event) => event.case_id === caseId),
    'every event names the case',
  )
  t.same(
    poland.items.filter((event) => event.type === 'case.transitioned').map((event) => event.data.action),
    ['decide_return', 'send_referral'],
    'the two steps are the return decision and the enquiry',
  )
  const sent = poland.items.find((event) => event.type === 'packet.sent')
  t.match(sent?.data, { packet_id: packetId, status: 'sent', case_reference: /^PL-UA-\d{4}-\d{6}$/ })
  t.same(poland.items[0]?.organisation_ids, [demoOrganisationIds.iomPoland], 'the case opened concerns its sender')
  t.same(
    poland.items[0]?.data,
    {
      case_reference: sent?.data.case_reference,
      version: 1,
      step: 'identified',
      lead_organisation_id: demoOrganisationIds.iomPoland,
    },
    'the case opened says its reference, first version, first step and lead',
  )
  t.same(
    [...(sent?.organisation_ids ?? [])].sort(),
    [demoOrganisationIds.iomPoland, demoOrganisationIds.iomUkraine].sort(),
    'the packet sent concerns its sender and recipient, and says so',
  )

  const ukraine = await readFeedOf(request, recipient, 2)
  t.same(
    ukraine.items.map((event) => event.type),
    ['packet.sent', 'packet.received'],
    'IOM Ukraine, party to the packet but not yet to the case, sees only the packet',
  )
  for (const key of [demoKeys.demoiommacw1, demoKeys.demobgplcw01, demoKeys.demoshuacw01] as string[]) {
    t.same((await readFeed(request, key)).items, [], 'an organisation with no part in it sees nothing')
  }
  const everything = JSON.stringify([...poland.items, ...ukraine.items])
  for (const personal of ['Olena', 'Kovalenko', 'post-traumatic']) {
    t.notOk(everything.includes(personal), `no event carries personal data (${personal})`)
  }

  const acknowledged = await request({
    method: 'POST',
    url: `/v1/packets/${packetId}/acknowledge`,
    key: recipient,
    headers: { 'if-match': '"2"' },
    payload: {
      focal_point: { name: 'Iryna Shevchenko', role: 'Case manager', email: 'ishevchenko@iom.example' },
      alternate_contact: { name: 'Taras Bondar', role: 'Deputy', phone: '+380 44 000 0001' },
    },
  })
  t.equal(acknowledged.statusCode, 200, 'IOM Ukraine acknowledges')
  const later = await readFeedOf(request, recipient, 2, ukraine.cursor)
  t.same(
    later.items.map((event) => event.type),
    ['packet.acknowledged', 'case.transitioned'],
    'from the cursor, only what happened since: the acknowledgement, and the step it takes, now as a party',
  )
  t.notOk(JSON.stringify(later.items).includes('Shevchenko'), 'the focal point stays out of the event')
  t.same((await readFeed(request, recipient, later.cursor)).items, [], 'and then nothing more')

  const paged = await readFeed(request, sender, undefined, 1)
  t.same(
    paged.items.map((event) => event.id),
    (await readFeed(request, sender)).items.map((event) => event.id),
    'pages of one event give the same feed',
  )

  const dpo = await request({ method: 'GET', url: '/v1/events', key: demoKeys.demoiompldpo })
  t.equal(dpo.statusCode, 200, 'a data protection officer reads the feed too')
  const admin = await request({ method: 'GET', url: '/v1/events', key: demoKeys.demohubadmin })
  t.equal(admin.statusCode, 403, 'the hub admin has no feed')
  for (const after of [
    'nonsense',
    Buffer.from('["1"]').toString('base64url'),
    Buffer.from('["x","1"]').toString('base64url'),
  ]) {
    const bad = await request({ method: 'GET', url: `/v1/events?after=${after}`, key: sender })
    t.equal(bad.statusCode, 400, `a cursor the service did not issue is a 400 (${after})`)
  }
})

t.test('a long poll answers as soon as an event arrives', async (t) => {
  const app = await startTestApp(t)
  const start = await readFeed(app.request, sender)
  const polling = app.request({ method: 'GET', url: `/v1/events?wait=20&after=${start.cursor}`, key: sender })
  await sleep(300)
  const opened = await app.request({ method: 'POST', url: '/v1/cases', key: sender, payload: newCase })
  const page = (await polling).json() as { items: FeedItem[] }
  t.same(
    page.items.map((event) => [event.type, event.case_id]),
    [['case.opened', opened.json().id]],
    'the waiting request returns the new event',
  )
  const tooLong = await app.request({ method: 'GET', url: '/v1/events?wait=31', key: sender })
  t.equal(tooLong.statusCode, 400, 'a wait over 30 seconds is refused')
})

// The rest is about transactions that overlap, which only PostgreSQL runs.
const skip = testDatabaseUrl ? false : 'needs PostgreSQL (set TEST_DATABASE_URL): PGlite runs one transaction at a time'

t.test(
  'an event committed after a later one is not skipped, and is shown only once both are done',
  { skip },
  async (t) => {
    const app = await startTestApp(t)
    const { database, request } = app
    const opened = await request({ method: 'POST', url: '/v1/cases', key: sender, payload: newCase })
    const caseId = opened.json().id as string
    // The cursor is taken once the case's opening shows: until then another client's transaction on
    // the cluster may still hold it back, and it would show up later among what the test reads.
    const { cursor } = await readFeedOf(request, sender, 1)
    const organisationId = (await request({ method: 'GET', url: '/v1/me', key: sender })).json().organisation.id

    let releaseFirst = () => {}
    const firstMayCommit = new Promise<void>((resolve) => {
      releaseFirst = resolve
    })
    let firstWritten = () => {}
    const firstHasWritten = new Promise<void>((resolve) => {
      firstWritten = resolve
    })
    const first = database.db.transaction().execute(async (trx) => {
      await recordEvent(trx, { type: 'case.updated', caseId, data: { version: 101 } }, [organisationId])
      firstWritten()
      await firstMayCommit
    })
    await firstHasWritten
    await database.db.transaction().execute(async (trx) => {
      await recordEvent(trx, { type: 'case.updated', caseId, data: { version: 102 } }, [organisationId])
    })
    const naive = await sql<{ version: number }>`
    select (data->>'version')::int as version from events where case_id = ${caseId} and data ? 'version'
      and (data->>'version')::int > 100 order by seq
  `.execute(database.db)
    t.same(
      naive.rows.map((row) => row.version),
      [102],
      'a reader ordering by sequence alone would now see the second event and move past the first',
    )
    const whileFirstRuns = await readFeed(request, sender, cursor)
    t.same(
      whileFirstRuns.items.filter((event) => event.case_id === caseId),
      [],
      'the feed holds back the committed event while an older transaction runs',
    )
    releaseFirst()
    await first
    const afterBoth = await readFeedOf(request, sender, 2, whileFirstRuns.cursor)
    t.same(
      afterBoth.items.map((event) => event.data.version),
      [101, 102],
      'once both are done, the feed gives both, from the same cursor, in order',
    )
  },
)

t.test(
  '8 writers committing out of order: a consumer paging the feed gets every event exactly once',
  { skip },
  async (t) => {
    const app = await startTestApp(t)
    const { database, request } = app
    const caseId = (await request({ method: 'POST', url: '/v1/cases', key: sender, payload: newCase })).json()
      .id as string
    const organisationId = (await request({ method: 'GET', url: '/v1/me', key: sender })).json().organisation.id
    const start = await readFeedOf(request, sender, 1)

    const WRITERS = 8
    const EACH = 25
    const committed: number[] = []
    let writing = true
    const writers = Array.from({ length: WRITERS }, async (_, writer) => {
      for (let i = 0; i < EACH; i += 1) {
        const version = 1000 + writer * EACH + i
        await database.db.transaction().execute(async (trx) => {
          await sql`select pg_sleep(${Math.random() * 0.03})`.execute(trx)
          await recordEvent(trx, { type: 'case.updated', caseId, data: { version } }, [organisationId])
          await sql`select pg_sleep(${Math.random() * 0.03})`.execute(trx)
        })
        committed.push(version)
      }
    })
    const received: number[] = []
    let cursor = start.cursor
    // Once the writers are done, the consumer goes on until it has every event, or until a minute
    // brought none: other clients of the cluster may hold the last events back a while (never lose them).
    let quietSince = Number.POSITIVE_INFINITY
    const consumer = (async () => {
      while (writing || received.length < WRITERS * EACH) {
        const page = await readFeed(request, sender, cursor, 7)
        received.push(...page.items.map((event) => event.data.version as number))
        cursor = page.cursor
        if (page.items.length > 0 && !writing) quietSince = Date.now()
        if (!writing && page.items.length === 0 && Date.now() - quietSince > 60_000) break
        await sleep(5)
      }
    })()
    await Promise.all(writers)
    writing = false
    quietSince = Date.now()
    await consumer

    const inSequence = await sql<{ version: number }>`
    select (data->>'version')::int as version from events
    where case_id = ${caseId} and (data->>'version')::int >= 1000 order by seq
  `.execute(database.db)
    const sequenceOrder = inSequence.rows.map((row) => row.version)
    t.not(
      JSON.stringify(committed),
      JSON.stringify(sequenceOrder),
      'the writers did commit in another order than their events were numbered',
    )
    t.equal(received.length, WRITERS * EACH, `the consumer received ${WRITERS * EACH} events`)
    t.equal(new Set(received).size, WRITERS * EACH, 'each of them once')
    t.same(
      [...received].sort((a, b) => a - b),
      [...committed].sort((a, b) => a - b),
      'and exactly the committed ones',
    )
  },
)
