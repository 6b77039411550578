import { setTimeout as sleep } from 'node:timers/promises'
import type { Transaction } from 'kysely'
import { fromKysely, fromPglite, PgBoss, type QueueOptions } from 'pg-boss'
import type { Logger } from 'pino'
import type { JobBackend, NotificationListener } from '../db/database.js'
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

/**
 * Work that polls: run again at once while it finds something to do, else after a pause. A loop
 * that can be woken, while it hears its wake-ups, runs again at once only after a round that
 * stopped at its batch size, and otherwise sleeps until woken (or pauses, if work is left over).
 */
export interface Loop {
  name: string
  pauseMs: number
  /**
   * Does one round; answers how many things it did, whether it stopped at its batch size (more
   * waits now), and whether work waits that no wake-up will announce.
   */
  run(queue: JobQueue): Promise<{ done: number; full: boolean; leftOver: boolean }>
  /** Subscribes to what announces new work; answers the unsubscribe. */
  wakeOn?: (listener: NotificationListener) => Promise<() => Promise<void>>
  /**
   * How long to let announced work gather before the round that takes it, so that the commits
   * of a busy moment share one round rather than each waking a round of its own.
   */
  gatherMs?: number
}

/** A job run that a consumer claimed: it is its own until it settles it, or until the run expires. */
export interface ClaimedJob<Data extends object = object> {
  id: string
  data: Data
  /** The group the job was queued in (for a webhook delivery, its endpoint), or null. */
  group: string | null
  /** Runs of the job before this one. */
  retryCount: number
}

export interface JobSource<Data extends object = object> {
  /**
   * Claims up to `limit` jobs that are due, oldest first, none of a group in `skipGroups`, and
   * none beyond the consumer's `groupConcurrency` runs of one group at once across all processes.
   */
  claim(limit: number, skipGroups: readonly string[]): Promise<ClaimedJob<Data>[]>
  /** Ends runs: `done` are finished; `failed` are retried with the queue's backoff while retries are left. */
  settle(done: readonly ClaimedJob<Data>[], failed: readonly ClaimedJob<Data>[]): Promise<void>
  /** Calls `listener` whenever a loop of this process has queued jobs for the consumer and committed them. */
  onQueued(listener: () => void): void
}

/**
 * Work that claims its own jobs, many at once, and runs them side by side rather than one batch
 * after another, so that one slow run holds back no other: it fetches as slots free up, and
 * settles runs in batches as they end.
 */
export interface Consumer<Data extends object = object> {
  name: string
  /** Retries, backoff and how long one run may take before it counts as crashed. */
  options?: QueueOptions
  /** Runs of one group at once, across every process of the queue. */
  groupConcurrency: number
  /** Works until `stop` is aborted, then finishes and settles what it claimed. */
  run(source: JobSource<Data>, context: { stop: AbortSignal; logger: Logger }): Promise<void>
}

export interface QueuedJob {
  data: object
  /** Jobs of one group run at most the consumer's `groupConcurrency` at once. */
  group?: string
}

export interface JobQueue {
  /** Puts jobs on a queue in the caller's transaction: they exist if and only if it commits. */
  enqueue(trx: Transaction<DB>, name: string, jobs: QueuedJob[]): Promise<void>
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
  work: { jobs: Job[]; loops?: Loop[]; consumers?: Consumer[] },
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
  // Queues that a loop round put jobs on; their consumers here are told once the round committed.
  const queuedThisRound = new Set<string>()
  const queuedListeners = new Map<string, (() => void)[]>()
  const queue: JobQueue = {
    async enqueue(trx, name, jobs) {
      if (jobs.length > 0) queuedThisRound.add(name)
      if (jobs.length > 0)
        await boss.insert(
          name,
          jobs.map(({ data, group }) => (group === undefined ? { data } : { data, group: { id: group } })),
          { db: fromKysely(trx) },
        )
    },
    async runNow(name) {
      await boss.send(name)
    },
    async stop() {
      stopping.abort()
      await Promise.all([...running, ...consuming])
      await boss.stop({ graceful: true })
    },
  }
  const running = (work.loops ?? []).map(async (loop) => {
    let announced = false
    let hearing = false
    let wake: (() => void) | undefined
    const unsubscribe = await loop.wakeOn?.({
      notified: () => {
        announced = true
        wake?.()
      },
      hearing: (on) => {
        hearing = on
        announced = true
        wake?.()
      },
    })
    stopping.signal.addEventListener('abort', () => wake?.(), { once: true })
    const gather = async () => {
      if (loop.gatherMs) await sleep(loop.gatherMs, undefined, { signal: stopping.signal }).catch(() => {})
    }
    while (!stopping.signal.aborted) {
      let round = { done: 0, full: false, leftOver: false }
      announced = false
      try {
        round = await loop.run(queue)
        for (const name of queuedThisRound) for (const listener of queuedListeners.get(name) ?? []) listener()
      } catch (error) {
        logger.error({ err: error, loop: loop.name }, 'background loop failed; trying again')
        round.leftOver = true
      }
      queuedThisRound.clear()
      if (round.full || stopping.signal.aborted) continue
      if (announced) {
        await gather()
        continue
      }
      if (round.done > 0 && !hearing) continue
      if (hearing && !round.leftOver) {
        await new Promise<void>((resolve) => {
          wake = resolve
        })
        wake = undefined
        await gather()
      } else {
        await sleep(loop.pauseMs, undefined, { signal: stopping.signal }).catch(() => {})
      }
    }
    await unsubscribe?.()
  })
  const consuming: Promise<void>[] = []
  for (const consumer of work.consumers ?? []) {
    await boss.createQueue(consumer.name, consumer.options)
    const listeners: (() => void)[] = []
    queuedListeners.set(consumer.name, listeners)
    const source = jobSource(boss, consumer, listeners)
    consuming.push(
      consumer
        .run(source, { stop: stopping.signal, logger: logger.child({ consumer: consumer.name }) })
        .catch((error) => {
          logger.error({ err: error, consumer: consumer.name }, 'job consumer stopped after an error')
        }),
    )
  }
  return queue
}

function jobSource(boss: PgBoss, consumer: Consumer, queuedListeners: (() => void)[]): JobSource {
  const attempt = (job: ClaimedJob) => ({ id: job.id, retryCount: job.retryCount })
  return {
    async claim(limit, skipGroups) {
      const jobs = await boss.fetch<object>(consumer.name, {
        batchSize: limit,
        groupConcurrency: consumer.groupConcurrency,
        ...(skipGroups.length > 0 ? { ignoreGroups: [...skipGroups] } : {}),
      })
      return jobs.map((job) => ({
        id: job.id,
        data: job.data ?? {},
        group: job.groupId ?? null,
        retryCount: job.retryCount,
      }))
    },
    async settle(done, failed) {
      // Fenced to the attempt claimed: a run that expired meanwhile and went to another worker is left alone.
      if (done.length > 0) await boss.complete(consumer.name, done.map(attempt))
      if (failed.length > 0) await boss.fail(consumer.name, failed.map(attempt))
    },
    onQueued(listener) {
      queuedListeners.push(listener)
    },
  }
}
