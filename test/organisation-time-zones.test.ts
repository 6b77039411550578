import { sql } from 'kysely'
import t from 'tap'
import { migrate, readMigrations } from '../src/db/migrate.js'
import { openEmptyTestDatabase } from './fixtures/app.js'

// Migration 0009 on organisations that exist before it: in a file of its own, since migrating an
// empty database from the first file takes a while on the embedded one.

t.test('0009 gives the organisations that exist the time zone of their country', async (t) => {
  const database = await openEmptyTestDatabase(t)
  const migrations = await readMigrations()
  await migrate(
    database,
    migrations.filter((m) => m.version < 9),
  )
  const countries = ['PL', 'UA', 'AL', 'MA', 'ES', 'BR']
  for (const country of countries) {
    await sql`
      insert into organisations (name, country, kind, can_send, can_receive)
      values (${`Partner in ${country}`}, ${country}, 'ngo', true, true)
    `.execute(database.db)
  }
  await migrate(database, migrations)
  const { rows } = await sql<{ country: string; time_zone: string }>`
    select country, time_zone from organisations order by name
  `.execute(database.db)
  t.same(Object.fromEntries(rows.map((row) => [row.country, row.time_zone])), {
    AL: 'Europe/Tirane',
    BR: 'UTC', // a country without a default zone keeps UTC
    ES: 'Europe/Madrid', // the zone most of the country lives by, not the Canaries'
    MA: 'Africa/Casablanca',
    PL: 'Europe/Warsaw',
    UA: 'Europe/Kyiv',
  })
})
