import type { Logger } from 'pino'
import { type Database, type DatabaseOptions, openDatabase, whenDatabaseAvailable } from './database.js'
import { type Migration, migrate, readMigrations } from './migrate.js'

/**
 * Opens the database and brings it up to date, as a process starts. A database that is down is
 * waited for, with backoff, rather than taken as a reason to exit; a connection lost later is
 * logged and reopened on demand.
 */
export async function openMigratedDatabase(
  options: DatabaseOptions,
  logger: Logger,
): Promise<{ database: Database; migrations: Migration[]; applied: string[] }> {
  const waiting = (error: Error, delayMs: number) =>
    logger.warn({ err: error, retryInMs: delayMs }, 'database unavailable at start; waiting for it')
  const database = await whenDatabaseAvailable(
    () =>
      openDatabase({
        ...options,
        onConnectionError: (error) => logger.warn({ err: error }, 'database connection lost; reconnecting on demand'),
      }),
    waiting,
  )
  const migrations = await readMigrations()
  const applied = await whenDatabaseAvailable(() => migrate(database, migrations), waiting)
  return { database, migrations, applied }
}
