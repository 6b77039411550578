import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { breakingChanges, undeclaredBreakingChanges } from '../scripts/contract-diff.js'

const released = JSON.parse(await readFile('openapi/released/v1.json', 'utf8'))
const fixtures = 'test/fixtures/contract-diff'

/** The released contract with four breaking changes a client would trip over. */
function brokenContract() {
  const broken = structuredClone(released)
  delete broken.paths['/v1/me'].get
  const kinds = broken.components.schemas.OrganisationKind
  kinds.enum = kinds.enum.filter((kind: string) => kind !== 'ngo')
  const summary = broken.components.schemas.CaseSummary
  summary.required = summary.required.filter((name: string) => name !== 'created_at')
  broken.paths['/v1/organisations'].get.parameters = [
    ...(broken.paths['/v1/organisations'].get.parameters ?? []),
    { name: 'region', in: 'query', required: true, schema: { type: 'string' } },
  ]
  return broken
}

// Each change is named wherever a client meets it: the enum also filters organisations, and a
// case is a case summary and more.
const expected = [
  'removed operation GET /v1/me',
  'added required parameter query:region to GET /v1/organisations',
  'removed enum value "ngo" of schema OrganisationKind',
  'removed enum value "ngo" of parameter query:kind of GET /v1/organisations',
  'schema CaseSummary: created_at is no longer required',
  'schema Case: created_at is no longer required',
]

t.test(
  'a removed operation, a new required parameter, a removed enum value and a field no longer required are breaking',
  async (t) => {
    t.same(breakingChanges(released, brokenContract()).sort(), [...expected].sort())
    t.same(breakingChanges(released, released), [], 'the released contract does not break itself')
  },
)

t.test('adding an operation, an optional field or an enum value is not breaking', async (t) => {
  const grown = structuredClone(released)
  grown.paths['/v1/new-thing'] = { get: { operationId: 'newThing', responses: { '200': { description: 'ok' } } } }
  grown.components.schemas.OrganisationKind.enum.push('foundation')
  grown.components.schemas.CaseSummary.properties.nickname = { type: 'string' }
  t.same(breakingChanges(released, grown), [])
})

t.test('the check fails on breaking changes the changelog does not declare, and passes once it does', async (t) => {
  const undeclared = await readFile(path.join(fixtures, 'CHANGELOG.undeclared.md'), 'utf8')
  const declared = await readFile(path.join(fixtures, 'CHANGELOG.declared.md'), 'utf8')
  t.same(undeclaredBreakingChanges(released, brokenContract(), undeclared).sort(), [...expected].sort())
  t.same(undeclaredBreakingChanges(released, brokenContract(), declared), [])

  const directory = await mkdtemp(path.join(tmpdir(), 'contract-diff-'))
  t.teardown(() => rm(directory, { recursive: true, force: true }))
  const brokenFile = path.join(directory, 'broken.json')
  await writeFile(brokenFile, JSON.stringify(brokenContract()))
  const run = (changelog: string) =>
    promisify(execFile)('npx', [
      'tsx',
      'scripts/contract-diff.ts',
      'openapi/released/v1.json',
      brokenFile,
      changelog,
    ]).then(
      (done) => ({ code: 0, output: done.stdout }),
      (failed: { code: number; stderr: string }) => ({ code: failed.code, output: failed.stderr }),
    )
  const failing = await run(path.join(fixtures, 'CHANGELOG.undeclared.md'))
  t.equal(failing.code, 1, 'the CI step fails')
  t.match(failing.output, '- `removed operation GET /v1/me`', 'and names the line to add to the changelog')
  t.equal((await run(path.join(fixtures, 'CHANGELOG.declared.md'))).code, 0, 'declared, the CI step passes')
})

t.test('the contract has no breaking change since the last release that CHANGELOG.md does not declare', async (t) => {
  const current = JSON.parse(await readFile('openapi/dist/openapi.json', 'utf8'))
  t.same(undeclaredBreakingChanges(released, current, await readFile('CHANGELOG.md', 'utf8')), [])
})
