import type { AddressInfo } from 'node:net'
import { connect } from 'node:net'
import type { LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { demoKeys, startTestApp, type TestApp } from './fixtures/app.js'
import { newCase } from './fixtures/referral.js'

const adminKey = demoKeys.demohubadmin as string
const validOrganisation = { name: 'La Strada Ukraine', country: 'UA', kind: 'ngo', can_send: false, can_receive: true }

interface ProblemBody {
  type: string
  title: string
  status: number
  detail: string
  request_id: string
  errors?: { pointer?: string; parameter?: string; detail: string }[]
}

/** Asserts an RFC 9457 problem document of this status, with the request id in header and body. */
function assertProblem(t: Test, response: LightMyRequestResponse, status: number): ProblemBody {
  t.equal(response.statusCode, status, `answers ${status}`)
  t.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8')
  const body = response.json() as ProblemBody
  t.equal(body.status, status, 'status in the body')
  t.match(body.type, /^urn:trm:problem:[a-z-]+$/, 'type')
  t.type(body.title, 'string')
  t.ok(body.title.length > 0, 'title')
  t.type(body.detail, 'string')
  t.ok(body.detail.length > 0, 'detail')
  t.type(body.request_id, 'string')
  t.ok(body.request_id.length > 0, 'request_id')
  t.equal(response.headers['x-request-id'], body.request_id, 'x-request-id is the request_id')
  return body
}

t.test('a body that breaks the contract lists every bad field', async (t) => {
  const { request } = await startTestApp(t)
  const response = await request({
    method: 'POST',
    url: '/v1/organisations',
    key: adminKey,
    payload: { name: 'La Strada Ukraine', country: 'pl', kind: 'ngo', can_send: false, colour: 'blue' },
  })
  const body = assertProblem(t, response, 400)
  t.equal(body.type, 'urn:trm:problem:validation')
  t.ok(Array.isArray(body.errors), 'errors is a list')
  const pointers = (body.errors ?? []).map((error) => error.pointer)
  for (const pointer of ['#/colour', '#/country', '#/can_receive']) {
    t.ok(pointers.includes(pointer), `errors names ${pointer}`)
  }
  t.notOk(pointers.includes('#/name'), 'a good field is not named')
  t.notOk(pointers.includes('#/kind'), 'a good field is not named')
  for (const error of body.errors ?? []) {
    t.type(error.detail, 'string')
    t.notOk(error.parameter, 'a body error has no parameter')
  }
  t.match(
    body.errors?.find((error) => error.pointer === '#/colour'),
    { detail: 'is not an allowed property' },
  )

  const list = await request({ method: 'GET', url: '/v1/organisations?limit=200', key: adminKey })
  t.notOk(
    list.json().items.some((o: { name: string }) => o.name === 'La Strada Ukraine'),
    'nothing was created',
  )
})

t.test('body values are not coerced to the contract type', async (t) => {
  const { request } = await startTestApp(t)
  for (const [field, value] of [
    ['can_send', 'true'],
    ['can_receive', 1],
    ['name', 42],
    ['name', ''],
    ['kind', 'charity'],
  ] as const) {
    const response = await request({
      method: 'POST',
      url: '/v1/organisations',
      key: adminKey,
      payload: { ...validOrganisation, [field]: value },
    })
    t.comment(`${field}: ${JSON.stringify(value)}`)
    const body = assertProblem(t, response, 400)
    t.same(
      body.errors?.map((error) => error.pointer),
      [`#/${field}`],
      `only ${field} is named`,
    )
  }
  const nested = await request({
    method: 'POST',
    url: `/v1/organisations/${demoOrganisationIds.hub}/principals`,
    key: adminKey,
    payload: { name: 'x', kind: 'staff', roles: ['caseworker', 'wizard'] },
  })
  const body = assertProblem(t, nested, 400)
  t.ok(
    body.errors?.some((error) => error.pointer === '#/roles/1'),
    'a pointer reaches into arrays',
  )

  const good = await request({ method: 'POST', url: '/v1/organisations', key: adminKey, payload: validOrganisation })
  t.equal(good.statusCode, 201, 'the same body with good values is accepted')
})

t.test('bad query parameters are named', async (t) => {
  const { request } = await startTestApp(t)
  for (const [query, parameter] of [
    ['limit=0', 'limit'],
    ['limit=201', 'limit'],
    ['limit=abc', 'limit'],
    ['limit=1.5', 'limit'],
    ['colour=1', 'colour'],
    ['country=pl', 'country'],
    ['side=both', 'side'],
    ['cursor=', 'cursor'],
    ['cursor=bm90LWEtY3Vyc29y', 'cursor'],
  ]) {
    const response = await request({ method: 'GET', url: `/v1/organisations?${query}`, key: adminKey })
    t.comment(query)
    const body = assertProblem(t, response, 400)
    t.equal(body.type, 'urn:trm:problem:validation')
    t.ok(
      body.errors?.some((error) => error.parameter === parameter),
      `errors names the parameter ${parameter}`,
    )
    t.notOk(
      body.errors?.some((error) => error.pointer),
      'a parameter error has no body pointer',
    )
  }
  const good = await request({ method: 'GET', url: '/v1/organisations?limit=1&country=PL', key: adminKey })
  t.equal(good.statusCode, 200, 'good parameters are accepted')
  t.equal(good.json().items.length, 1)
})

t.test('a bad path parameter is a 400, not a 404 or 500', async (t) => {
  const { request } = await startTestApp(t)
  for (const id of ['not-a-uuid', '1', "1'%20or%20'1'='1", '00000000-0000-4000-8000-00000000000g']) {
    const response = await request({ method: 'GET', url: `/v1/organisations/${id}`, key: adminKey })
    t.comment(id)
    const body = assertProblem(t, response, 400)
    t.ok(
      body.errors?.some((error) => error.parameter === 'organisationId'),
      'errors names organisationId',
    )
  }
  const revoke = await request({ method: 'POST', url: '/v1/api-keys/nope/revoke', key: adminKey })
  t.ok(
    assertProblem(t, revoke, 400).errors?.some((error) => error.parameter === 'apiKeyId'),
    'errors names apiKeyId',
  )
  const missing = await request({
    method: 'GET',
    url: '/v1/organisations/00000000-0000-4000-8000-00000000ffff',
    key: adminKey,
  })
  assertProblem(t, missing, 404)
})

t.test('a body that is not JSON, or is empty, is a 400', async (t) => {
  const { request } = await startTestApp(t)
  for (const payload of ['{"name": "x",', '{name: 1}', 'null', '']) {
    const response = await request({
      method: 'POST',
      url: '/v1/organisations',
      key: adminKey,
      headers: { 'content-type': 'application/json' },
      payload,
    })
    t.comment(JSON.stringify(payload))
    assertProblem(t, response, 400)
  }
  for (const payload of ['[]', '"text"', '42']) {
    const response = await request({
      method: 'POST',
      url: '/v1/organisations',
      key: adminKey,
      headers: { 'content-type': 'application/json' },
      payload,
    })
    t.comment(payload)
    assertProblem(t, response, 400)
  }
  const noBody = await request({ method: 'POST', url: '/v1/organisations', key: adminKey })
  assertProblem(t, noBody, 400)
})

t.test('a body over the limit is a 413', async (t) => {
  const { request } = await startTestApp(t, { bodyLimitBytes: 1024 })
  const response = await request({
    method: 'POST',
    url: '/v1/organisations',
    key: adminKey,
    payload: { ...validOrganisation, name: 'x'.repeat(2048) },
  })
  const body = assertProblem(t, response, 413)
  t.equal(body.type, 'urn:trm:problem:payload-too-large')

  const small = await request({ method: 'POST', url: '/v1/organisations', key: adminKey, payload: validOrganisation })
  t.equal(small.statusCode, 201, 'a body under the limit is accepted')
})

t.test('a body that is not JSON by content type is a 415', async (t) => {
  const { request } = await startTestApp(t)
  for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
    const response = await request({
      method: 'POST',
      url: '/v1/organisations',
      key: adminKey,
      headers: { 'content-type': contentType },
      payload: JSON.stringify(validOrganisation),
    })
    t.comment(contentType)
    const body = assertProblem(t, response, 415)
    t.equal(body.type, 'urn:trm:problem:unsupported-media-type')
  }
  const charset = await request({
    method: 'POST',
    url: '/v1/organisations',
    key: adminKey,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    payload: JSON.stringify(validOrganisation),
  })
  t.equal(charset.statusCode, 201, 'application/json with a charset is accepted')
})

