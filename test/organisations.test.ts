import t, { type Test } from 'tap'
import { type DemoOrganisation, demoOrganisationIds, demoOrganisations } from '../src/demo/demo-data.js'
import { insertOrganisation } from '../src/organisations/queries.js'
import { demoKeys, startTestApp, type TestApp } from './fixtures/app.js'

interface OrganisationBody {
  id: string
  name: string
  country: string
  kind: string
  can_send: boolean
  can_receive: boolean
  created_at: string
}

interface Page<T> {
  items: T[]
  next_cursor: string | null
}

const admin = demoKeys.demohubadmin
const caseworker = demoKeys.demoiomplcw1
const auditor = demoKeys.demoauditor1
const UNKNOWN_ID = '9f3c1d2e-4b5a-4c6d-8e7f-0a1b2c3d4e5f'

function byName(a: { name: string; id: string }, b: { name: string; id: string }): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

function expectedIds(filter: (organisation: DemoOrganisation) => boolean): string[] {
  return demoOrganisations
    .filter(filter)
    .sort(byName)
    .map((organisation) => organisation.id)
}

async function listAll(request: TestApp['request'], query: string): Promise<OrganisationBody[]> {
  const response = await request({ method: 'GET', url: `/v1/organisations?${query}`, key: caseworker })
  if (response.statusCode !== 200) throw new Error(`listOrganisations answered ${response.statusCode}`)
  const page = response.json() as Page<OrganisationBody>
  if (page.next_cursor !== null) throw new Error('expected the whole directory on one page')
  return page.items
}

function assertProblem(t: Test, response: { statusCode: number; headers: Record<string, unknown> }, status: number) {
  t.equal(response.statusCode, status, `answers ${status}`)
  t.match(String(response.headers['content-type']), /^application\/problem\+json/, 'as a problem document')
}

t.test('the directory lists every demo organisation, ordered by name', async (t) => {
  const { request } = await startTestApp(t)
  const response = await request({ method: 'GET', url: '/v1/organisations', key: caseworker })
  t.equal(response.statusCode, 200)
  const page = response.json() as Page<OrganisationBody>
  t.equal(page.next_cursor, null, 'the whole demo directory fits the default page')
  t.same(
    page.items.map((item) => item.id),
    expectedIds(() => true),
  )
  const names = page.items.map((item) => item.name)
  t.same(names, [...names].sort(), 'names ascend')
  const poland = page.items.find((item) => item.id === demoOrganisationIds.iomPoland)
  t.match(poland, { name: 'IOM Poland (demo)', country: 'PL', kind: 'iom_mission', can_send: true, can_receive: false })
})

t.test('filters return exactly the matching organisations', async (t) => {
  const { request } = await startTestApp(t)
  const cases: [string, (organisation: DemoOrganisation) => boolean][] = [
    ['country=UA', (o) => o.country === 'UA'],
    ['country=PL', (o) => o.country === 'PL'],
    ['kind=iom_mission', (o) => o.kind === 'iom_mission'],
    ['side=receiving', (o) => o.can_receive],
    ['side=sending', (o) => o.can_send],
    ['country=PL&kind=iom_mission&side=sending', (o) => o.country === 'PL' && o.kind === 'iom_mission' && o.can_send],
    ['country=UA&side=sending', (o) => o.country === 'UA' && o.can_send],
    ['country=ZZ', () => false],
  ]
  for (const [query, filter] of cases) {
    const expected = expectedIds(filter)
    const items = await listAll(request, query)
    t.same(
      items.map((item) => item.id),
      expected,
      `${query} gives ${expected.length} organisation(s)`,
    )
  }
  t.ok(expectedIds((o) => o.country === 'UA').length > 0, 'the demo data has organisations in UA to filter on')
  t.ok(expectedIds((o) => !o.can_send).length > 0, 'the demo data has organisations that cannot send')
})

t.test('cursor pagination walks every organisation exactly once', async (t) => {
  const { request } = await startTestApp(t)
  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const url: string = `/v1/organisations?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`
    const response = await request({ method: 'GET', url, key: auditor })
    t.equal(response.statusCode, 200)
    const page = response.json() as Page<OrganisationBody>
    t.ok(page.items.length <= 2, 'a page holds at most limit items')
    seen.push(...page.items.map((item) => item.id))
    cursor = page.next_cursor
    pages += 1
  } while (cursor !== null && pages < 50)
  t.same(
    seen,
    expectedIds(() => true),
    'every organisation once, in order',
  )
  t.equal(new Set(seen).size, seen.length, 'no duplicates')
  t.equal(pages, Math.ceil(demoOrganisations.length / 2), 'as many pages as needed and no more')
})

