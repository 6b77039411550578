// Creates a hub administrator and prints its API key once: the first key of a fresh production
// database, where no demo data exists.
//   npm run create-admin-key -- --name "Jane Doe" [--organisation "TRM hub operator"] [--country BE]
import { parseArgs } from 'node:util'
import { loadConfig } from '../src/config.js'
import { openDatabase } from '../src/db/database.js'
import { migrate, readMigrations } from '../src/db/migrate.js'
import { generateApiKey } from '../src/http/authentication.js'
import { insertApiKey, insertOrganisation, insertPrincipal } from '../src/organisations/queries.js'

const { values } = parseArgs({
  options: {
    name: { type: 'string' },
    organisation: { type: 'string', default: 'TRM hub operator' },
    country: { type: 'string', default: 'BE' },
  },
})
if (!values.name || !/^[A-Z]{2}$/.test(values.country)) {
  console.error('usage: npm run create-admin-key -- --name "Jane Doe" [--organisation NAME] [--country XX]')
  process.exitCode = 2
} else {
  const config = loadConfig(process.env)
  const database = await openDatabase(config)
  try {
    await migrate(database, await readMigrations())
    const generated = generateApiKey()
    const { name, organisation: organisationName, country } = values
    await database.db.transaction().execute(async (trx) => {
      const organisation =
        (await trx
          .selectFrom('organisations')
          .selectAll()
          .where('kind', '=', 'hub_operator')
          .where('name', '=', organisationName)
          .executeTakeFirst()) ??
        (await insertOrganisation(trx, {
          name: organisationName,
          country,
          kind: 'hub_operator',
          can_send: false,
          can_receive: false,
        }))
      const principal = await insertPrincipal(trx, {
        organisation_id: organisation.id,
        name,
        kind: 'staff',
        roles: ['admin'],
      })
      await insertApiKey(trx, principal.id, generated, 'created by create-admin-key')
      console.log(`Admin "${name}" of "${organisation.name}". The key is shown this once; keep it secret:\n`)
      console.log(`  ${generated.key}\n`)
    })
  } finally {
    await database.close()
  }
}