t.test('an unknown path is a 404 problem, with or without a key', async (t) => {
  const { request } = await startTestApp(t)
  for (const key of [undefined, adminKey]) {
    for (const url of ['/v1/nothing-here', '/', '/v2/me', '/v1/organisations/x/y/z?limit=1']) {
      const response = await request({ method: 'GET', url, ...(key ? { key } : {}) })
      t.comment(`${url} ${key ? 'with' : 'without'} a key`)
      const body = assertProblem(t, response, 404)
      t.equal(body.type, 'urn:trm:problem:not-found')
      t.notOk(response.headers['www-authenticate'], 'no authentication is asked for')
    }
  }
})

t.test('a method the contract does not define on a path is a 405 listing the allowed ones', async (t) => {
  const { request } = await startTestApp(t)
  for (const method of ['DELETE', 'PUT', 'PATCH', 'POST'] as const) {
    const response = await request({ method, url: '/v1/me', key: adminKey })
    t.comment(`${method} /v1/me`)
    const body = assertProblem(t, response, 405)
    t.equal(body.type, 'urn:trm:problem:method-not-allowed')
    t.equal(response.headers.allow, 'GET, HEAD')
  }
  const withoutKey = await request({ method: 'DELETE', url: '/v1/me' })
  assertProblem(t, withoutKey, 405)

  const organisations = await request({ method: 'DELETE', url: '/v1/organisations', key: adminKey })
  assertProblem(t, organisations, 405)
  t.equal(organisations.headers.allow, 'GET, POST, HEAD')

  const revoke = await request({
    method: 'GET',
    url: '/v1/api-keys/00000000-0000-4000-8000-00000000ffff/revoke',
    key: adminKey,
  })
  assertProblem(t, revoke, 405)
  t.equal(revoke.headers.allow, 'POST')

  const head = await request({ method: 'HEAD', url: '/v1/me', key: adminKey })
  t.equal(head.statusCode, 200, 'HEAD is allowed where GET is')
})

