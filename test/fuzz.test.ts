import { randomUUID } from 'node:crypto'
import { type AddressInfo, connect } from 'node:net'
import fc from 'fast-check'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { contract } from '../src/http/contract.js'
import { demoKeys, startTestApp } from './fixtures/app.js'
import { openReferral } from './fixtures/referral.js'

/**
 * Requests generated from the contract, for every operation: bodies, path and query parameters
 * and headers that the contract allows, and the same broken in every way we could think of.
 * Whatever arrives, the service answers below 500, and every refusal is a problem document.
 * The run is seeded (FUZZ_SEED to vary it) and bounded (FUZZ_RUNS).
 */
const seed = Number(process.env.FUZZ_SEED ?? 20_261_202)
const numRuns = Number(process.env.FUZZ_RUNS ?? 300)

type Schema = Record<string, unknown>
interface Parameter {
  name: string
  in: 'path' | 'query' | 'header'
  required?: boolean
  schema: Schema
}
interface Operation {
  method: string
  path: string
  operationId: string
  parameters: Parameter[]
  body?: Schema
}

const schemas = (contract.components.schemas ?? {}) as Record<string, Schema>

function resolve(schema: Schema): Schema {
  const ref = schema.$ref
  return typeof ref === 'string' ? resolve(schemas[ref.replace('#/components/schemas/', '')] as Schema) : schema
}

const operations: Operation[] = Object.entries(contract.paths).flatMap(([path, item]) =>
  (['get', 'put', 'post', 'delete', 'patch'] as const).flatMap((method) => {
    const operation = item[method] as
      | (Record<string, unknown> & { operationId: string; parameters?: unknown[]; requestBody?: unknown })
      | undefined
    if (!operation) return []
    const parameters = [...(item.parameters ?? []), ...(operation.parameters ?? [])].map((parameter) => {
      const ref = (parameter as { $ref?: string }).$ref
      return (
        ref ? contract.components.parameters?.[ref.replace('#/components/parameters/', '')] : parameter
      ) as Parameter
    })
    const body = (operation.requestBody as { content?: Record<string, { schema?: Schema }> } | undefined)?.content?.[
      'application/json'
    ]?.schema
    return [{ method: method.toUpperCase(), path, operationId: operation.operationId, parameters, body }]
  }),
)

/** Identifiers that exist, so that generated requests reach handlers and not only 404s. */
const known = {
  uuids: [...Object.values(demoOrganisationIds)] as string[],
}

const DEEP = (depth: number): unknown => (depth === 0 ? 'bottom' : { deeper: DEEP(depth - 1) })
/** Stands for a number JSON can write but a double cannot hold; replaced in the text of the body. */
const HUGE_NUMBER = '\u0001huge-number\u0001'

const nastyStrings = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\ud800',
  'a\ud800',
  '\udc00z',
  '😀',
  'x'.repeat(5001),
  "'; drop table cases; --",
  '%00',
  '../..',
  'null',
  '1e309',
  'Infinity',
  '\u202eevil',
]
const nastyValue = fc.oneof(
  fc.constantFrom<unknown>(...nastyStrings),
  fc.constantFrom<unknown>(null, true, 0, -1, 1.5, 2 ** 53, -(2 ** 31), [], {}, [null], HUGE_NUMBER, DEEP(40)),
)
const nastyQuery = ['1e309', 'Infinity', '-Infinity', 'NaN', '-1', '0', '1.5', '', '%00', '%ED%A0%80', 'a'.repeat(600)]
const nastyPath = [
  'not-a-uuid',
  '%00',
  '%ED%A0%80',
  '%E0%A4%A',
  'a'.repeat(150),
  '..',
  '%2F',
  randomUUID().toUpperCase(),
]

