import { once } from 'node:events'
import type { LightMyRequestResponse } from 'fastify'
import { sql } from 'kysely'
import t, { type Test } from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { openDatabase } from '../src/db/database.js'
import { readMigrations } from '../src/db/migrate.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { demoKeys, startTestApp, type TestApp, testDatabaseUrl, testErasedKeysFile } from './fixtures/app.js'

const hubOrganisationId = demoOrganisationIds.hub
const adminKey = demoKeys.demohubadmin as string
const caseworkerKey = demoKeys.demoiomplcw1 as string
const otherCaseworkerKey = demoKeys.demoiomuacw1 as string

function assertProblem(t: Test, response: LightMyRequestResponse, status: number): Record<string, unknown> {
  t.equal(response.statusCode, status, `answers ${status}`)
  t.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8')
  const body = response.json()
  t.equal(body.status, status)
  t.type(body.type, 'string')
  t.type(body.title, 'string')
  t.type(body.detail, 'string')
  t.type(body.request_id, 'string')
  t.equal(response.headers['x-request-id'], body.request_id, 'x-request-id is the request_id')
  return body
}

function assertUnauthenticated(t: Test, response: LightMyRequestResponse): void {
  const body = assertProblem(t, response, 401)
  t.equal(body.type, 'urn:trm:problem:unauthenticated')
  t.equal(response.headers['www-authenticate'], 'Bearer realm="trm-api"')
}

/** Issues a key for a new principal of the hub organisation, as the hub admin. */
async function issueKey(
  t: Test,
  { request }: TestApp,
  body: Record<string, unknown>,
): Promise<{ id: string; key: string; principalId: string }> {
  const principal = await request({
    method: 'POST',
    url: `/v1/organisations/${hubOrganisationId}/principals`,
    key: adminKey,
    payload: { name: `Test system ${Math.random()}`, kind: 'system', roles: ['auditor'] },
  })
  t.equal(principal.statusCode, 201, 'principal created')
  const principalId = principal.json().id as string
  const issued = await request({
    method: 'POST',
    url: `/v1/principals/${principalId}/api-keys`,
    key: adminKey,
    payload: body,
  })
  t.equal(issued.statusCode, 201, 'key issued')
  const { id, key } = issued.json()
  t.match(key, /^trm_[a-z0-9]{12}_[A-Za-z0-9_-]{20,100}$/)
  return { id, key, principalId }
}

t.test('a valid key identifies its caller', async (t) => {
  const { request } = await startTestApp(t)
  const me = await request({ method: 'GET', url: '/v1/me', key: caseworkerKey })
  t.equal(me.statusCode, 200)
  t.match(me.json(), {
    principal: { id: '00000000-0000-4000-8001-000000000101', roles: ['caseworker'] },
    organisation: { id: demoOrganisationIds.iomPoland, country: 'PL' },
    api_key: { prefix: 'demoiomplcw1' },
  })
  t.notOk(me.json().api_key.secret, 'the secret is not echoed')
  t.notMatch(me.body, 'not-secret', 'no part of the secret is echoed')
})

t.test('requests without a usable key are 401 problems', async (t) => {
  const { request } = await startTestApp(t)

  const none = await request({ method: 'GET', url: '/v1/me' })
  assertUnauthenticated(t, none)

  for (const authorization of ['Basic x', 'Bearer', 'Bearer a b', `Basic ${caseworkerKey}`, '']) {
    const response = await request({ method: 'GET', url: '/v1/me', headers: { authorization } })
    t.comment(`authorization: "${authorization}"`)
    assertUnauthenticated(t, response)
  }

  const malformed = ['not-a-key', 'trm_short_abcdefghijklmnopqrstuvwxyz', 'trm_ABCDEFGHIJKL_abcdefghijklmnopqrstuvwxyz']
  for (const key of malformed) {
    const response = await request({ method: 'GET', url: '/v1/me', key })
    t.comment(`malformed key ${key}`)
    assertUnauthenticated(t, response)
  }

  const unknown = await request({ method: 'GET', url: '/v1/me', key: `trm_abcdefghijkl_${'x'.repeat(30)}` })
  assertUnauthenticated(t, unknown)

  const wrongSecret = await request({ method: 'GET', url: '/v1/me', key: `trm_demohubadmin_${'x'.repeat(30)}` })
  assertUnauthenticated(t, wrongSecret)
  t.notMatch(wrongSecret.body, 'demohubadmin', 'does not say which part was wrong')
})