t.test('a failure inside the service is a 500 that discloses nothing', async (t) => {
  const { request, database } = await startTestApp(t)
  const before = await request({ method: 'GET', url: '/v1/me', key: adminKey })
  t.equal(before.statusCode, 200)
  await database.db.destroy()

  // The key's caller is held in memory a while, so `/v1/me` needs no database: these do.
  for (const [method, url] of [
    ['GET', '/v1/organisations'],
    ['GET', `/v1/organisations/${demoOrganisationIds.iomPoland}/principals`],
  ] as const) {
    const response = await request({ method, url, key: adminKey })
    t.comment(`${method} ${url}`)
    const body = assertProblem(t, response, 500)
    t.equal(body.type, 'urn:trm:problem:internal')
    t.equal(body.detail, 'The service failed to handle the request. Quote the request id when reporting it.')
    t.same(
      Object.keys(body).sort(),
      ['detail', 'request_id', 'status', 'title', 'type'],
      'nothing but the problem fields',
    )
    t.notMatch(response.body, /Error:/, 'no error text')
    t.notMatch(response.body, /\bat .*\.(ts|js):\d+/, 'no stack trace')
    t.notMatch(response.body, /stack/i, 'no stack')
    t.notMatch(response.body, /select|from "|api_keys|destroyed|driver/i, 'no SQL or driver message')
  }
})

t.test('an incoming x-request-id is used as the request id', async (t) => {
  const { request } = await startTestApp(t)
  const problem = await request({ method: 'GET', url: '/v1/me', headers: { 'x-request-id': 'abc-123' } })
  t.equal(assertProblem(t, problem, 401).request_id, 'abc-123')
  t.equal(problem.headers['x-request-id'], 'abc-123')

  const ok = await request({ method: 'GET', url: '/v1/me', key: adminKey, headers: { 'x-request-id': 'abc-123' } })
  t.equal(ok.statusCode, 200)
  t.equal(ok.headers['x-request-id'], 'abc-123', 'also on a success')

  for (const given of ['has space', 'x'.repeat(65), '<script>', '']) {
    const response = await request({ method: 'GET', url: '/v1/me', headers: { 'x-request-id': given } })
    t.comment(JSON.stringify(given))
    const body = assertProblem(t, response, 401)
    t.not(body.request_id, given, 'an unusable request id is replaced')
    t.match(body.request_id, /^[0-9a-f-]{36}$/, 'by a generated one')
  }

  const first = await request({ method: 'GET', url: '/v1/me' })
  const second = await request({ method: 'GET', url: '/v1/me' })
  t.not(first.headers['x-request-id'], second.headers['x-request-id'], 'generated ids differ')
})

const caseworkerKey = demoKeys.demoiomplcw1 as string
const someCase = '00000000-0000-4000-8000-00000000ffff'
const record = (data: unknown) => ({ kind: 'escort', data })

/** A JSON body as text, for what `JSON.stringify` would not write: lone surrogates, numbers past a double. */
function rawJson(request: TestApp['request'], url: string, payload: string) {
  return request({
    method: 'POST',
    url,
    key: caseworkerKey,
    headers: { 'content-type': 'application/json' },
    payload,
  })
}

t.test('text the database cannot store is a 400 naming where it is', async (t) => {
  const app = await startTestApp(t)
  const { request } = app
  const nul = await request({
    method: 'POST',
    url: '/v1/cases',
    key: caseworkerKey,
    payload: { ...newCase, sections: { identity: { given_name: 'Ole\u0000na' } } },
  })
  let body = assertProblem(t, nul, 400)
  t.equal(body.type, 'urn:trm:problem:validation')
  t.same(body.errors, [
    { pointer: '#/sections/identity/given_name', detail: 'contains a NUL character (\\u0000), which cannot be stored' },
  ])

  const surrogate = await rawJson(
    request,
    '/v1/cases',
    JSON.stringify({ ...newCase, sections: { health: { notes: 'SURROGATE' } } }).replace('SURROGATE', 'a\\ud800'),
  )
  body = assertProblem(t, surrogate, 400)
  t.same(body.errors, [
    { pointer: '#/sections/health/notes', detail: 'contains a lone UTF-16 surrogate, which is not Unicode text' },
  ])

  const key = await request({
    method: 'POST',
    url: `/v1/cases/${someCase}/records`,
    key: caseworkerKey,
    payload: record({ 'by\u0000': 'x', 'a/b': ['ok', 'bad\u0000'] }),
  })
  body = assertProblem(t, key, 400)
  t.same(
    body.errors?.map((error) => error.pointer),
    ['#/data/by\u0000', '#/data/a~1b/1'],
    'names of free-form fields are checked too, and every fault is listed',
  )

  const paired = await rawJson(
    request,
    `/v1/cases/${someCase}/records`,
    JSON.stringify(record({ summary: 'SURROGATE' })).replace('SURROGATE', '\\ud83d\\ude00 fine'),
  )
  t.not(paired.statusCode, 400, 'a surrogate pair (an emoji) is text like any other: the request gets past validation')
  t.ok(paired.statusCode < 500)

  const query = await request({ method: 'GET', url: '/v1/cases?state=a%00b', key: caseworkerKey })
  body = assertProblem(t, query, 400)
  t.ok(
    body.errors?.some((error) => error.parameter === 'state' && /NUL/.test(error.detail)),
    'a query parameter is checked the same way',
  )
})

t.test('numbers must be finite, in the query and in the body', async (t) => {
  const { request } = await startTestApp(t)
  for (const url of [
    '/v1/cases?limit=1e309',
    '/v1/cases?limit=Infinity',
    '/v1/cases?limit=-Infinity',
    '/v1/organisations?limit=1e309',
    '/v1/events?wait=Infinity',
    '/v1/events?wait=1e309',
    '/v1/events?wait=31',
    '/v1/events?limit=Infinity',
  ]) {
    const response = await request({ method: 'GET', url, key: caseworkerKey })
    t.comment(url)
    const body = assertProblem(t, response, 400)
    const parameter = url.includes('wait') ? 'wait' : 'limit'
    t.ok(
      body.errors?.some((error) => error.parameter === parameter),
      `errors names ${parameter}`,
    )
  }
  const free = await rawJson(request, `/v1/cases/${someCase}/records`, '{"kind":"escort","data":{"cost":1e309}}')
  t.same(assertProblem(t, free, 400).errors, [{ pointer: '#/data/cost', detail: 'must be a finite number' }])
  const typed = await rawJson(
    request,
    '/v1/cases',
    JSON.stringify({ ...newCase, sections: { family: { household: [{ relationship: 'son', age: 7 }] } } }).replace(
      '"age":7',
      '"age":1e309',
    ),
  )
  t.ok(
    assertProblem(t, typed, 400).errors?.some((error) => error.pointer === '#/sections/family/household/0/age'),
    'a typed number is refused too',
  )
})

t.test('free-form data has a depth and a size limit', async (t) => {
  const { request } = await startTestApp(t)
  const nested = (depth: number): unknown => (depth === 0 ? 'leaf' : { next: nested(depth - 1) })

  const deep = await rawJson(
    request,
    `/v1/cases/${someCase}/records`,
    `{"kind":"escort","data":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`,
  )
  let body = assertProblem(t, deep, 400)
  t.equal(body.errors?.length, 1, 'one error for 10,000 levels')
  t.match(body.errors?.[0]?.detail, /deeper than 32 levels/)
  const deepArray = await rawJson(request, '/v1/cases', `${'['.repeat(10_000)}${']'.repeat(10_000)}`)
  assertProblem(t, deepArray, 400)

  const nine = await request({
    method: 'POST',
    url: `/v1/cases/${someCase}/records`,
    key: caseworkerKey,
    payload: record({ summary: nested(9) }),
  })
  body = assertProblem(t, nine, 400)
  t.same(body.errors, [{ pointer: '#/data', detail: 'nests objects and arrays deeper than 8 levels' }])

  const large = await request({
    method: 'POST',
    url: `/v1/cases/${someCase}/records`,
    key: caseworkerKey,
    payload: record(Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`field${i}`, 'x'.repeat(4000)]))),
  })
  body = assertProblem(t, large, 400)
  t.same(body.errors, [{ pointer: '#/data', detail: 'holds more than 65536 bytes of JSON' }])

  const fits = await request({
    method: 'POST',
    url: `/v1/cases/${someCase}/records`,
    key: caseworkerKey,
    payload: record({ summary: nested(7), notes: 'x'.repeat(60_000) }),
  })
  t.not(fits.statusCode, 400, 'data at the limits gets past validation')
  t.ok(fits.statusCode < 500)
})

