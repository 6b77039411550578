// First: tracing, when OTEL_* configures it, must start before the modules it traces load.
import './tracing-start.js'
import closeWithGrace from 'close-with-grace'
import { backgroundWork, buildApp, prepareDataAtRest } from './app.js'
import { resolveAuditSigningKey } from './audit/signing-key.js'
import { systemClock } from './clock.js'
import { ConfigError, loadConfig } from './config.js'
import { openMigratedDatabase } from './db/open.js'
import { seedDemoHistory } from './demo/history.js'
import { demoBanner, hasDemoData, seedDemoIfEmpty } from './demo/seed.js'
import { createLogger } from './logger.js'
import { loadSops } from './sops/registry.js'

const environment = loadConfig(process.env)
const logger = createLogger(environment.logLevel)

if (environment.jobs === 'external' && !environment.databaseUrl) {
  throw new ConfigError('JOBS=external needs DATABASE_URL: workers cannot share the embedded database')
}
const { database, migrations, applied } = await openMigratedDatabase(environment, logger)
// On the embedded database the key that signs audit checkpoints is made in the data directory.
const config = { ...environment, auditSigningKey: await resolveAuditSigningKey(environment) }
if (!config.auditSigningKey)
  logger.warn('AUDIT_SIGNING_KEY is not set: the audit chain is sealed, but no checkpoint is signed')
logger.info(database.kind === 'postgres' ? 'database: PostgreSQL' : `database: embedded PGlite in ${config.dataDir}`)
if (applied.length > 0) logger.info({ applied }, 'migrations applied')
const atRest = await prepareDataAtRest(config, database)
if (atRest.erasedAgain + atRest.sealedCases + atRest.sealedFreeText + atRest.sealedSecrets > 0)
  logger.info(atRest, 'data at rest prepared')

const sops = loadSops()
const seedDemo = config.demoData === 'always' || (config.demoData === 'auto' && database.kind === 'pglite')
if (seedDemo && (await seedDemoIfEmpty(database.db))) {
  const cases = await seedDemoHistory(database.db, sops, systemClock.now())
  logger.info({ cases }, 'demo data seeded into the empty database, with two years of fictitious history')
}

const app = await buildApp({ config, database, migrations, sops, clock: systemClock, logger })
// The job queue (pg-boss, about 6 MB) is loaded only by a process that runs the jobs.
const jobs =
  config.jobs === 'in-process'
    ? await (await import('./jobs/queue.js')).startJobQueue(
        database.jobBackend,
        backgroundWork({ config, database, sops }),
        logger,
        { superviseSeconds: config.jobSuperviseSeconds },
      )
    : undefined
if (jobs) {
  // The jobs stop while the server finishes its requests; the database closes after both.
  let stopping: Promise<void> | undefined
  app.addHook('preClose', async () => {
    stopping = jobs.stop()
  })
  app.addHook('onClose', async () => {
    await stopping
  })
}
closeWithGrace({ delay: 10_000, logger }, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'shutting down after an error')
  else logger.info({ signal }, 'shutting down: finishing requests in flight')
  await app.close()
})
const address = await app.listen({ host: config.host, port: config.port })
if (await hasDemoData(database.db)) process.stdout.write(demoBanner(address))