t.test('a revoked key stops working at once', async (t) => {
  const app = await startTestApp(t)
  const { request } = app
  const { id, key } = await issueKey(t, app, { label: 'to be revoked' })

  const before = await request({ method: 'GET', url: '/v1/me', key })
  t.equal(before.statusCode, 200, 'works before revocation')
  t.equal(before.json().api_key.id, id)

  const revoked = await request({ method: 'POST', url: `/v1/api-keys/${id}/revoke`, key: adminKey })
  t.equal(revoked.statusCode, 200)
  t.type(revoked.json().revoked_at, 'string')

  const after = await request({ method: 'GET', url: '/v1/me', key })
  assertUnauthenticated(t, after)
  t.equal(after.json().detail, 'The API key is unknown, expired or revoked.')

  const again = await request({ method: 'POST', url: `/v1/api-keys/${id}/revoke`, key: adminKey })
  t.equal(again.statusCode, 200, 'revoking again answers the same')
  t.equal(again.json().revoked_at, revoked.json().revoked_at, 'and keeps the first revocation time')

  const adminStillWorks = await request({ method: 'GET', url: '/v1/me', key: adminKey })
  t.equal(adminStillWorks.statusCode, 200, 'other keys are unaffected')
})

t.test(
  'a key revoked through one process is refused by another that held it',
  { skip: !testDatabaseUrl && 'needs PostgreSQL: two processes on one database' },
  async (t) => {
    const first = await startTestApp(t)
    const schema = (await sql<{ schema: string }>`select current_schema() as schema`.execute(first.database.db)).rows[0]
      ?.schema as string
    const database = await openDatabase({ databaseUrl: testDatabaseUrl, databaseSchema: schema })
    const second = await buildApp({
      config: { ...loadConfig({}), logLevel: 'silent', erasedKeysFile: testErasedKeysFile() },
      database,
      migrations: await readMigrations(),
    })
    t.teardown(() => second.close())
    await second.ready()
    const { id, key } = await issueKey(t, first, { label: 'held elsewhere' })
    const me = { method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${key}` } } as const
    t.equal((await second.inject(me)).statusCode, 200, 'the second process authenticates the key, and holds it')
    t.equal((await second.inject(me)).statusCode, 200, 'and answers from what it holds')

    const heard = once(second.credentials, 'forgotten')
    const revoked = await first.request({ method: 'POST', url: `/v1/api-keys/${id}/revoke`, key: adminKey })
    t.equal(revoked.statusCode, 200, 'the first process revokes it')
    await heard
    assertUnauthenticated(t, await second.inject(me))
    t.equal((await second.inject({ ...me, headers: { authorization: `Bearer ${adminKey}` } })).statusCode, 200)
  },
)

t.test('an expired key is refused', async (t) => {
  let now = new Date('2027-03-01T09:00:00Z')
  const app = await startTestApp(t, {}, { now: () => now })
  const { request } = app

  const shortLived = await issueKey(t, app, { label: 'short lived', expires_at: '2027-03-01T10:00:00Z' })
  now = new Date('2027-03-01T09:59:59Z')
  const before = await request({ method: 'GET', url: '/v1/me', key: shortLived.key })
  t.equal(before.statusCode, 200, 'works until it expires')
  now = new Date('2027-03-01T10:00:00Z')
  assertUnauthenticated(t, await request({ method: 'GET', url: '/v1/me', key: shortLived.key }))

  const future = await issueKey(t, app, { label: 'long lived', expires_at: '2999-01-01T00:00:00Z' })
  t.equal((await request({ method: 'GET', url: '/v1/me', key: future.key })).statusCode, 200)
})

t.test('a key that would expire before it is issued is not issued', async (t) => {
  const app = await startTestApp(t, {}, { now: () => new Date('2027-03-01T09:00:00Z') })
  const { request } = app
  const { principalId } = await issueKey(t, app, { label: 'the principal needs one key to exist' })
  for (const expiresAt of ['2020-01-01T00:00:00Z', '2027-03-01T08:59:59Z', '2027-03-01T09:00:00Z']) {
    const refused = await request({
      method: 'POST',
      url: `/v1/principals/${principalId}/api-keys`,
      key: adminKey,
      payload: { label: 'already expired', expires_at: expiresAt },
    })
    t.comment(expiresAt)
    const body = assertProblem(t, refused, 422)
    t.same(body.errors, [{ pointer: '#/expires_at', detail: 'must be in the future' }])
  }
  const keys = await request({ method: 'GET', url: `/v1/principals/${principalId}/api-keys`, key: adminKey })
  t.same(
    keys.json().items.map((k: { label: string }) => k.label),
    ['the principal needs one key to exist'],
    'no key was stored',
  )
})

t.test('a valid key without the needed role is a 403 problem', async (t) => {
  const { request } = await startTestApp(t)
  const payload = { name: 'Not to be created', country: 'UA', kind: 'ngo', can_send: false, can_receive: true }
  const forbidden = await request({ method: 'POST', url: '/v1/organisations', key: caseworkerKey, payload })
  const body = assertProblem(t, forbidden, 403)
  t.equal(body.type, 'urn:trm:problem:forbidden')
  t.notOk(forbidden.headers['www-authenticate'], 'a 403 does not ask to authenticate again')

  const list = await request({ method: 'GET', url: '/v1/organisations?limit=200', key: caseworkerKey })
  t.equal(list.statusCode, 200)
  t.notOk(
    list.json().items.some((o: { name: string }) => o.name === payload.name),
    'the organisation was not created',
  )

  for (const url of [`/v1/organisations/${hubOrganisationId}/principals`]) {
    assertProblem(t, await request({ method: 'GET', url, key: caseworkerKey }), 403)
  }
  const revoke = await request({
    method: 'POST',
    url: '/v1/api-keys/00000000-0000-4000-8000-00000000ffff/revoke',
    key: caseworkerKey,
  })
  assertProblem(t, revoke, 403)
})

t.test("one partner's failing key does not lock out the others behind the same address", async (t) => {
  const { request } = await startTestApp(t, { authFailuresPerMinute: 3 })
  const wrongSecret = `trm_demoiomplcw1_${'x'.repeat(30)}`
  for (let i = 1; i <= 3; i++) {
    t.equal(
      (await request({ method: 'GET', url: '/v1/me', key: wrongSecret })).statusCode,
      401,
      `failure ${i} is a 401`,
    )
  }
  for (const key of [wrongSecret, caseworkerKey]) {
    const limited = await request({ method: 'GET', url: '/v1/me', key })
    const body = assertProblem(t, limited, 429)
    t.equal(body.type, 'urn:trm:problem:rate-limited')
    const retryAfter = Number(limited.headers['retry-after'])
    t.ok(Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= 60, `retry-after ${retryAfter} is 1-60 s`)
    t.equal(limited.headers['x-ratelimit-limit'], '3')
    t.equal(limited.headers['x-ratelimit-remaining'], '0')
  }
  t.comment('the key under attack is refused even with its right secret; every other key still works')
  for (const key of [otherCaseworkerKey, adminKey]) {
    t.equal((await request({ method: 'GET', url: '/v1/me', key })).statusCode, 200)
  }
  const elsewhere = await request({ method: 'GET', url: '/v1/me', key: caseworkerKey, remoteAddress: '10.0.0.2' })
  t.equal(elsewhere.statusCode, 200, 'the same key from another address is not limited')

  t.comment('presentations naming no key of ours share one bucket per address')
  const unknown = (i: number) => `trm_zzunknown00${i}_${'y'.repeat(30)}`
  for (let i = 1; i <= 3; i++) {
    t.equal((await request({ method: 'GET', url: '/v1/me', key: unknown(i) })).statusCode, 401)
  }
  for (const key of [unknown(4), 'not-a-key', undefined]) {
    const limited = await request({ method: 'GET', url: '/v1/me', ...(key ? { key } : {}) })
    t.comment(`then ${key ?? 'no key'}`)
    assertProblem(t, limited, 429)
  }
  t.equal((await request({ method: 'GET', url: '/v1/me', key: adminKey })).statusCode, 200, 'a real key still works')
  const publicRoute = await request({ method: 'GET', url: '/health/live' })
  t.equal(publicRoute.statusCode, 200, 'routes that need no key stay open')
})

t.test('concurrent guesses cannot outrun the failure limit', async (t) => {
  const { request } = await startTestApp(t, { authFailuresPerMinute: 3 })
  for (const guess of [
    (i: number) => `trm_abcdefghijkl_${String(i).repeat(30)}`,
    (i: number) => `trm_demoiomuacw1_${String(i).repeat(30)}`,
  ]) {
    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, i) => request({ method: 'GET', url: '/v1/me', key: guess(i) })),
    )
    const statuses = responses.map((response) => response.statusCode)
    t.equal(statuses.filter((status) => status === 401).length, 3, 'only as many guesses as the limit are answered')
    t.equal(statuses.filter((status) => status === 429).length, 7, 'the rest are refused')
    for (const response of responses.filter((r) => r.statusCode === 429)) {
      t.ok(Number(response.headers['retry-after']) > 0, 'with retry-after')
    }
  }
  t.equal((await request({ method: 'GET', url: '/v1/me', key: otherCaseworkerKey })).statusCode, 429)
  t.equal((await request({ method: 'GET', url: '/v1/me', key: adminKey })).statusCode, 200)
})

t.test('successful authentications do not count as failures', async (t) => {
  const { request } = await startTestApp(t, { authFailuresPerMinute: 3 })
  for (let i = 0; i < 5; i++) {
    t.equal((await request({ method: 'GET', url: '/v1/me', key: adminKey })).statusCode, 200)
  }
  t.equal((await request({ method: 'GET', url: '/v1/me' })).statusCode, 401)
  t.equal((await request({ method: 'GET', url: '/v1/me', key: adminKey })).statusCode, 200)
})

t.test('requests are rate limited per key', async (t) => {
  const { request } = await startTestApp(t, { rateLimitPerMinute: 3 })
  for (let i = 1; i <= 3; i++) {
    const ok = await request({ method: 'GET', url: '/v1/me', key: caseworkerKey })
    t.equal(ok.statusCode, 200, `call ${i} is allowed`)
  }
  const limited = await request({ method: 'GET', url: '/v1/me', key: caseworkerKey })
  const body = assertProblem(t, limited, 429)
  t.equal(body.type, 'urn:trm:problem:rate-limited')
  const retryAfter = Number(limited.headers['retry-after'])
  t.ok(Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= 60, `retry-after ${retryAfter} is 1-60 s`)

  const otherKey = await request({ method: 'GET', url: '/v1/me', key: otherCaseworkerKey })
  t.equal(otherKey.statusCode, 200, 'another key from the same address is still allowed')

  const stillLimited = await request({ method: 'GET', url: '/v1/organisations', key: caseworkerKey })
  t.equal(stillLimited.statusCode, 429, 'the limit covers every operation of the key')
})

t.test('responses say how much of the limit is left', async (t) => {
  const { request } = await startTestApp(t, { rateLimitPerMinute: 3 })
  for (let remaining = 2; remaining >= 0; remaining--) {
    const ok = await request({ method: 'GET', url: '/v1/me', key: caseworkerKey })
    t.equal(ok.statusCode, 200)
    t.equal(ok.headers['x-ratelimit-limit'], '3')
    t.equal(ok.headers['x-ratelimit-remaining'], String(remaining))
    const reset = Number(ok.headers['x-ratelimit-reset'])
    t.ok(Number.isInteger(reset) && reset >= 0 && reset <= 60, `x-ratelimit-reset ${reset} is 0-60 s`)
  }
  const limited = await request({ method: 'GET', url: '/v1/me', key: caseworkerKey })
  assertProblem(t, limited, 429)
  t.equal(limited.headers['x-ratelimit-remaining'], '0')
  t.ok(Number(limited.headers['retry-after']) > 0, 'retry-after on the 429')
})

t.test('health checks and the documentation are outside the rate limit', async (t) => {
  const { request } = await startTestApp(t, { rateLimitPerMinute: 2, authFailuresPerMinute: 2 })
  for (let i = 0; i < 3; i++) await request({ method: 'GET', url: '/v1/me', key: caseworkerKey })
  for (let i = 0; i < 3; i++) await request({ method: 'GET', url: '/v1/me', key: 'not-a-key' })
  t.equal((await request({ method: 'GET', url: '/v1/me', key: caseworkerKey })).statusCode, 429, 'the key is limited')
  t.equal((await request({ method: 'GET', url: '/v1/me' })).statusCode, 429, 'and the address is')
  for (let i = 0; i < 5; i++) {
    for (const url of ['/health/live', '/health/ready', '/openapi.json', '/openapi.yaml']) {
      const response = await request({ method: 'GET', url })
      t.equal(response.statusCode, 200, `${url} answers`)
      t.notOk(response.headers['x-ratelimit-limit'], 'and is not counted')
    }
    const docs = await request({ method: 'GET', url: '/docs/' })
    t.equal(docs.statusCode, 200, '/docs/ answers')
  }
})

t.test('each of several processes enforces its share of the limit', async (t) => {
  const { request } = await startTestApp(t, { rateLimitPerMinute: 6, rateLimitProcesses: 2 })
  for (let i = 1; i <= 3; i++) {
    const ok = await request({ method: 'GET', url: '/v1/me', key: caseworkerKey })
    t.equal(ok.statusCode, 200, `call ${i} is allowed`)
    t.equal(ok.headers['x-ratelimit-limit'], '3', 'half of 6 in each of 2 processes')
  }
  assertProblem(t, await request({ method: 'GET', url: '/v1/me', key: caseworkerKey }), 429)
})
