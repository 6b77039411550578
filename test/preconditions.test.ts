import t from 'tap'
import { startTestApp } from './fixtures/app.js'
import { acknowledgement, newCase, openReferral, recipient, sender } from './fixtures/referral.js'

t.test('a case in a list carries its ETag: changing it needs no second read', async (t) => {
  const { request } = await startTestApp(t)
  const opened = await request({ method: 'POST', url: '/v1/cases', key: sender, payload: newCase })
  t.equal(opened.headers.etag, '"1"', 'a new case is at its first version')
  const listed = await request({ method: 'GET', url: '/v1/cases', key: sender })
  const item = listed.json().items.find((c: { id: string }) => c.id === opened.json().id)
  t.equal(item.etag, '"1"', 'the list item names the same ETag as the header')

  const updated = await request({
    method: 'PATCH',
    url: `/v1/cases/${item.id}`,
    key: sender,
    headers: { 'if-match': item.etag },
    payload: { sections: { contact: { preferred_language: 'uk' } } },
  })
  t.equal(updated.statusCode, 200, 'the ETag of the list item is accepted as If-Match')
  t.equal(updated.headers.etag, '"2"')
  t.equal(updated.json().etag, '"2"', 'the body names the new ETag too')

  const stale = await request({
    method: 'PATCH',
    url: `/v1/cases/${item.id}`,
    key: sender,
    headers: { 'if-match': item.etag },
    payload: { sections: { contact: null } },
  })
  t.equal(stale.statusCode, 412)
  t.match(stale.json(), { type: 'urn:trm:problem:stale-version', current_etag: '"2"' })
})

t.test('an If-Match without its quotes is refused with the form it must take', async (t) => {
  const { request } = await startTestApp(t)
  const opened = await request({ method: 'POST', url: '/v1/cases', key: sender, payload: newCase })
  for (const malformed of ['1', 'W/"1"', '"one"']) {
    const response = await request({
      method: 'PATCH',
      url: `/v1/cases/${opened.json().id}`,
      key: sender,
      headers: { 'if-match': malformed },
      payload: { sections: { contact: null } },
    })
    t.equal(response.statusCode, 412, `If-Match: ${malformed} is refused`)
    t.equal(response.json().type, 'urn:trm:problem:stale-version')
    t.match(response.json().detail, 'e.g. If-Match: "3"', 'and the detail shows the expected form')
  }
})

t.test('a packet in the inbox carries its ETag, which changes with each answer; its version does not', async (t) => {
  const app = await startTestApp(t)
  const { packetId } = await openReferral(t, app)
  const inbox = await app.request({ method: 'GET', url: '/v1/packets?direction=inbound', key: recipient })
  const item = inbox.json().items.find((p: { id: string }) => p.id === packetId)
  t.equal(item.version, 1, 'the first packet of the case to IOM Ukraine')
  const read = await app.request({ method: 'GET', url: `/v1/packets/${packetId}`, key: recipient })
  t.equal(item.etag, read.headers.etag, 'the list item names the ETag of the packet')

  const acknowledged = await app.request({
    method: 'POST',
    url: `/v1/packets/${packetId}/acknowledge`,
    key: recipient,
    headers: { 'if-match': item.etag },
    payload: acknowledgement,
  })
  t.equal(acknowledged.statusCode, 200, 'the inbox ETag acknowledges it')
  t.not(acknowledged.json().etag, item.etag, 'the answer changed the ETag')
  t.equal(acknowledged.json().version, 1, 'but not the version: still the first packet to this recipient')
})
