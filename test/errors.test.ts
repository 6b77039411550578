import type { LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { demoKeys, startTestApp } from './fixtures/app.js'

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

  for (const [method, url] of [
    ['GET', '/v1/me'],
    ['GET', '/v1/organisations'],
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