t.test('cursor pagination stays stable when an organisation is inserted mid-walk', async (t) => {
  const { request, database } = await startTestApp(t)
  const all = expectedIds(() => true)
  const first = await request({ method: 'GET', url: '/v1/organisations?limit=2', key: caseworker })
  const firstPage = first.json() as Page<OrganisationBody>
  t.equal(firstPage.items.length, 2)
  t.type(firstPage.next_cursor, 'string')

  // One insert sorts before the cursor (already passed), one after it (still ahead), one with the
  // very name of the last item seen (so only the id breaks the tie).
  const lastSeen = firstPage.items[1] as OrganisationBody
  const before = await insertOrganisation(database.db, {
    name: 'AAA inserted before the cursor',
    country: 'DE',
    kind: 'ngo',
    can_send: true,
    can_receive: false,
  })
  const after = await insertOrganisation(database.db, {
    name: 'Zzz inserted after the cursor',
    country: 'DE',
    kind: 'ngo',
    can_send: true,
    can_receive: false,
  })
  const twin = await insertOrganisation(database.db, {
    name: lastSeen.name,
    country: 'DE',
    kind: 'shelter',
    can_send: false,
    can_receive: true,
  })

  const seen = firstPage.items.map((item) => item.id)
  let cursor: string | null = firstPage.next_cursor
  let pages = 1
  while (cursor !== null && pages < 50) {
    const url = `/v1/organisations?limit=2&cursor=${encodeURIComponent(cursor)}`
    const response = await request({ method: 'GET', url, key: caseworker })
    t.equal(response.statusCode, 200)
    const page = response.json() as Page<OrganisationBody>
    seen.push(...page.items.map((item) => item.id))
    cursor = page.next_cursor
    pages += 1
  }
  t.equal(new Set(seen).size, seen.length, 'no duplicates')
  for (const id of all) t.equal(seen.filter((s) => s === id).length, 1, `demo organisation ${id} seen exactly once`)
  t.notOk(seen.includes(before.id), 'an organisation inserted behind the cursor is not seen')
  t.ok(seen.includes(after.id), 'an organisation inserted ahead of the cursor is seen')
  t.equal(
    seen.includes(twin.id),
    twin.id > lastSeen.id,
    'a same-named organisation is seen exactly when its id is ahead',
  )
  t.equal(seen.length, all.length + 1 + (twin.id > lastSeen.id ? 1 : 0))
})

t.test('a tampered cursor is a 400 problem', async (t) => {
  const { request } = await startTestApp(t)
  const first = await request({ method: 'GET', url: '/v1/organisations?limit=2', key: caseworker })
  const cursor = (first.json() as Page<OrganisationBody>).next_cursor as string
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const tampered = {
    'not base64 JSON': 'not-a-cursor!',
    'truncated cursor': cursor.slice(0, -3),
    'wrong arity': encode(['IOM Poland (demo)']),
    'an object': encode({ name: 'IOM Poland (demo)', id: UNKNOWN_ID }),
    'nested values': encode([['IOM Poland (demo)'], UNKNOWN_ID]),
    'an id that is not a uuid': encode(['IOM Poland (demo)', 'not-a-uuid']),
    'a number for the id': encode(['IOM Poland (demo)', 42]),
    'a number for the name': encode([42, UNKNOWN_ID]),
    'a NUL character in the name': encode(['IOM\u0000', UNKNOWN_ID]),
  }
  for (const [what, value] of Object.entries(tampered)) {
    const response = await request({
      method: 'GET',
      url: `/v1/organisations?limit=2&cursor=${encodeURIComponent(value)}`,
      key: caseworker,
    })
    t.equal(response.statusCode, 400, `${what}: 400`)
    t.match(String(response.headers['content-type']), /^application\/problem\+json/)
    t.match(response.json(), { status: 400, errors: [{ parameter: 'cursor' }] }, `${what}: names the cursor`)
  }
  const forged = encodeURIComponent(tampered['an id that is not a uuid'])
  for (const url of [
    `/v1/organisations/${demoOrganisationIds.iomPoland}/principals?cursor=${forged}`,
    `/v1/principals/00000000-0000-4000-8001-000000000101/api-keys?cursor=${forged}`,
  ]) {
    const response = await request({ method: 'GET', url, key: admin })
    assertProblem(t, response, 400)
    t.match(
      response.json(),
      { status: 400, errors: [{ parameter: 'cursor' }] },
      `${url.split('?')[0]}: names the cursor`,
    )
  }
})