/** Values the schema allows (most of the time: formats are approximated). */
function valid(schema: Schema, depth = 0): fc.Arbitrary<unknown> {
  const s = resolve(schema)
  if (s.const !== undefined) return fc.constant(s.const)
  if (Array.isArray(s.enum)) return fc.constantFrom(...(s.enum as unknown[]))
  for (const combinator of ['anyOf', 'oneOf'] as const) {
    const options = s[combinator] as Schema[] | undefined
    if (options) return fc.oneof(...options.map((option) => valid(option, depth)))
  }
  if (Array.isArray(s.allOf)) return valid(s.allOf[0] as Schema, depth)
  if (Array.isArray(s.type)) return fc.oneof(...s.type.map((type) => valid({ ...s, type }, depth)))
  switch (s.type) {
    case 'null':
      return fc.constant(null)
    case 'boolean':
      return fc.boolean()
    case 'integer':
      return fc.integer({ min: (s.minimum as number) ?? -1000, max: (s.maximum as number) ?? 1000 })
    case 'number':
      return fc.double({ min: (s.minimum as number) ?? -1e6, max: (s.maximum as number) ?? 1e6, noNaN: true })
    case 'string':
      return validString(s)
    case 'array': {
      if (depth > 6) return fc.constant([])
      const minLength = (s.minItems as number) ?? 0
      const maxLength = Math.min((s.maxItems as number) ?? 3, minLength + 3)
      const items = valid((s.items as Schema) ?? {}, depth + 1)
      return s.uniqueItems
        ? fc.uniqueArray(items, { minLength, maxLength, selector: (item) => JSON.stringify(item) })
        : fc.array(items, { minLength, maxLength })
    }
    default:
      return validObject(s, depth)
  }
}

function validString(s: Schema): fc.Arbitrary<unknown> {
  const date = fc.date({ min: new Date('2000-01-01'), max: new Date('2035-12-31'), noInvalidDate: true })
  switch (s.format) {
    case 'uuid':
      return fc.oneof(fc.constantFrom(...known.uuids), fc.uuid())
    case 'date-time':
      return date.map((d) => d.toISOString())
    case 'date':
      return date.map((d) => d.toISOString().slice(0, 10))
    case 'email':
      return fc.constantFrom('focal.point@example.org', 'a@b.co')
    case 'uri':
    case 'uri-reference':
      return fc.constantFrom('https://partner.example.org/hooks/trm', 'http://127.0.0.1/hook', 'https://203.0.113.9/x')
  }
  if (typeof s.pattern === 'string') {
    return fc.stringMatching(new RegExp(s.pattern)).filter((text) => text.length <= ((s.maxLength as number) ?? 64))
  }
  const minLength = (s.minLength as number) ?? 0
  return fc.string({ minLength, maxLength: Math.max(minLength, Math.min((s.maxLength as number) ?? 40, 40)) })
}

function validObject(s: Schema, depth: number): fc.Arbitrary<unknown> {
  const properties = (s.properties ?? {}) as Record<string, Schema>
  const required = (s.required ?? []) as string[]
  const record =
    depth > 6
      ? fc.constant({})
      : fc.record(
          Object.fromEntries(Object.entries(properties).map(([name, property]) => [name, valid(property, depth + 1)])),
          { requiredKeys: required.filter((name) => name in properties) },
        )
  if (s.additionalProperties !== true) return record
  const free = fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 })
  return fc.tuple(record, free).map(([known, extra]) => ({ ...extra, ...(known as object) }))
}

/** Replaces one value somewhere inside a valid body with a nasty one, or adds an unknown field. */
function broken(value: unknown): fc.Arbitrary<unknown> {
  const paths: string[][] = []
  const collect = (node: unknown, path: string[]) => {
    paths.push(path)
    if (node !== null && typeof node === 'object') {
      for (const [key, child] of Object.entries(node)) collect(child, [...path, key])
    }
  }
  collect(value, [])
  return fc.tuple(fc.constantFrom(...paths), nastyValue, fc.boolean()).map(([path, nasty, addField]) => {
    const copy = structuredClone(value) as Record<string, unknown>
    if (path.length === 0) return addField ? { ...copy, unexpected_field: nasty } : nasty
    let parent = copy as Record<string, unknown>
    for (const key of path.slice(0, -1)) parent = parent[key] as Record<string, unknown>
    const last = path.at(-1) as string
    if (addField && typeof parent === 'object' && !Array.isArray(parent)) parent[`${last}_unexpected`] = nasty
    else parent[last] = nasty
    return copy
  })
}

