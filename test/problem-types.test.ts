import { readFileSync } from 'node:fs'
import t from 'tap'
import { commonProblemTypes, operationProblemTypes } from '../openapi/dist/problem-types.js'
import { contract } from '../src/http/contract.js'
import { problemCatalogue, problemNames } from '../src/http/problems.js'
import { contractViolations, demoKeys, startTestApp } from './fixtures/app.js'
import { acceptReferral, acknowledgement, newCase, openReferral, recipient, sender } from './fixtures/referral.js'
import { sourceFiles } from './fixtures/source.js'

// Each operation lists the problem types it may answer with: the contract's
// `x-common-problem-types` and its own `x-problem-types`. `request()` of test/fixtures/app.ts
// fails any test in which an operation answers with a type neither lists; this file checks the
// lists themselves, and that the check bites.

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const
type Operation = { operationId: string; responses: Record<string, unknown>; 'x-problem-types'?: unknown }
const operations = Object.values(contract.paths).flatMap((item) =>
  METHODS.flatMap((method) => (item[method] ? [item[method] as unknown as Operation] : [])),
)
const common = contract['x-common-problem-types'] as string[]
const statusOf = (name: string) => (problemCatalogue as Record<string, { status: number }>)[name]?.status

t.test(
  'every operation lists its problem types, each a type of the catalogue with a response of its status',
  async (t) => {
    t.ok(Array.isArray(common) && common.length > 0, 'the contract lists the common problem types')
    for (const name of common) t.ok(problemNames.includes(name as never), `common: ${name} is in the catalogue`)
    t.ok(operations.length > 70, `${operations.length} operations`)
    for (const operation of operations) {
      const own = operation['x-problem-types']
      if (!Array.isArray(own)) {
        t.fail(
          `${operation.operationId}: add x-problem-types (a list, [] if only the common types) in openapi/openapi.yaml`,
        )
        continue
      }
      t.same(
        own.filter((name, i) => own.indexOf(name) !== i || common.includes(name)),
        [],
        `${operation.operationId}: no type twice, none of the common ones again`,
      )
      for (const name of own as string[]) {
        const status = statusOf(name)
        t.ok(status, `${operation.operationId}: ${name} is in the catalogue`)
        t.ok(
          String(status) in operation.responses,
          `${operation.operationId}: lists ${name}, so it documents a ${status} response`,
        )
      }
    }
  },
)

/**
 * The problem types each operation's handler raises itself (`code: '…'` between `async
 * operationId(` and the next handler of its file); what helpers raise is left to the check of
 * every response that `request()` makes.
 */
