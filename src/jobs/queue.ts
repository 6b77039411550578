import { fromPglite, PgBoss } from 'pg-boss'
import type { Logger } from 'pino'
import type { JobBackend } from '../db/database.js'

/** A recurring piece of background work, defined by the capability whose rule it applies. */
export interface Job {
  name: string
  /** A cron schedule (UTC), at most once a minute. */
  cron: string
  run(): Promise<unknown>
}

export interface JobQueue {
  /** Asks for one run of a job now, besides its schedule. */
  runNow(name: string): Promise<void>
  stop(): Promise<void>
}

/** Runs jobs through pg-boss, in the database the service uses: retried, and never on two workers at once. */
export async function startJobQueue(backend: JobBackend, jobs: Job[], logger: Logger): Promise<JobQueue> {
  const boss =
    backend.kind === 'postgres'
      ? new PgBoss({ connectionString: backend.connectionString, schema: backend.schema, max: 2 })
      : new PgBoss({ db: fromPglite(backend.pglite) })
  boss.on('error', (error) => logger.error({ err: error }, 'job queue error'))
  await boss.start()
  for (const job of jobs) {
    await boss.createQueue(job.name)
    await boss.schedule(job.name, job.cron)
    await boss.work(job.name, { pollingIntervalSeconds: 1 }, async () => {
      const result = await job.run()
      logger.info({ job: job.name, result }, 'job done')
      return result
    })
  }
  return {
    async runNow(name) {
      await boss.send(name)
    },
    stop: () => boss.stop({ graceful: true }),
  }
}
