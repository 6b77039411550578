// Applies pending migrations to the configured database (DATABASE_URL, else the embedded one).
import { loadConfig } from '../src/config.js'
import { openDatabase } from '../src/db/database.js'
import { migrate, readMigrations } from '../src/db/migrate.js'

const config = loadConfig(process.env)
const database = await openDatabase(config)
try {
  const applied = await migrate(database, await readMigrations())
  console.log(applied.length > 0 ? `applied: ${applied.join(', ')}` : 'nothing to apply: the database is current')
} finally {
  await database.close()
}