t.test('one organisation by id', async (t) => {
  const { request } = await startTestApp(t)
  const demo = demoOrganisations[4] as DemoOrganisation
  const found = await request({ method: 'GET', url: `/v1/organisations/${demo.id}`, key: caseworker })
  t.equal(found.statusCode, 200)
  const { principals: _principals, ...expected } = demo
  t.match(found.json(), expected)

  const missing = await request({ method: 'GET', url: `/v1/organisations/${UNKNOWN_ID}`, key: caseworker })
  assertProblem(t, missing, 404)
  t.match(missing.json(), { status: 404, type: 'urn:trm:problem:not-found' })
})

t.test('the hub admin registers an organisation, a principal and an API key, then revokes the key', async (t) => {
  const { request } = await startTestApp(t)

  const newOrganisation = { name: 'La Strada Ukraine', country: 'UA', kind: 'ngo', can_send: false, can_receive: true }
  const created = await request({ method: 'POST', url: '/v1/organisations', key: admin, payload: newOrganisation })
  t.equal(created.statusCode, 201)
  const organisation = created.json() as OrganisationBody
  t.match(organisation, newOrganisation)
  t.equal(created.headers.location, `/v1/organisations/${organisation.id}`)
  const read = await request({ method: 'GET', url: String(created.headers.location), key: caseworker })
  t.equal(read.statusCode, 200)
  t.same(read.json(), organisation, 'the Location answers the organisation as created')
  t.ok(
    (await listAll(request, 'country=UA')).some((o) => o.id === organisation.id),
    'the new organisation is in the directory',
  )

  const newPrincipal = { name: 'Partner connector', kind: 'system', roles: ['caseworker'] }
  const principalResponse = await request({
    method: 'POST',
    url: `/v1/organisations/${organisation.id}/principals`,
    key: admin,
    payload: newPrincipal,
  })
  t.equal(principalResponse.statusCode, 201)
  const principal = principalResponse.json() as { id: string; organisation_id: string }
  t.match(principal, { ...newPrincipal, organisation_id: organisation.id })
  t.type(principalResponse.headers.location, 'string')
  const principals = await request({
    method: 'GET',
    url: `/v1/organisations/${organisation.id}/principals`,
    key: admin,
  })
  t.equal(principals.statusCode, 200)
  t.same(
    (principals.json() as Page<{ id: string }>).items.map((p) => p.id),
    [principal.id],
  )

  const issued = await request({
    method: 'POST',
    url: `/v1/principals/${principal.id}/api-keys`,
    key: admin,
    payload: { label: 'production connector' },
  })
  t.equal(issued.statusCode, 201)
  t.type(issued.headers.location, 'string')
  const apiKey = issued.json() as { id: string; key: string; prefix: string; revoked_at: string | null }
  t.match(apiKey, { principal_id: principal.id, label: 'production connector', revoked_at: null, expires_at: null })
  t.match(apiKey.key, /^trm_[a-z0-9]{12}_[A-Za-z0-9_-]{20,100}$/)
  t.ok(apiKey.key.startsWith(`trm_${apiKey.prefix}_`), 'the key starts with its prefix')

  const me = await request({ method: 'GET', url: '/v1/me', key: apiKey.key })
  t.equal(me.statusCode, 200, 'the new key works')
  t.match(me.json(), {
    principal: { id: principal.id, organisation_id: organisation.id, roles: ['caseworker'] },
    organisation: { id: organisation.id, name: 'La Strada Ukraine' },
    api_key: { id: apiKey.id, prefix: apiKey.prefix },
  })

  const keys = await request({ method: 'GET', url: `/v1/principals/${principal.id}/api-keys`, key: admin })
  t.equal(keys.statusCode, 200)
  const keyPage = keys.json() as Page<Record<string, unknown>>
  t.equal(keyPage.items.length, 1)
  t.match(keyPage.items[0], { id: apiKey.id, prefix: apiKey.prefix, label: 'production connector', revoked_at: null })
  t.notOk('key' in (keyPage.items[0] ?? {}), 'the list does not show the key')
  t.notOk('secret_hash' in (keyPage.items[0] ?? {}), 'the list does not show the secret hash')
  t.notOk(keys.body.includes(apiKey.key.split('_').slice(2).join('_')), 'the secret appears nowhere in the list')

  const revoked = await request({ method: 'POST', url: `/v1/api-keys/${apiKey.id}/revoke`, key: admin })
  t.equal(revoked.statusCode, 200)
  const revokedAt = (revoked.json() as { revoked_at: string | null }).revoked_at
  t.type(revokedAt, 'string')
  t.notOk('key' in (revoked.json() as object), 'revoking does not show the key')
  const again = await request({ method: 'POST', url: `/v1/api-keys/${apiKey.id}/revoke`, key: admin })
  t.equal(again.statusCode, 200, 'revoking again answers 200')
  t.equal((again.json() as { revoked_at: string | null }).revoked_at, revokedAt, 'with the same revoked_at')

  const refused = await request({ method: 'GET', url: '/v1/me', key: apiKey.key })
  assertProblem(t, refused, 401)

  const unknownRevoke = await request({ method: 'POST', url: `/v1/api-keys/${UNKNOWN_ID}/revoke`, key: admin })
  assertProblem(t, unknownRevoke, 404)
})

