import closeWithGrace from 'close-with-grace'
import { backgroundWork } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { openDatabase, whenDatabaseAvailable } from './db/database.js'
import { migrate, readMigrations } from './db/migrate.js'
import { startJobQueue } from './jobs/queue.js'
import { createLogger } from './logger.js'

// A worker runs the background jobs (deadlines, webhook deliveries) without serving HTTP. Any
// number of workers may run against one PostgreSQL database beside any number of API processes.
const config = loadConfig(process.env)
if (!config.databaseUrl)
  throw new ConfigError('npm run worker needs DATABASE_URL: the embedded database runs its jobs inside npm start')
const logger = createLogger(config.logLevel)
// A database restart is weather: connections that break are dropped and reopened on demand, the
// loops and jobs retry, and the worker carries on once the database is back.
const waiting = (error: Error, delayMs: number) =>
  logger.warn({ err: error, retryInMs: delayMs }, 'database unavailable at start; waiting for it')
const database = await whenDatabaseAvailable(
  () =>
    openDatabase({
      ...config,
      onConnectionError: (error) => logger.warn({ err: error }, 'database connection lost; reconnecting on demand'),
    }),
  waiting,
)
const migrations = await readMigrations()
await whenDatabaseAvailable(() => migrate(database, migrations), waiting)
const queue = await startJobQueue(database.jobBackend, backgroundWork({ config, database }), logger, {
  superviseSeconds: config.jobSuperviseSeconds,
})
logger.info('worker started')
closeWithGrace({ delay: 10_000, logger }, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'worker stopping after an error')
  else logger.info({ signal }, 'worker stopping: finishing jobs in flight')
  await queue.stop()
  await database.close()
})
