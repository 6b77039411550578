import { randomUUID } from 'node:crypto'
import multipart from '@fastify/multipart'
import rateLimit from '@fastify/rate-limit'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify'
import { attachmentHandlers } from './attachments/handlers.js'
import { auditHandlers } from './audit/handlers.js'
import { ReadAudit } from './audit/read-audit.js'
import { sealAuditJob } from './audit/seal.js'
import { type AuditSigner, auditSigner } from './audit/signing-key.js'
import { sealPlaintextCases, sealPlaintextFreeText } from './cases/data-at-rest.js'
import { deadlineJob } from './cases/deadlines.js'
import { erasureHandlers, reapplyShreddedKeys, retentionJob } from './cases/erasure.js'
import { caseHandlers } from './cases/handlers.js'
import { procedureHandlers } from './cases/procedure-handlers.js'
import { type Clock, systemClock } from './clock.js'
import type { Config } from './config.js'
import { consentHandlers } from './consents/handlers.js'
import { withdrawalNoticeHandlers } from './consents/withdrawal-notices.js'
import { installKeyring, resolveKeyring } from './crypto/keyring.js'
import type { Database } from './db/database.js'
import type { Migration } from './db/migrate.js'
import { eventHandlers } from './events/handlers.js'
import { healthHandlers } from './health/handlers.js'
import { registerAuthentication } from './http/authentication.js'
import { registerOperations } from './http/contract.js'
import { registerDocs } from './http/docs.js'
import { registerMetrics } from './http/metrics.js'
import { clientErrorProblem, frameworkErrorProblem, ProblemError, registerProblemHandlers } from './http/problem.js'
import { registerProblemPages } from './http/problem-pages.js'
import { indicatorHandlers } from './indicators/handlers.js'
import type { Consumer, Job } from './jobs/queue.js'
import { loggerOptions } from './logger.js'
import { organisationHandlers } from './organisations/handlers.js'
import { packetHandlers } from './packets/handlers.js'
import { proceedingHandlers } from './proceedings/handlers.js'
import { safetyOverrideHandlers } from './safety/handlers.js'
import { loadSops, type SopRegistry } from './sops/registry.js'
import { subjectAccessHandlers } from './subject-access/handlers.js'
import { trainingHandlers } from './trainings/handlers.js'
import { transferHandlers } from './transfers/handlers.js'
import { deliveryConsumer } from './webhooks/delivery.js'
import { webhookHandlers } from './webhooks/handlers.js'
import { resealSecrets } from './webhooks/queries.js'
import { relayLoop } from './webhooks/relay.js'

export interface AppDependencies {
  config: Config
  database: Database
  migrations: Migration[]
  clock?: Clock
  sops?: SopRegistry
  /** The process's logger; one is made from `config.logLevel` without it. */
  logger?: FastifyBaseLogger
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/

/** The composition root: builds the whole service on the given database; never listens. */
export async function buildApp({
  config,
  database,
  migrations,
  clock = systemClock,
  sops = loadSops(),
  logger,
}: AppDependencies): Promise<FastifyInstance> {
  const signer = config.auditSigningKey ? await auditSigner(config.auditSigningKey) : undefined
  const app = Fastify({
    ...(logger ? { loggerInstance: logger } : { logger: loggerOptions(config.logLevel) }),
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
    requestIdHeader: false,
    genReqId: (request) => {
      const given = request.headers['x-request-id']
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
    },
    ajv: { customOptions: { removeAdditional: false } },
    // A client that trickles its request must not hold a connection for ever (408, then closed).
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: config.connectionTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    http: {
      requestTimeout: config.requestTimeoutMs,
      headersTimeout: Math.min(config.headersTimeoutMs, config.requestTimeoutMs),
      // Node looks for overdue requests every 30 s by default, letting them outlive their timeout by that much.
      connectionsCheckingInterval: 1_000,
    },
    frameworkErrors: frameworkErrorProblem,
    clientErrorHandler: clientErrorProblem,
  })
  if (config.maxConnections > 0) app.server.maxConnections = config.maxConnections
  // Long polls of the event feed answer at once with an empty page when the service stops,
  // rather than holding up the shutdown until they are cut.
  const closing = new AbortController()
  app.addHook('preClose', async () => closing.abort())
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })
  app.removeContentTypeParser('text/plain')
  registerProblemHandlers(app)
  const credentials = await registerAuthentication(
    app,
    database,
    processShare(config.authFailuresPerMinute, config.rateLimitProcesses),
    clock,
  )
  await app.register(rateLimit, {
    hook: 'preHandler',
    max: processShare(config.rateLimitPerMinute, config.rateLimitProcesses),
    timeWindow: 60_000,
    keyGenerator: (request) => (request.caller ? `key:${request.caller.apiKey.id}` : `ip:${request.ip}`),
    allowList: (request) => isUnlimited(request),
    errorResponseBuilder: (_request, context) =>
      new ProblemError(429, `Rate limit of ${context.max} requests a minute exceeded; retry in ${context.after}.`),
  })
  // Parts are read by the one operation that takes them (an upload), with its own limits.
  await app.register(multipart, { throwFileSizeLimit: true, limits: { fileSize: config.attachmentMaxBytes } })
  const readAudit = new ReadAudit(database.db)
  registerMetrics(app, database, config.metricsToken, readAudit)
  await registerDocs(app)
  registerProblemPages(app)
  registerOperations(app, {
    ...healthHandlers(database.db, migrations),
    ...organisationHandlers(database.db, clock, credentials),
    ...caseHandlers({ db: database.db, sops, clock, readAudit }),
    ...procedureHandlers({ db: database.db, sops, clock, readAudit }),
    ...consentHandlers({ db: database.db, clock, readAudit }),
    ...withdrawalNoticeHandlers({ db: database.db, clock }),
    ...safetyOverrideHandlers({ db: database.db, clock, readAudit }),
    ...packetHandlers({ db: database.db, sops, clock, readAudit }),
    ...attachmentHandlers({ db: database.db, sops, clock, maxBytes: config.attachmentMaxBytes, readAudit }),
    ...proceedingHandlers({ db: database.db, sops, clock, readAudit }),
    ...eventHandlers(database.db, closing.signal),
    ...webhookHandlers({ db: database.db, allowPrivateTargets: config.webhooks.allowPrivateTargets }),
    ...transferHandlers({ db: database.db, clock }),
    ...subjectAccessHandlers({ db: database.db, sops, clock }),
    ...auditHandlers({ db: database.db, clock, signer }),
    ...erasureHandlers({ db: database.db, clock, shreddedKeysFile: config.erasedKeysFile }),
    ...indicatorHandlers({ db: database.db, clock, rules: { threshold: config.statisticsThreshold } }),
    ...trainingHandlers({ db: database.db, clock }),
  })
  app.addHook('onClose', () => database.close())
  return app
}