const rawBodies = [
  '',
  'null',
  '[]',
  '"text"',
  '{',
  '{"a":1e309}',
  `${'['.repeat(10_000)}${']'.repeat(10_000)}`,
  `{"data":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`,
]

function bodyFor(operation: Operation): fc.Arbitrary<string | undefined> {
  if (!operation.body) return fc.oneof(fc.constant(undefined), fc.constant('{}'))
  const good = valid(operation.body)
  return fc.oneof(
    { weight: 4, arbitrary: good.map(encode) },
    { weight: 4, arbitrary: good.chain(broken).map(encode) },
    { weight: 1, arbitrary: fc.constantFrom(...rawBodies) },
  )
}

function encode(value: unknown): string {
  return JSON.stringify(value).replaceAll(JSON.stringify(HUGE_NUMBER), '1e309')
}

function parameterValue(parameter: Parameter, nasty: string[]): fc.Arbitrary<string> {
  const good = valid(parameter.schema).map((value) =>
    encodeURIComponent(typeof value === 'string' ? value : JSON.stringify(value)),
  )
  return fc.oneof({ weight: 3, arbitrary: good }, { weight: 1, arbitrary: fc.constantFrom(...nasty) })
}

const keys = Object.values(demoKeys)
const authorization = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...keys).map((key) => `Bearer ${key}`) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      undefined,
      '',
      'Bearer',
      'Basic dXNlcjpwYXNz',
      'Bearer not-a-key',
      `Bearer trm_demoiomplcw1_${'x'.repeat(30)}`,
      `Bearer trm_zzzzzzzzzzzz_${'x'.repeat(30)}`,
      `Bearer ${keys[0]} extra`,
    ),
  },
)
const headerValues: Record<string, string[]> = {
  'if-match': ['"1"', '"2"', '"999999999"', 'W/"1"', '*', '', 'garbage', '"1"\u0000', '"99999999999999999999"'],
  'idempotency-key': [randomUUID(), randomUUID(), randomUUID(), '', 'x'.repeat(300), 'ü', 'a\u0000b', 'with spaces'],
}

