import { setTimeout as sleep } from 'node:timers/promises'
import type { Transaction } from 'kysely'
import { fromKysely, fromPglite, PgBoss, type QueueOptions } from 'pg-boss'
import type { Logger } from 'pino'
import type { JobBackend } from '../db/database.js'
import type { DB } from '../db/schema.js'

/** A kind of background work, defined by the capability whose rule it applies. */
export interface Job<Data extends object = object> {
  name: string
  /** A cron schedule (UTC), at most once a minute; without one, the job runs when it is queued. */
  cron?: string
  /** Retries, backoff and how long one run may take before it counts as crashed. */
  options?: QueueOptions
  run(data: Data, attempt: { retryCount: number; signal: AbortSignal }): Promise<unknown>
}

/** Work that polls: run again at once while it finds something to do, else after a pause. */
export interface Loop {
  name: string
  pauseMs: number
  /** Does one round; answers how many things it did. */
  run(queue: JobQueue): Promise<number>
}

export interface JobQueue {
  /** Puts jobs on a queue in the caller's transaction: they exist if and only if it commits. */
  enqueue(trx: Transaction<DB>, name: string, data: object[]): Promise<void>
  /** Asks for one run of a job now, besides its schedule. */
  runNow(name: string): Promise<void>
  stop(): Promise<void>
}

export interface JobQueueOptions {
  /** How often to look for runs whose worker died (they are retried); pg-boss's default is a minute. */
  superviseSeconds?: number
}

/**
 * Runs jobs and loops on pg-boss, in the database the service uses. Any number of processes may
 * run the same queue: a job run is claimed by one worker, and retried if that worker dies.
 */
export async function startJobQueue(
  backend: JobBackend,
  work: { jobs: Job[]; loops?: Loop[] },
  logger: Logger,
  { superviseSeconds = 60 }: JobQueueOptions = {},
): Promise<JobQueue> {
  const supervision = { superviseIntervalSeconds: superviseSeconds, monitorIntervalSeconds: superviseSeconds }
  const boss =
    backend.kind === 'postgres'
      ? new PgBoss({ connectionString: backend.connectionString, schema: backend.schema, max: 4, ...supervision })
      : new PgBoss({ db: fromPglite(backend.pglite), ...supervision })
  boss.on('error', (error) => logger.error({ err: error }, 'job queue error'))
  await boss.start()
  for (const job of work.jobs) {
    await boss.createQueue(job.name, job.options)
    if (job.cron) await boss.schedule(job.name, job.cron)
    await boss.work<object>(job.name, { pollingIntervalSeconds: 1 }, async ([run]) => {
      if (!run) return
      const result = await job.run(run.data ?? {}, { retryCount: run.retryCount, signal: run.signal })
      logger.debug({ job: job.name, result }, 'job done')
      return result
    })
  }

  const stopping = new AbortController()
  const queue: JobQueue = {
    async enqueue(trx, name, data) {
      if (data.length > 0)
        await boss.insert(
          name,
          data.map((item) => ({ data: item })),
          { db: fromKysely(trx) },
        )
    },
    async runNow(name) {
      await boss.send(name)
    },
    async stop() {
      stopping.abort()
      await Promise.all(running)
      await boss.stop({ graceful: true })
    },
  }
  const running = (work.loops ?? []).map(async (loop) => {
    while (!stopping.signal.aborted) {
      let done = 0
      try {
        done = await loop.run(queue)
      } catch (error) {
        logger.error({ err: error, loop: loop.name }, 'background loop failed; trying again')
      }
      if (done === 0) await sleep(loop.pauseMs, undefined, { signal: stopping.signal }).catch(() => {})
    }
  })
  return queue
}