function raisedByHandlers(): { operationId: string; name: string; file: string }[] {
  const ids = new Set(operations.map((operation) => operation.operationId))
  return sourceFiles().flatMap((file) => {
    let current: string | undefined
    return readFileSync(file, 'utf8')
      .split('\n')
      .flatMap((line) => {
        const handler = /^ {4}(?:async )?(\w+)\(request/.exec(line)?.[1]
        if (handler !== undefined || /^ {2}\S/.test(line) || /^\S/.test(line)) {
          current = handler !== undefined && ids.has(handler) ? handler : undefined
        }
        const name = /code: '([a-z-]+)'/.exec(line)?.[1]
        return current && name ? [{ operationId: current, name, file }] : []
      })
  })
}

t.test('each problem type a handler raises itself is listed for its operation', async (t) => {
  const raised = raisedByHandlers()
  t.ok(raised.length > 30, `found the types raised in handlers (${raised.length})`)
  const listed = new Map(
    operations.map((operation) => [operation.operationId, operation['x-problem-types'] as string[]]),
  )
  for (const { operationId, name, file } of raised) {
    t.ok(
      common.includes(name) || listed.get(operationId)?.includes(name),
      `${file}: ${operationId} raises ${name}; add it to its x-problem-types in openapi/openapi.yaml`,
    )
  }
})

t.test('the generated module says what the contract says, as problem type URNs', async (t) => {
  t.same(
    commonProblemTypes,
    common.map((name) => `urn:trm:problem:${name}`),
  )
  t.same(
    Object.fromEntries(Object.entries(operationProblemTypes).map(([id, types]) => [id, [...types]])),
    Object.fromEntries(
      operations.map((operation) => [
        operation.operationId,
        (operation['x-problem-types'] as string[]).map((name) => `urn:trm:problem:${name}`),
      ]),
    ),
  )
})

t.test('a problem type the operation does not list is a contract violation', async (t) => {
  const problem = (type: string, status: number) =>
    ({
      statusCode: status,
      headers: { 'content-type': 'application/problem+json; charset=utf-8' },
      body: JSON.stringify({ type, title: 'x', status, detail: 'x' }),
    }) as never
  t.same(contractViolations('GET', '/v1/cases', problem('urn:trm:problem:forbidden', 403)), [], 'a common type')
  t.same(
    contractViolations('GET', '/v1/cases', problem('urn:trm:problem:not-lead', 403)),
    ['listCases answered urn:trm:problem:not-lead: add not-lead to its x-problem-types in openapi/openapi.yaml'],
    'a type of another operation',
  )
  t.same(
    contractViolations(
      'PATCH',
      '/v1/cases/3f2e1d0c-9b8a-4765-8432-10fedcba9876',
      problem('urn:trm:problem:not-lead', 403),
    ),
    [],
    'a type the operation lists',
  )
})

t.test('representative refusals answer with a type their operation lists', async (t) => {
  // Each request() also fails the test when its problem type is not listed for its operation.
  const app = await startTestApp(t)
  const { request } = app
  const { caseId, packetId } = await openReferral(t, app)
  const etag = String((await request({ method: 'GET', url: `/v1/cases/${caseId}`, key: sender })).headers.etag)
  const take = (action: string, headers: Record<string, string>) =>
    request({ method: 'POST', url: `/v1/cases/${caseId}/transitions`, key: sender, headers, payload: { action } })
  const typeOf = async (answer: Promise<{ json(): { type?: string } }>) => (await answer).json().type
  t.equal(await typeOf(take('send_referral', {})), 'urn:trm:problem:if-match-required')
  t.equal(await typeOf(take('send_referral', { 'if-match': '"99"' })), 'urn:trm:problem:stale-version')
  t.equal(await typeOf(take('no_such_action', { 'if-match': etag })), 'urn:trm:problem:unknown-action')
  t.equal(await typeOf(take('confirm_arrival', { 'if-match': etag })), 'urn:trm:problem:action-not-open')
  const packet = String((await request({ method: 'GET', url: `/v1/packets/${packetId}`, key: recipient })).headers.etag)
  t.equal(
    await typeOf(
      request({
        method: 'POST',
        url: `/v1/packets/${packetId}/acknowledge`,
        key: sender,
        headers: { 'if-match': packet },
        payload: acknowledgement,
      }),
    ),
    'urn:trm:problem:not-recipient',
  )
  await acceptReferral(t, app, { caseId, packetId, consentId: '' })
  const accepted = await request({ method: 'GET', url: `/v1/cases/${caseId}`, key: recipient })
  t.equal(
    await typeOf(
      request({
        method: 'PATCH',
        url: `/v1/cases/${caseId}`,
        key: recipient,
        headers: { 'if-match': String(accepted.headers.etag) },
        payload: { sections: { health: { conditions: [] } } },
      }),
    ),
    'urn:trm:problem:not-lead',
    'the receiving partner changes nothing of a case it does not lead yet',
  )
  const open = (payload: object) =>
    request({ method: 'POST', url: '/v1/cases', key: sender, headers: { 'idempotency-key': 'one' }, payload })
  t.equal((await open(newCase)).statusCode, 201)
  t.equal(await typeOf(open({ ...newCase, sections: {} })), 'urn:trm:problem:idempotency-key-reused')
  t.equal(
    await typeOf(request({ method: 'POST', url: '/v1/cases', key: demoKeys.demoauditor1 as string, payload: newCase })),
    'urn:trm:problem:forbidden',
  )
})