t.test('what the router refuses is a problem with a request id', async (t) => {
  const { app, request } = await startTestApp(t)
  for (const url of ['/v1/cases/%E0%A4%A', '/v1/organisations/%ZZ', '/v1/cases/%ED%A0%80']) {
    const response = await request({ method: 'GET', url, key: caseworkerKey })
    t.comment(url)
    const body = assertProblem(t, response, 400)
    t.equal(body.type, 'urn:trm:problem:bad-url')
    t.notMatch(response.body, url, 'the path is not echoed')
  }
  // Through inject: a status the router gives to any path is not declared on each operation.
  const long = await app.inject({
    method: 'GET',
    url: `/v1/cases/${'a'.repeat(200)}`,
    headers: { authorization: `Bearer ${caseworkerKey}` },
  })
  t.equal(assertProblem(t, long, 414).type, 'urn:trm:problem:uri-too-long')
  for (const method of ['TRACE', 'OPTIONS', 'PROPFIND'] as const) {
    const response = await request({ method: method as 'GET', url: '/v1/me', key: caseworkerKey })
    t.comment(method)
    t.ok([404, 405].includes(response.statusCode), `${method} is a 404 or 405`)
    assertProblem(t, response, response.statusCode)
  }
})

/** Sends raw bytes to the listening service and parses the one response it gets back. */
async function rawExchange(port: number, bytes: string) {
  const socket = connect(port, '127.0.0.1')
  socket.write(bytes)
  const chunks: Buffer[] = []
  for await (const chunk of socket) chunks.push(chunk as Buffer)
  const text = Buffer.concat(chunks).toString('utf8')
  const [head = '', body = ''] = text.split('\r\n\r\n')
  const [statusLine = '', ...lines] = head.split('\r\n')
  const headers = Object.fromEntries(
    lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
  )
  return { status: Number(statusLine.split(' ')[1]), headers, body }
}

t.test('requests that never get past the HTTP parser are answered with a problem too', async (t) => {
  const { app } = await startTestApp(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  for (const [status, bytes] of [
    [431, `GET /v1/me HTTP/1.1\r\nHost: x\r\nX-Padding: ${'p'.repeat(20_000)}\r\n\r\n`],
    [431, `GET /v1/cases/${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`],
    [400, 'NOT HTTP AT ALL\r\n\r\n'],
  ] as const) {
    const response = await rawExchange(port, bytes)
    t.comment(bytes.slice(0, 30))
    t.equal(response.status, status, `answers ${status}`)
    t.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8')
    const body = JSON.parse(response.body)
    t.match(body, { status, type: /^urn:trm:problem:[a-z-]+$/, title: String, detail: String })
    t.match(body.request_id, /^[0-9a-f-]{36}$/)
    t.equal(response.headers['x-request-id'], body.request_id, 'x-request-id is the request_id')
  }
})
