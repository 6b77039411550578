import pg from 'pg'
import t from 'tap'
import { openDatabase } from '../src/db/database.js'
import { testDatabaseUrl } from './fixtures/app.js'
import { eventually } from './fixtures/eventually.js'

// A process that stops while its listening connection is still being opened must still stop: the
// file's time limit is what catches a close that never returns.
t.test(
  'a database closed while its listening connection is still connecting closes, and holds no connection',
  { skip: testDatabaseUrl ? false : 'PostgreSQL only: PGlite listens in its own process' },
  async (t) => {
    for (let round = 0; round < 20; round += 1) {
      const database = await openDatabase({ databaseUrl: testDatabaseUrl, databaseApplicationName: 'trm-listen-test' })
      const heard: boolean[] = []
      await database.listen('trm_listen_test', { notified: () => {}, hearing: (on) => heard.push(on) })
      await database.close()
      t.same(
        heard.filter((on) => !on),
        [],
        `round ${round}: closing is not a lost connection`,
      )
    }
    const check = new pg.Client({ connectionString: testDatabaseUrl })
    await check.connect()
    t.teardown(() => check.end())
    // A backend ends a moment after its client hung up.
    const open = await eventually(
      async () =>
        (
          await check.query<{ count: number }>(
            "select count(*)::int as count from pg_stat_activity where application_name = 'trm-listen-test'",
          )
        ).rows[0]?.count,
      (count) => count === 0,
    )
    t.equal(open, 0, 'no listening connection is left open')
  },
)
