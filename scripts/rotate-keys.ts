// Wraps every case's data key, and seals every webhook secret, anew under the current master key
// (DATA_ENCRYPTION_KEY_ID, else the last of DATA_ENCRYPTION_KEYS; on the embedded database, the
// last key of its key file). Online: the service keeps running on PostgreSQL while it works, each
// row locked only while it is rewritten. Idempotent and resumable: run it again after a stop.
// Retire the old master key only once it reports nothing left to rewrap.
//
//   DATA_ENCRYPTION_KEYS=k1:...,k2:... DATA_ENCRYPTION_KEY_ID=k2 npm run rotate-keys
import { rewrapCaseKeys } from '../src/cases/data-at-rest.js'
import { loadConfig } from '../src/config.js'
import { installKeyring, resolveKeyring } from '../src/crypto/keyring.js'
import { openDatabase } from '../src/db/database.js'
import { resealSecrets } from '../src/webhooks/queries.js'

const config = loadConfig(process.env)
const database = await openDatabase(config)
try {
  const keyring = await resolveKeyring(config)
  installKeyring(keyring)
  const cases = await rewrapCaseKeys(database.db, keyring.currentId)
  const secrets = await resealSecrets(database.db)
  console.log(`master key ${keyring.currentId}: ${cases} case keys rewrapped, ${secrets} webhook secrets sealed anew`)
} finally {
  await database.close()
}
