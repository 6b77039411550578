import { readFileSync } from 'node:fs'
import { parse } from 'node-html-parser'
import t from 'tap'
import { contract } from '../src/http/contract.js'
import { problemCatalogue, problemNames } from '../src/http/problems.js'
import { demoKeys, startTestApp } from './fixtures/app.js'
import { sourceFiles } from './fixtures/source.js'

const URN = 'urn:trm:problem:'
const contractTypes = (contract.components.schemas?.ProblemType as { enum?: string[] } | undefined)?.enum ?? []

t.test('the contract lists exactly the problem types of the catalogue', async (t) => {
  const catalogued = problemNames.map((name) => `${URN}${name}`)
  const missing = catalogued.filter((type) => !contractTypes.includes(type))
  const extra = contractTypes.filter((type) => !catalogued.includes(type))
  t.same(
    missing,
    [],
    `add each of these to components.schemas.ProblemType (its enum and its table) in openapi/openapi.yaml, then run npm run generate: ${missing.join(', ')}`,
  )
  t.same(
    extra,
    [],
    `the contract lists problem types the code never raises: add them to src/http/problems.ts or remove them from components.schemas.ProblemType: ${extra.join(', ')}`,
  )
  const table = String((contract.components.schemas?.ProblemType as { description?: string } | undefined)?.description)
  for (const name of problemNames) {
    t.match(
      table,
      `| [\`${name}\`](/problems/${name}) | ${problemCatalogue[name].status} |`,
      `components.schemas.ProblemType describes ${name} in its table`,
    )
  }
})

/** Every `new ProblemError(status, …, { code: '…' })` of the source, with the status it is raised with. */
function raisedInSource(): { file: string; status: number; code: string }[] {
  return sourceFiles().flatMap((file) =>
    readFileSync(file, 'utf8')
      .split('new ProblemError(')
      .slice(1)
      .flatMap((call) => {
        const status = /^\s*(\d{3})/.exec(call)
        const code = /code: '([a-z-]+)'/.exec(call.slice(0, 600))
        return status && code ? [{ file, status: Number(status[1]), code: code[1] as string }] : []
      }),
  )
}

t.test('each problem type is raised with the status the catalogue gives it', async (t) => {
  const raised = raisedInSource()
  t.ok(raised.length > 40, `found the problems raised in src/ (${raised.length})`)
  for (const { file, status, code } of raised) {
    const entry = (problemCatalogue as Record<string, { status: number }>)[code]
    t.ok(entry, `${file} raises ${code}: add it to src/http/problems.ts and to ProblemType in openapi/openapi.yaml`)
    if (entry) t.equal(status, entry.status, `${file} raises ${code} with the status src/http/problems.ts gives it`)
  }
})

t.test('/problems/{name} says what happened and what to do, without a key', async (t) => {
  const { app } = await startTestApp(t)
  const page = await app.inject({ url: '/problems/guardian-required' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  const html = parse(page.body)
  t.equal(html.querySelector('h1')?.text, 'Guardian consent required')
  t.match(html.text, 'The person is a child: their guardian or legal representative must consent too.')
  t.match(html.text, 'What to do')
  t.match(html.text, 'urn:trm:problem:guardian-required')

  const json = await app.inject({ url: '/problems/stale-version', headers: { accept: 'application/json' } })
  t.equal(json.statusCode, 200)
  t.match(json.json(), { type: 'urn:trm:problem:stale-version', status: 412, title: 'Precondition failed' })
  t.match(json.json().todo, 'If-Match: "3"')

  const index = await app.inject({ url: '/problems' })
  t.equal(index.statusCode, 200)
  t.equal(parse(index.body).querySelectorAll('tbody tr').length, problemNames.length, 'the index lists every type')

  const unknown = await app.inject({ url: '/problems/no-such-thing' })
  t.equal(unknown.statusCode, 404)
  t.equal(unknown.json().type, 'urn:trm:problem:not-found')
})

t.test('a problem names its page in a Link header and carries the title of its type', async (t) => {
  const { request } = await startTestApp(t)
  const response = await request({
    method: 'GET',
    url: '/v1/cases/00000000-0000-4000-8000-000000000000',
    key: demoKeys.demoiomplcw1,
  })
  t.equal(response.statusCode, 404)
  t.equal(response.headers.link, '</problems/not-found>; rel="help"')
  t.match(response.json(), { type: 'urn:trm:problem:not-found', title: 'Not found' })
  const unauthenticated = await request({ method: 'GET', url: '/v1/me' })
  t.equal(unauthenticated.headers.link, '</problems/unauthenticated>; rel="help"')
  t.equal(unauthenticated.json().title, 'Authentication required')
})
