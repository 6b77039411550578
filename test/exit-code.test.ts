import { spawnSync } from 'node:child_process'
import t from 'tap'

// Some PGlite versions turned a failing run's exit code into 0; the suite must never pass silently.
const onPostgres = Boolean(process.env.TEST_DATABASE_URL)

t.test(
  'tap exits non-zero when a test on the database fails',
  { skip: onPostgres && 'checked in the PGlite pass' },
  async (t) => {
    const run = spawnSync('npx', ['tap', '--disable-coverage', 'test/fixtures/always-fails.ts'], {
      encoding: 'utf8',
      env: { ...process.env, TEST_DATABASE_URL: '' },
    })
    t.not(run.status, 0, 'exit code')
    t.match(run.stdout, /this assertion is meant to fail/)
  },
)
