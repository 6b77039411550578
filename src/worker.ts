// First: tracing, when OTEL_* configures it, must start before the modules it traces load.
import './tracing-start.js'
import closeWithGrace from 'close-with-grace'
import { backgroundWork, prepareDataAtRest } from './app.js'
import { auditSigner } from './audit/signing-key.js'
import { ConfigError, loadConfig } from './config.js'
import { openMigratedDatabase } from './db/open.js'
import { startJobQueue } from './jobs/queue.js'
import { createLogger } from './logger.js'

// A worker runs the background jobs (deadlines, webhook deliveries) without serving HTTP. Any
// number of workers may run against one PostgreSQL database beside any number of API processes.
const config = loadConfig(process.env)
if (!config.databaseUrl)
  throw new ConfigError('npm run worker needs DATABASE_URL: the embedded database runs its jobs inside npm start')
const logger = createLogger(config.logLevel)
if (config.auditSigningKey) await auditSigner(config.auditSigningKey)
else logger.warn('AUDIT_SIGNING_KEY is not set: the audit chain is sealed, but no checkpoint is signed')
// A database restart is weather: connections that break are dropped and reopened on demand, the
// loops and jobs retry, and the worker carries on once the database is back.
const { database } = await openMigratedDatabase(config, logger)
await prepareDataAtRest(config, database)
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