function requestFor(operation: Operation): fc.Arbitrary<InjectOptions> {
  const pathParameters = operation.parameters.filter((p) => p.in === 'path')
  const queryParameters = operation.parameters.filter((p) => p.in === 'query')
  const headerParameters = operation.parameters.filter((p) => p.in === 'header')
  return fc
    .record({
      path: fc.tuple(...pathParameters.map((p) => parameterValue(p, nastyPath))),
      query: fc.tuple(
        ...queryParameters.map((p) => fc.option(parameterValue(p, nastyQuery), { nil: undefined, freq: 2 })),
      ),
      unknownQuery: fc.option(fc.constantFrom('colour=blue', '%00=1', 'limit=5&limit=6'), { nil: undefined, freq: 6 }),
      headers: fc.tuple(
        ...headerParameters.map((p) =>
          fc.option(fc.constantFrom(...(headerValues[p.name.toLowerCase()] ?? [''])), { nil: undefined, freq: 3 }),
        ),
      ),
      authorization,
      contentType: fc.oneof(
        { weight: 9, arbitrary: fc.constant('application/json') },
        { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/json; charset=latin1', 'application/xml') },
      ),
      body: bodyFor(operation),
    })
    .map(({ path, query, unknownQuery, headers, authorization, contentType, body }) => {
      let url = operation.path
      pathParameters.forEach((p, i) => {
        url = url.replace(`{${p.name}}`, path[i] as string)
      })
      const pairs = queryParameters.flatMap((p, i) => (query[i] === undefined ? [] : [`${p.name}=${query[i]}`]))
      if (unknownQuery) pairs.push(unknownQuery)
      const requestHeaders: Record<string, string> = {}
      headerParameters.forEach((p, i) => {
        if (headers[i] !== undefined) requestHeaders[p.name.toLowerCase()] = headers[i] as string
      })
      if (authorization !== undefined) requestHeaders.authorization = authorization
      if (body !== undefined) requestHeaders['content-type'] = contentType
      return {
        method: operation.method as InjectOptions['method'],
        url: pairs.length > 0 ? `${url}?${pairs.join('&')}` : url,
        headers: requestHeaders,
        ...(body !== undefined ? { payload: body } : {}),
      }
    })
}

/** What is wrong with a response, by the rule that bad input is a 4xx problem and nothing is a 5xx. */
function faultOf(response: { statusCode: number; headers: Record<string, unknown>; body: string }): string | null {
  const { statusCode: status, headers, body } = response
  if (status >= 500) return `a ${status}`
  if (status < 400) return null
  if (!String(headers['content-type']).startsWith('application/problem+json')) {
    return `a ${status} as ${headers['content-type']}`
  }
  let problem: Record<string, unknown>
  try {
    problem = JSON.parse(body)
  } catch {
    return `a ${status} whose body is not JSON`
  }
  for (const field of ['type', 'title', 'request_id'] as const) {
    if (typeof problem[field] !== 'string' || problem[field] === '') return `a ${status} without ${field}`
  }
  if (problem.status !== status) return `a ${status} whose body says status ${problem.status}`
  if (headers['x-request-id'] !== problem.request_id) return `a ${status} whose x-request-id is not its request_id`
  return null
}

function describe(options: InjectOptions, response: LightMyRequestResponse): string {
  const payload = typeof options.payload === 'string' ? options.payload.slice(0, 200) : ''
  return `${options.method} ${String(options.url).slice(0, 200)} ${JSON.stringify(options.headers)} ${payload} → ${response.statusCode} ${response.body.slice(0, 300)}`
}

t.test('requests to every operation, generated and handpicked', async (t) => {
  const testApp = await startTestApp(t, { rateLimitPerMinute: 1_000_000, authFailuresPerMinute: 1_000_000 })
  const referral = await openReferral(t, testApp)
  const me = await testApp.app.inject({
    method: 'GET',
    url: '/v1/me',
    headers: { authorization: `Bearer ${demoKeys.demohubadmin}` },
  })
  known.uuids.push(referral.caseId, referral.consentId, referral.packetId, me.json().principal.id, me.json().api_key.id)
  await t.test(`generated from the contract (seed ${seed}, ${numRuns} runs)`, (t) => generated(t, testApp.app))
  await t.test('the inputs that used to fail the service', (t) => handpicked(t, testApp.app))
})

async function generated(t: Test, app: FastifyInstance) {
  const answered = new Map<number, number>()
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...operations).chain(requestFor), async (options) => {
      const response = await app.inject(options)
      answered.set(response.statusCode, (answered.get(response.statusCode) ?? 0) + 1)
      const fault = faultOf(response)
      if (fault) throw new Error(`${fault}: ${describe(options, response)}`)
    }),
    { seed, numRuns, endOnFailure: true },
  )
  t.pass(`${numRuns} requests, none answered with a 5xx or a 4xx that is not a problem`)
  t.comment(`statuses: ${JSON.stringify(Object.fromEntries([...answered].sort(([a], [b]) => a - b)))}`)
  const reached = [...answered].filter(([status]) => status < 400 || ![400, 401, 404].includes(status))
  t.ok(reached.length > 0, 'some requests got past validation, authentication and lookup')
  t.ok((answered.get(200) ?? 0) + (answered.get(201) ?? 0) > 0, 'some requests succeeded')
}

