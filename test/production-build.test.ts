import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { productionNodeOptions } from '../scripts/bench/processes.js'
import { demoKeys, dropSchema, testDatabaseUrl, testMasterKey } from './fixtures/app.js'

// Production runs the compiled build under plain Node with the options of `npm run start:prod`:
// build it as `npm run build` does, start the API with its demo data (on the suite's database)
// and, on PostgreSQL, a worker; then stop both.
// Inside the project, so that the compiled code finds node_modules as the real build does.
// `scripts/test.sh` builds once for both of its passes and names the build in TEST_BUILD_DIR.
const out = process.env.TEST_BUILD_DIR ? path.resolve(process.env.TEST_BUILD_DIR) : buildForThisFile()

function buildForThisFile(): string {
  mkdirSync('build', { recursive: true })
  const out = path.resolve(mkdtempSync(path.join('build', 'test-')))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  execFileSync('bash', ['scripts/build.sh', out], { stdio: 'ignore' })
  return out
}

interface Started {
  child: ChildProcess
  output: () => string
}

/** Starts a compiled entry point and waits for a line of its log. */
async function startCompiled(t: Test, entry: string, env: NodeJS.ProcessEnv, ready: RegExp): Promise<Started> {
  let output = ''
  const child = spawn(process.execPath, [...productionNodeOptions(process.cwd()), path.join(out, entry)], {
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  for (const stream of [child.stdout, child.stderr]) stream?.on('data', (chunk) => (output += chunk))
  const exited = once(child, 'exit')
  while (!ready.test(output)) {
    const next = await Promise.race([once(child.stdout as NodeJS.ReadableStream, 'data'), exited.then(() => 'exit')])
    if (next === 'exit') throw new Error(`${entry} exited with ${child.exitCode}:\n${output}`)
  }
  return { child, output: () => output }
}

/** The embedded database in a directory of its own, or a schema of its own on PostgreSQL. */
async function databaseEnv(t: Test): Promise<NodeJS.ProcessEnv> {
  if (!testDatabaseUrl) {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'trm-build-data-'))
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
    return { DATABASE_URL: '', DATA_DIR: dataDir }
  }
  const schema = `build_${randomBytes(6).toString('hex')}`
  t.teardown(() => dropSchema(testDatabaseUrl as string, schema))
  return { DATABASE_URL: testDatabaseUrl, DATABASE_SCHEMA: schema, DATA_ENCRYPTION_KEYS: testMasterKey }
}

async function stop(started: Started): Promise<number | null> {
  started.child.kill('SIGTERM')
  const [code] = await once(started.child, 'exit')
  return code as number | null
}

t.test('the compiled API starts with its demo data, serves, and stops cleanly', async (t) => {
  const api = await startCompiled(
    t,
    'src/server.js',
    { ...(await databaseEnv(t)), PORT: '0', DEMO_DATA: 'always', JOBS: 'in-process' },
    /Server listening at (http:\/\/127\.0\.0\.1:\d+)/,
  )
  const base = (/Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(api.output()) as RegExpExecArray)[1]

  const ready = await fetch(`${base}/health/ready`)
  t.equal(ready.status, 200, 'ready: database reachable, migrations applied')
  t.match(await ready.json(), { migrations: { pending: 0 } })
  const me = await fetch(`${base}/v1/me`, {
    headers: { authorization: `Bearer ${demoKeys.demoiomplcw1}` },
  })
  t.equal(me.status, 200, 'a demo key is accepted')
  const docs = await fetch(`${base}/docs/`)
  t.equal(docs.status, 200, 'Swagger UI is up')
  const contract = await fetch(`${base}/openapi.json`)
  t.match(await contract.json(), { openapi: /^3\.1/ }, 'the contract is served from the build')

  t.equal(await stop(api), 0, 'SIGTERM: it finishes and exits 0')
})

t.test(
  'the compiled worker runs the jobs on PostgreSQL and stops cleanly',
  { skip: !testDatabaseUrl && 'the worker needs PostgreSQL' },
  async (t) => {
    const worker = await startCompiled(t, 'src/worker.js', await databaseEnv(t), /worker started/)
    t.notMatch(worker.output(), /"level":[56]0/, 'no error on the way up')
    t.equal(await stop(worker), 0, 'SIGTERM: it finishes its jobs and exits 0')
  },
)
