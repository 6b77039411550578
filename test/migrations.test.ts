import { createHash, randomBytes } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { sql } from 'kysely'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { type Database, openDatabase } from '../src/db/database.js'
import { type Migration, MigrationError, migrate, migrationsDir, readMigrations } from '../src/db/migrate.js'
import { dropSchema, openEmptyTestDatabase, openTestDatabase, startTestApp, testDatabaseUrl } from './fixtures/app.js'

function freshSchemaName(): string {
  return `test_migrations_${randomBytes(6).toString('hex')}`
}

function migration(version: number, name: string, text: string): Migration {
  return { version, name, sql: text, checksum: createHash('sha256').update(text).digest('hex') }
}

/** The error a promise rejects with, or undefined when it resolves. */
async function failureOf(promise: Promise<unknown>): Promise<Error | undefined> {
  try {
    await promise
    return undefined
  } catch (error) {
    return error as Error
  }
}

async function sqlFiles(): Promise<string[]> {
  return (await readdir(migrationsDir)).filter((file) => file.endsWith('.sql')).sort()
}

async function appliedRows(database: Database) {
  return database.db
    .selectFrom('schema_migrations')
    .select(['version', 'name', 'checksum'])
    .orderBy('version')
    .execute()
}

async function tableExists(database: Database, table: string): Promise<boolean> {
  const { rows } = await sql<{ found: string | null }>`select to_regclass(${table})::text as found`.execute(database.db)
  return rows[0]?.found != null
}

t.test('from an empty database, migrate applies every file in sql/ and names them', async (t) => {
  const database = await openEmptyTestDatabase(t)
  const files = await sqlFiles()
  t.ok(files.length > 0, 'there are migration files')
  t.notOk(await tableExists(database, 'organisations'), 'the database starts empty')

  const migrations = await readMigrations()
  t.same(
    migrations.map((m) => m.name),
    files,
    'readMigrations reads every file, in order',
  )
  const applied = await migrate(database, migrations)
  t.same(applied, files, 'migrate answers the names of the files it applied')
  t.same(
    await appliedRows(database),
    migrations.map(({ version, name, checksum }) => ({ version, name, checksum })),
    'schema_migrations records each file with its checksum',
  )
  for (const table of ['organisations', 'principals', 'api_keys']) {
    t.ok(await tableExists(database, table), `${table} exists`)
  }

  t.same(await migrate(database, migrations), [], 'a second migrate applies nothing')
  t.same(await migrate(database, await readMigrations()), [], 'nor does a third, with the files read afresh')
  t.equal((await appliedRows(database)).length, files.length, 'and records nothing more')
})

t.test('a new migration is applied on top of the applied ones, and only it', async (t) => {
  const database = await openEmptyTestDatabase(t)
  const migrations = await readMigrations()
  await migrate(database, migrations)
  const next = migration(9001, '9001_create_widgets.sql', 'create table widgets (id integer primary key);')
  t.same(await migrate(database, [...migrations, next]), [next.name])
  t.ok(await tableExists(database, 'widgets'))
  t.same(await migrate(database, [...migrations, next]), [])
})

t.test('an applied migration whose text was edited is refused', async (t) => {
  const database = await openEmptyTestDatabase(t)
  const migrations = await readMigrations()
  await migrate(database, migrations)
  const before = await appliedRows(database)

  const [first, ...rest] = migrations as [Migration, ...Migration[]]
  const editedSql = `${first.sql}\n-- an innocent-looking edit\n`
  const edited = migration(first.version, first.name, editedSql)
  t.not(edited.checksum, first.checksum)
  const next = migration(9002, '9002_create_gadgets.sql', 'create table gadgets (id integer primary key);')

  const changed = await failureOf(migrate(database, [edited, ...rest, next]))
  t.type(changed, MigrationError, 'refused with a MigrationError')
  t.match(changed?.message, first.name, 'naming the changed file')
  t.match(changed?.message, /was changed after it was applied/, 'saying it was changed')
  t.same(await appliedRows(database), before, 'schema_migrations is unchanged')
  t.notOk(await tableExists(database, 'gadgets'), 'the pending migration was not applied either')
  t.same(await migrate(database, migrations), [], 'the restored files migrate as before')
})

