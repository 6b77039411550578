// The minimal implementation as a process of its own, for the load: DATABASE_URL, DATABASE_SCHEMA,
// DATA_ENCRYPTION_KEYS, PORT and HOST as the service reads them.
import pg from 'pg'
import { installKeyring, parseKeyring } from '../../src/crypto/keyring.js'
import { loadSops } from '../../src/sops/registry.js'
import { buildMinimal } from './minimal.js'

const schema = process.env.DATABASE_SCHEMA ?? 'public'
installKeyring(parseKeyring(process.env.DATA_ENCRYPTION_KEYS ?? ''))
// The service's pool holds 10 connections (src/db/database.ts): the same here.
const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  max: 10,
  options: `-c search_path="${schema}"`,
})
pool.on('error', () => {})
const app = buildMinimal(pool, loadSops())
await app.listen({ port: Number(process.env.PORT ?? 3001), host: process.env.HOST ?? '127.0.0.1' })
process.once('SIGTERM', () => {
  void app.close().then(() => pool.end())
})