async function handpicked(t: Test, app: FastifyInstance) {
  const authorization = `Bearer ${demoKeys.demoiomplcw1}`
  const someCase = '00000000-0000-4000-8000-00000000ffff'
  const json = (url: string, payload: string, method: InjectOptions['method'] = 'POST') => ({
    method,
    url,
    headers: { authorization, 'content-type': 'application/json' },
    payload,
  })
  const profile = '{"age_band":"25_34","sex":"female","nationality":"UA","country_of_return":"UA","vulnerabilities":[]}'
  const probes: InjectOptions[] = [
    json('/v1/cases', `{"profile":${profile},"sections":{"identity":{"given_name":"a\\u0000"}}}`),
    json('/v1/cases', `{"profile":${profile},"sections":{"identity":{"given_name":"a\\ud800"}}}`),
    json('/v1/cases', `{"profile":${profile},"sections":{"identity":{"a\\u0000":"x"}}}`),
    json(`/v1/cases/${someCase}/records`, '{"kind":"escort","data":{"summary":"a\\u0000"}}'),
    json(`/v1/cases/${someCase}/records`, '{"kind":"escort","data":{"cost":1e309}}'),
    json(`/v1/cases/${someCase}/records`, `{"kind":"escort","data":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`),
    json(
      `/v1/cases/${someCase}/records`,
      `{"kind":"escort","data":{"list":${'['.repeat(10_000)}${']'.repeat(10_000)}}}`,
    ),
    json('/v1/webhook-endpoints', '{"url":"https://partner.example.org/\\ud800"}'),
    { method: 'GET', url: '/v1/cases?limit=1e309', headers: { authorization } },
    { method: 'GET', url: '/v1/cases?limit=Infinity', headers: { authorization } },
    { method: 'GET', url: '/v1/organisations?limit=-Infinity', headers: { authorization } },
    { method: 'GET', url: '/v1/events?wait=Infinity', headers: { authorization } },
    { method: 'GET', url: '/v1/events?wait=1e309', headers: { authorization } },
    { method: 'GET', url: '/v1/cases?state=%00', headers: { authorization } },
    { method: 'GET', url: '/v1/cases/%E0%A4%A', headers: { authorization } },
    { method: 'GET', url: '/v1/cases/%ED%A0%80', headers: { authorization } },
    { method: 'GET', url: `/v1/cases/${'a'.repeat(5000)}`, headers: { authorization } },
    { method: 'GET', url: `/v1/${'segment/'.repeat(1000)}`, headers: { authorization } },
    { method: 'GET', url: '/v1/nothing-here' },
    { method: 'DELETE', url: '/v1/me', headers: { authorization } },
    { method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${'x'.repeat(10_000)}` } },
  ]
  for (const options of probes) {
    const response = await app.inject(options)
    t.equal(faultOf(response), null, `${options.method} ${String(options.url).slice(0, 60)} → ${response.statusCode}`)
    t.ok(response.statusCode >= 400 && response.statusCode < 500, 'is refused with a 4xx')
  }

  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  for (const bytes of [
    `GET /v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: ${authorization}\r\nX-Huge: ${'h'.repeat(20_000)}\r\n\r\n`,
    `GET /v1/cases/${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    'GET /v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \u0000\r\n\r\n',
    'BROKEN\r\n\r\n',
  ]) {
    const socket = connect(port, '127.0.0.1')
    socket.write(bytes)
    const chunks: Buffer[] = []
    for await (const chunk of socket) chunks.push(chunk as Buffer)
    const [head = '', body = ''] = Buffer.concat(chunks).toString('utf8').split('\r\n\r\n')
    const [statusLine = '', ...lines] = head.split('\r\n')
    const headers = Object.fromEntries(
      lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
    )
    const statusCode = Number(statusLine.split(' ')[1])
    t.equal(faultOf({ statusCode, headers, body }), null, `${bytes.slice(0, 40).trim()}… over a socket → ${statusCode}`)
    t.ok(statusCode >= 400 && statusCode < 500, 'is refused with a 4xx')
  }
}