t.test('a database holding a migration this code does not know is refused', async (t) => {
  const database = await openEmptyTestDatabase(t)
  const migrations = await readMigrations()
  const newer = migration(9003, '9003_create_sprockets.sql', 'create table sprockets (id integer primary key);')
  // A newer version of the service migrated the database; this (older) code must not run against it.
  t.same(await migrate(database, [...migrations, newer]), [...migrations.map((m) => m.name), newer.name])

  const unknown = await failureOf(migrate(database, migrations))
  t.type(unknown, MigrationError, 'refused with a MigrationError')
  t.match(unknown?.message, newer.name, 'naming the unknown migration')
  t.match(unknown?.message, /which this code does not know/)
  t.equal((await appliedRows(database)).length, migrations.length + 1, 'nothing is removed')
})

t.test('a migration that fails leaves the database as it was', async (t) => {
  const database = await openEmptyTestDatabase(t)
  const migrations = await readMigrations()
  await migrate(database, migrations)
  const good = migration(9004, '9004_create_cogs.sql', 'create table cogs (id integer primary key);')
  const bad = migration(9005, '9005_broken.sql', 'alter table no_such_table add column x integer;')
  await t.rejects(migrate(database, [...migrations, good, bad]), 'the broken migration fails')
  t.notOk(await tableExists(database, 'cogs'), 'the good migration before it was rolled back')
  t.equal((await appliedRows(database)).length, migrations.length, 'neither is recorded')
  t.same(
    await migrate(database, [...migrations, good]),
    [good.name],
    'the good one applies once the broken one is gone',
  )
})

t.test('readiness reports every migration applied and none pending', async (t) => {
  const { request } = await startTestApp(t)
  const files = await sqlFiles()
  const ready = await request({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ok', database: 'ok', migrations: { applied: files.length, pending: 0 } })
})

t.test('readiness answers 503 while a migration is pending', async (t) => {
  const database = await openTestDatabase(t)
  const pending = migration(9006, '9006_create_levers.sql', 'create table levers (id integer primary key);')
  const app = await buildApp({
    config: { ...loadConfig({}), logLevel: 'silent' },
    database,
    migrations: [...(await readMigrations()), pending],
  })
  t.teardown(() => app.close())
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 503)
  t.match(ready.json(), { status: 503, type: 'urn:trm:problem:not-ready', detail: /1 migration/ })
})

t.test(
  'two processes migrating one PostgreSQL schema at once: one applies, the other waits and finds nothing to do',
  { skip: testDatabaseUrl ? false : 'needs real PostgreSQL: set TEST_DATABASE_URL to run it' },
  async (t) => {
    const url = testDatabaseUrl as string
    const schema = freshSchemaName()
    const databases: Database[] = []
    t.teardown(async () => {
      await Promise.all(databases.map((database) => database.close().catch(() => {})))
      await dropSchema(url, schema)
    })
    databases.push(
      ...(await Promise.all([
        openDatabase({ databaseUrl: url, databaseSchema: schema }),
        openDatabase({ databaseUrl: url, databaseSchema: schema }),
      ])),
    )
    const [a, b] = databases as [Database, Database]
    const migrations = await readMigrations()
    const names = migrations.map((m) => m.name)

    const results = await Promise.all([migrate(a, migrations), migrate(b, migrations)])
    t.same(
      [...results].sort((x, y) => y.length - x.length),
      [names, []],
      'exactly one call applied the files',
    )

    const { rows } = await sql<{ version: number; copies: number }>`
      select version, count(*)::int as copies from schema_migrations group by version order by version
    `.execute(a.db)
    t.same(
      rows,
      migrations.map((m) => ({ version: m.version, copies: 1 })),
      'schema_migrations holds each version exactly once',
    )
    const { rows: where } = await sql<{ schema: string }>`
      select table_schema as schema from information_schema.tables where table_name = 'schema_migrations'
        and table_schema = ${schema}
    `.execute(b.db)
    t.equal(where.length, 1, 'the migrations went into the fresh schema')
  },
)

t.test(
  'processes opening one fresh PostgreSQL schema at once all succeed',
  { skip: testDatabaseUrl ? false : 'needs real PostgreSQL: set TEST_DATABASE_URL to run it' },
  async (t) => {
    const url = testDatabaseUrl as string
    // Racing "create schema if not exists" collides only sometimes, so race several times.
    for (let round = 0; round < 5; round++) {
      const schema = freshSchemaName()
      const opened = await Promise.allSettled(
        [1, 2, 3, 4].map(() => openDatabase({ databaseUrl: url, databaseSchema: schema })),
      )
      for (const result of opened) if (result.status === 'fulfilled') await result.value.close()
      await dropSchema(url, schema)
      t.same(
        opened.filter((result) => result.status === 'rejected').map((result) => String(result.reason)),
        [],
        `round ${round + 1}: all four opened the schema`,
      )
    }
  },
)
