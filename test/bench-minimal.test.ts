import { randomBytes } from 'node:crypto'
import t from 'tap'
import { checkEquivalence, differences, normalise } from '../scripts/bench/equivalence.js'
import { testDatabaseUrl, testMasterKey } from './fixtures/app.js'

// The benchmark compares the service with a minimal implementation of its hot operations
// (scripts/bench/minimal.ts). If the service changes what it answers or writes and the minimal one
// does not follow, the comparison would silently measure something else: this test fails instead.
const skip = testDatabaseUrl
  ? false
  : 'needs PostgreSQL (set TEST_DATABASE_URL): the minimal implementation is written for pg, as the benchmark runs it'

t.test('the minimal implementation answers and writes what the service does', { skip }, async (t) => {
  const report = await checkEquivalence({
    connectionString: testDatabaseUrl as string,
    prefix: `test_bench_${randomBytes(4).toString('hex')}`,
    cases: 60,
    masterKeys: testMasterKey,
  })
  t.equal(report.operations.length, 7, 'all seven hot operations are compared')
  for (const check of report.operations) {
    t.ok(check.status.service >= 200 && check.status.service < 300, `${check.operation}: the service succeeds`)
    t.equal(check.status.minimal, check.status.service, `${check.operation}: the same status`)
    t.same(check.differences, [], `${check.operation}: the same body`)
  }
  for (const check of report.rows) t.same(check.differences, [], `${check.table}: the same rows written`)
  // The yardstick's own round trips: a read in one statement (plus its audit insert), a change in four.
  const minimal = Object.fromEntries(report.operations.map((check) => [check.operation, check.statements.minimal]))
  t.same(minimal, { read: 2, list: 1, send: 4, transition: 4, firstRead: 2, feed: 1, inbox: 1 })
})

t.test('the comparison names what must differ and sees everything else', async (t) => {
  const since = Date.now()
  const stable = new Set(['00000000-0000-4000-8000-000000000101'])
  const made = (id: string, status: string) => ({
    id,
    location: `/v1/packets/${id}`,
    at: new Date(since + 5).toISOString(),
    organisation_id: '00000000-0000-4000-8000-000000000101',
    sections: { alg: 'A256GCM', kid: 'k', iv: 'a', ct: 'b' },
    status,
  })
  const a = made('11111111-1111-4111-8111-111111111111', 'sent')
  const b = made('22222222-2222-4222-8222-222222222222', 'sent')
  const c = made('33333333-3333-4333-8333-333333333333', 'received')
  const normalised = (value: unknown) => normalise(value, new Map(), stable, since)
  t.same(differences(normalised(a), normalised(b)), [], 'new ids, times of the check and sealed values are named')
  t.same(
    differences(normalised(a), normalised(c)),
    ['/status: service "sent", minimal "received"'],
    'a different value is a difference',
  )
  t.not(
    differences(normalised(a), normalised({ ...b, organisation_id: '00000000-0000-4000-8000-000000000102' })).length,
    0,
    'a known id in its place is compared as it is',
  )
})