t.test('only the hub admin manages organisations, principals and keys', async (t) => {
  const { request } = await startTestApp(t)
  const organisationId = demoOrganisationIds.iomPoland
  const principalId = '00000000-0000-4000-8001-000000000101'
  const list = await request({ method: 'GET', url: `/v1/principals/${principalId}/api-keys`, key: admin })
  const demoKeyId = ((list.json() as Page<{ id: string }>).items[0] as { id: string }).id
  const operations = [
    {
      name: 'createOrganisation',
      method: 'POST' as const,
      url: '/v1/organisations',
      payload: { name: 'Not allowed', country: 'PL', kind: 'ngo', can_send: true, can_receive: false },
    },
    {
      name: 'createPrincipal',
      method: 'POST' as const,
      url: `/v1/organisations/${organisationId}/principals`,
      payload: { name: 'Not allowed', kind: 'staff', roles: ['admin'] },
    },
    { name: 'listPrincipals', method: 'GET' as const, url: `/v1/organisations/${organisationId}/principals` },
    {
      name: 'issueApiKey',
      method: 'POST' as const,
      url: `/v1/principals/${principalId}/api-keys`,
      payload: { label: 'not allowed' },
    },
    { name: 'listApiKeys', method: 'GET' as const, url: `/v1/principals/${principalId}/api-keys` },
    { name: 'revokeApiKey', method: 'POST' as const, url: `/v1/api-keys/${demoKeyId}/revoke` },
  ]
  for (const [who, key] of [
    ['caseworker', caseworker],
    ['auditor', auditor],
  ] as const) {
    for (const { name, ...operation } of operations) {
      const response = await request({ ...operation, key })
      t.equal(response.statusCode, 403, `${who}: ${name} is forbidden`)
      t.match(response.json(), { status: 403, type: 'urn:trm:problem:forbidden' })
    }
  }

  const me = await request({ method: 'GET', url: '/v1/me', key: caseworker })
  t.equal(me.statusCode, 200, 'the forbidden revoke left the demo key working')
  t.equal(
    (await listAll(request, '')).length,
    demoOrganisations.length,
    'the forbidden createOrganisation added nothing',
  )
  const principals = await request({ method: 'GET', url: `/v1/organisations/${organisationId}/principals`, key: admin })
  t.equal(
    (principals.json() as Page<unknown>).items.length,
    demoOrganisations.find((o) => o.id === organisationId)?.principals.length,
    'the forbidden createPrincipal added nothing',
  )
})

t.test('the admin gets 404 for principals of an unknown organisation and keys of an unknown principal', async (t) => {
  const { request } = await startTestApp(t)
  const cases = [
    { method: 'GET' as const, url: `/v1/organisations/${UNKNOWN_ID}/principals` },
    {
      method: 'POST' as const,
      url: `/v1/organisations/${UNKNOWN_ID}/principals`,
      payload: { name: 'Nobody', kind: 'staff', roles: ['caseworker'] },
    },
    { method: 'GET' as const, url: `/v1/principals/${UNKNOWN_ID}/api-keys` },
    { method: 'POST' as const, url: `/v1/principals/${UNKNOWN_ID}/api-keys`, payload: { label: 'nothing' } },
  ]
  for (const operation of cases) {
    const response = await request({ ...operation, key: admin })
    assertProblem(t, response, 404)
    t.match(response.json(), { status: 404, detail: new RegExp(UNKNOWN_ID) }, `${operation.method} ${operation.url}`)
  }
})
