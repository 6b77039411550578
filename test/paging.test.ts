import t from 'tap'
import { startTestApp } from './fixtures/app.js'
import { feedUntil } from './fixtures/feed.js'
import { newCase, sender } from './fixtures/referral.js'

t.test('the event feed pages with cursor, like every list; after still works, marked deprecated', async (t) => {
  const { request } = await startTestApp(t)
  for (let i = 0; i < 3; i++) {
    t.equal((await request({ method: 'POST', url: '/v1/cases', key: sender, payload: newCase })).statusCode, 201)
  }
  await feedUntil(request, sender, (events) => events.length === 3)
  const first = await request({ method: 'GET', url: '/v1/events?limit=2', key: sender })
  t.equal(first.json().items.length, 2)
  t.equal(first.json().has_more, true, 'three cases opened: three events, two on the first page')
  t.notOk(first.headers.deprecation, 'no Deprecation header without after')
  const cursor = first.json().next_cursor as string

  const withCursor = await request({ method: 'GET', url: `/v1/events?limit=2&cursor=${cursor}`, key: sender })
  t.same(
    withCursor.json().items.map((e: { type: string }) => e.type),
    ['case.opened'],
    'the next page holds the third case.opened',
  )
  t.notOk(withCursor.headers.deprecation)

  const withAfter = await request({ method: 'GET', url: `/v1/events?limit=2&after=${cursor}`, key: sender })
  t.same(withAfter.json().items, withCursor.json().items, 'after gives the same page')
  t.equal(withAfter.headers.deprecation, '@1796169600', 'and says it is deprecated (RFC 9745)')
  t.match(withAfter.headers.link, 'rel="deprecation"')

  const both = await request({
    method: 'GET',
    url: `/v1/events?cursor=${cursor}&after=${withCursor.json().next_cursor}`,
    key: sender,
  })
  t.equal(both.statusCode, 400, 'cursor and after that differ are refused')
  t.match(both.json(), { type: 'urn:trm:problem:validation', errors: [{ parameter: 'after' }] })
})