/**
 * Each of N API processes counts in its own memory and enforces 1/N of a limit: a load balancer
 * that spreads requests evenly makes the sum the configured limit, with no shared store to ask.
 */
function processShare(limit: number, processes: number): number {
  return Math.max(1, Math.ceil(limit / processes))
}

/** Health checks and the contract and its docs answer however busy a caller is. */
function isUnlimited(request: FastifyRequest): boolean {
  return /^\/(health\/|docs(\/|$)|openapi\.|problems(\/|$)|metrics$)/.test(request.routeOptions.url ?? '')
}

/**
 * Makes the data at rest safe before the process serves: installs the master keys, destroys again
 * every data key on the list of shredded keys (a backup restored from before an erasure), and
 * seals what is still in the clear (rows written before encryption at rest, and free text of
 * consents and packets written before it was sealed).
 */
export async function prepareDataAtRest(
  config: Pick<Config, 'dataEncryptionKeys' | 'dataEncryptionKeyId' | 'databaseUrl' | 'dataDir' | 'erasedKeysFile'>,
  database: Database,
): Promise<{ erasedAgain: number; sealedCases: number; sealedFreeText: number; sealedSecrets: number }> {
  installKeyring(await resolveKeyring(config))
  const erasedAgain = await reapplyShreddedKeys(database.db, config.erasedKeysFile)
  const sealedCases = await sealPlaintextCases(database.db)
  const sealedFreeText = await sealPlaintextFreeText(database.db)
  const sealedSecrets = await resealSecrets(database.db)
  return { erasedAgain, sealedCases, sealedFreeText, sealedSecrets }
}

export interface BackgroundDependencies {
  config: Config
  database: Database
  clock?: Clock
  sops?: SopRegistry
}

/** The background work of the service, for the job queue of `npm start` or of `npm run worker`. */
export function backgroundWork({ config, database, clock = systemClock, sops = loadSops() }: BackgroundDependencies) {
  let signer: Promise<AuditSigner | undefined> | undefined
  const sealOptions = async () => {
    signer ??= config.auditSigningKey ? auditSigner(config.auditSigningKey) : Promise.resolve(undefined)
    return { signer: await signer, checkpointEveryMs: config.auditCheckpointMinutes * 60_000 }
  }
  return {
    jobs: [
      deadlineJob(database.db, sops, clock),
      sealAuditJob(database.db, clock, sealOptions),
      retentionJob(database.db, sops, clock, config.retention, config.erasedKeysFile),
    ] as Job[],
    loops: [relayLoop(database)],
    consumers: [deliveryConsumer(database.db, config.webhooks)] as Consumer[],
  }
}
