import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { Kysely } from 'kysely'
import type { Database } from './database.js'
import type { DB } from './schema.js'

export const migrationsDir = fileURLToPath(new URL('../../sql/', import.meta.url))

/** Any two processes migrating one database take this lock, so only one migrates at a time. */
const MIGRATION_LOCK_KEY = 7_312_026

export interface Migration {
  version: number
  name: string
  sql: string
  checksum: string
}

export class MigrationError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'MigrationError'
  }
}

export async function readMigrations(dir = migrationsDir): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((file) => file.endsWith('.sql')).sort()
  const migrations: Migration[] = []
  for (const file of files) {
    const match = /^(\d{4})_[a-z0-9_]+\.sql$/.exec(file)
    if (!match) throw new MigrationError(`${file}: migration files are named NNNN_verb_object.sql`)
    const sql = await readFile(`${dir}/${file}`, 'utf8')
    const version = Number(match[1])
    if (migrations.some((m) => m.version === version))
      throw new MigrationError(`two migrations share version ${version}`)
    migrations.push({ version, name: file, sql, checksum: createHash('sha256').update(sql).digest('hex') })
  }
  return migrations
}

/** Applies every pending migration in one transaction, after checking that applied ones are unchanged. */
export async function migrate(database: Database, migrations: Migration[]): Promise<string[]> {
  return database.scriptTransaction(async (session) => {
    await session.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY])
    await session.exec(`create table if not exists schema_migrations (
      version integer primary key,
      name text not null,
      checksum text not null,
      applied_at timestamptz not null default now()
    )`)
    const applied = await session.query<{ version: number; name: string; checksum: string }>(
      'select version, name, checksum from schema_migrations order by version',
    )
    checkApplied(applied, migrations)
    const done = new Set(applied.map((row) => row.version))
    const names: string[] = []
    for (const migration of migrations.filter((m) => !done.has(m.version))) {
      await session.exec(migration.sql)
      await session.query('insert into schema_migrations (version, name, checksum) values ($1, $2, $3)', [
        migration.version,
        migration.name,
        migration.checksum,
      ])
      names.push(migration.name)
    }
    return names
  })
}

export async function migrationStatus(db: Kysely<DB>, migrations: Migration[]) {
  const applied = await db.selectFrom('schema_migrations').select(['version', 'name', 'checksum']).execute()
  checkApplied(applied, migrations)
  return { applied: applied.length, pending: migrations.length - applied.length }
}

function checkApplied(applied: { version: number; name: string; checksum: string }[], migrations: Migration[]) {
  for (const row of applied) {
    const migration = migrations.find((m) => m.version === row.version)
    if (!migration) {
      throw new MigrationError(
        `the database has migration ${row.name}, which this code does not know: is an older version of the service running against a newer database?`,
      )
    }
    if (migration.checksum !== row.checksum) {
      throw new MigrationError(
        `${migration.name} was changed after it was applied to this database. Applied migrations are never edited: restore the file and add a new migration instead.`,
      )
    }
  }
}
