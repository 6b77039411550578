import http from 'node:http'
import https from 'node:https'
import { type Kysely, sql } from 'kysely'
import type { Logger } from 'pino'
import { openSecret } from '../crypto/case-keys.js'
import type { DB, WebhookDelivery } from '../db/schema.js'
import { type FeedEvent, presentEvent } from '../events/outbox.js'
import type { ClaimedJob, Consumer, JobSource } from '../jobs/queue.js'
import { EndpointBreakers } from './breaker.js'
import { signedHeaders } from './signature.js'
import { publicLookup, unsafeTargetReason } from './targets.js'

export const DELIVER_WEBHOOK = 'deliver-webhook'
/** Most jobs claimed by one fetch. */
const CLAIM_LIMIT = 100
/** How long an idle dispatcher waits before it asks the queue again. */
const IDLE_POLL_MS = 250
/** Batches of outcomes written at once. */
const WRITERS = 3

export interface DeliverySettings {
  allowPrivateTargets: boolean
  timeoutSeconds: number
  /** Attempts after the first, spaced by exponential backoff from `retryDelaySeconds`. */
  retryLimit: number
  retryDelaySeconds: number
  /** Consecutive deliveries that used up their retries before the endpoint is disabled. */
  disableAfterFailedDeliveries: number
  /** Deliveries in flight at once in one process. */
  concurrency: number
  /** Deliveries in flight at once to one endpoint, across all processes. */
  perEndpointInFlight: number
  /** Failed attempts in a row that pause an endpoint's deliveries in a process, and for how long. */
  breakerFailures: number
  breakerCooldownSeconds: number
}

type DeliveryJob = ClaimedJob<{ delivery_id: string }>

/** What became of one claimed job, to be written down and settled with others. */
type Outcome =
  | { job: DeliveryJob; kind: 'nothing' }
  | { job: DeliveryJob; kind: 'cancelled'; deliveryId: string }
  | {
      job: DeliveryJob
      kind: 'attempted'
      deliveryId: string
      endpointId: string
      at: Date
      answer: Answer
      durationMs: number
      status: 'succeeded' | 'retrying' | 'failed'
      nextAttemptAt: Date | null
      gone: boolean
    }

/**
 * Delivers webhooks: claims due deliveries in batches, runs up to `concurrency` side by side, at
 * most `perEndpointInFlight` to one endpoint (the queue's group limit, across all processes), and
 * writes down and settles finished ones in batches. An endpoint that keeps failing or hanging is
 * paused by its breaker: its jobs stay queued, unclaimed and uncounted, while every other endpoint
 * is served. A delivery whose attempt fails is retried with the queue's backoff; a run whose
 * worker dies expires and is retried by another, so every delivery is made at least once.
 */
export function deliveryConsumer(db: Kysely<DB>, settings: DeliverySettings): Consumer<{ delivery_id: string }> {
  return {
    name: DELIVER_WEBHOOK,
    groupConcurrency: settings.perEndpointInFlight,
    options: {
      retryLimit: settings.retryLimit,
      retryDelay: settings.retryDelaySeconds,
      retryBackoff: true,
      retryDelayMax: 6 * 60 * 60,
      // A run ends within the timeout; the margin covers writing it down under load.
      expireInSeconds: settings.timeoutSeconds + 10,
    },
    async run(source, { stop, logger }) {
      const breakers = new EndpointBreakers({
        failures: settings.breakerFailures,
        cooldownMs: settings.breakerCooldownSeconds * 1000,
      })
      // Slots of this process free up when an attempt ends; an endpoint's slots, counted by the
      // queue, only when its runs are settled. Settled runs and newly queued jobs are more work.
      const attemptEnded = new WakeUp(stop)
      const moreWork = new WakeUp(stop)
      source.onQueued(() => moreWork.wake())
      const recorder = new Recorder(db, source, settings.disableAfterFailedDeliveries, logger, () => moreWork.wake())
      const running = new Set<Promise<void>>()
      const refill = Math.max(1, Math.floor(settings.concurrency / 4))

      async function attempt(job: DeliveryJob, target: Target | undefined): Promise<Outcome> {
        if (!target || !['pending', 'retrying'].includes(target.status)) return { job, kind: 'nothing' }
        if (!target.enabled) return { job, kind: 'cancelled', deliveryId: target.delivery_id }
        const at = new Date()
        const body = JSON.stringify(presentEvent(target))
        const headers = signedHeaders(target.secrets, target.id, body, at)
        const started = performance.now()
        const answer = await post(new URL(target.url), body, headers, settings)
        const durationMs = Math.round(performance.now() - started)
        const delivered = answer.status !== null && answer.status >= 200 && answer.status < 300
        const gone = answer.status === 410
        const retry = !delivered && !gone && job.retryCount < settings.retryLimit
        if (delivered || gone) breakers.succeeded(target.endpoint_id)
        else {
          const pausedUntil = breakers.failed(target.endpoint_id, Date.now())
          if (pausedUntil) {
            const why = `${settings.breakerFailures} failed attempts in a row: deliveries to this endpoint paused until ${pausedUntil.toISOString()}`
            answer.error = answer.error ? `${answer.error}; ${why}` : why
            logger.warn({ endpoint: target.endpoint_id, until: pausedUntil }, 'webhook endpoint paused')
          }
        }
        return {
          job,
          kind: 'attempted',
          deliveryId: target.delivery_id,
          endpointId: target.endpoint_id,
          at,
          answer,
          durationMs,
          status: delivered ? 'succeeded' : retry ? 'retrying' : 'failed',
          // About: the queue adds jitter to the backoff.
          nextAttemptAt: retry ? new Date(Date.now() + settings.retryDelaySeconds * 1000 * 2 ** job.retryCount) : null,
          gone,
        }
      }

      function start(job: DeliveryJob, target: Target | undefined) {
        const run: Promise<void> = attempt(job, target)
          .then((outcome) => recorder.add(outcome))
          .catch((error) =>
            logger.error({ err: error }, 'webhook delivery failed unexpectedly; its run will be retried'),
          )
          .finally(() => {
            running.delete(run)
            attemptEnded.wake()
          })
        running.add(run)
      }

      while (!stop.aborted) {
        const free = settings.concurrency - running.size
        // A claim is a round trip: wait until it can bring a fair number of jobs.
        if (free < refill) {
          await attemptEnded.wait(IDLE_POLL_MS)
          continue
        }
        const limit = Math.min(free, CLAIM_LIMIT)
        let jobs: DeliveryJob[]
        let targets: Map<string, Target>
        try {
          jobs = await source.claim(limit, breakers.open(Date.now()))
          targets = await targetsOf(db, jobs)
        } catch (error) {
          logger.error({ err: error }, 'could not claim webhook deliveries; trying again')
          await moreWork.wait(1000)
          continue
        }
        for (const job of jobs) start(job, targets.get(job.data.delivery_id))
        // Nothing more is due now, or only for endpoints at their limit: look again when runs are
        // settled (their endpoints may have more), when jobs are queued, or after a pause.
        if (jobs.length < limit) await moreWork.wait(IDLE_POLL_MS)
      }
      await Promise.allSettled(running)
      await recorder.drain()
    },
  }
}

/** A pause that ends early when woken or stopped; a wake while nobody waits ends the next pause at once. */
class WakeUp {
  #wake: (() => void) | undefined
  #missed = false
  readonly #stop: AbortSignal

  constructor(stop: AbortSignal) {
    this.#stop = stop
  }

  wait(ms: number): Promise<void> {
    if (this.#stop.aborted || this.#missed) {
      this.#missed = false
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      const end = () => {
        clearTimeout(timer)
        this.#stop.removeEventListener('abort', end)
        this.#wake = undefined
        resolve()
      }
      const timer = setTimeout(end, ms)
      this.#stop.addEventListener('abort', end, { once: true })
      this.#wake = end
    })
  }

  wake(): void {
    if (this.#wake) this.#wake()
    else this.#missed = true
  }
}

/**
 * Writes outcomes down and settles their jobs, many per statement: while batches are being
 * written, the next gathers. A job is settled only after its outcome is written, so a crash in
 * between leaves a run that expires and is tried again, never a delivery that is lost.
 */
class Recorder {
  #waiting: Outcome[] = []
  readonly #writing = new Set<Promise<void>>()

  constructor(
    private readonly db: Kysely<DB>,
    private readonly source: JobSource<{ delivery_id: string }>,
    private readonly disableAfter: number,
    private readonly logger: Logger,
    private readonly written: () => void,
  ) {}

  add(outcome: Outcome): void {
    this.#waiting.push(outcome)
    // A few writers at once, so that an endpoint's next deliveries never wait behind a whole
    // write of others: its slots are counted until its runs are settled.
    if (this.#writing.size >= WRITERS) return
    const writer: Promise<void> = this.#writeAll().finally(() => this.#writing.delete(writer))
    this.#writing.add(writer)
  }

  async drain(): Promise<void> {
    while (this.#writing.size > 0) await Promise.all(this.#writing)
  }

  async #writeAll(): Promise<void> {
    let failures = 0
    while (this.#waiting.length > 0) {
      const batch = this.#waiting
      this.#waiting = []
      try {
        await recordOutcomes(this.db, batch, this.disableAfter)
        const retried = (outcome: Outcome) => outcome.kind === 'attempted' && outcome.status === 'retrying'
        await this.source.settle(
          batch.filter((outcome) => !retried(outcome)).map((outcome) => outcome.job),
          batch.filter(retried).map((outcome) => outcome.job),
        )
        failures = 0
        this.written()
      } catch (error) {
        failures += 1
        // Left unsettled, the runs expire and are retried: delivered at least once, perhaps twice.
        if (failures >= 5) {
          this.logger.error(
            { err: error, deliveries: batch.length },
            'could not write webhook deliveries down; their runs will be retried',
          )
          continue
        }
        this.logger.warn({ err: error }, 'could not write webhook deliveries down; trying again')
        this.#waiting = [...batch, ...this.#waiting]
        await new Promise((resolve) => setTimeout(resolve, 200 * failures))
      }
    }
  }
}

/**
 * The attempts, the deliveries' new states, and per endpoint the count of deliveries that used up
 * their retries (a success resets it, in the order the attempts ended) and whether it is now
 * disabled (a 410, or too many such deliveries): one statement, so one round trip and atomic.
 */
async function recordOutcomes(db: Kysely<DB>, outcomes: Outcome[], disableAfter: number) {
  type Change = { id: string; status: WebhookDelivery['status']; next: string | null }
  const changed = outcomes.flatMap((outcome): Change[] => {
    if (outcome.kind === 'attempted') {
      return [{ id: outcome.deliveryId, status: outcome.status, next: outcome.nextAttemptAt?.toISOString() ?? null }]
    }
    return outcome.kind === 'cancelled' ? [{ id: outcome.deliveryId, status: 'cancelled', next: null }] : []
  })
  if (changed.length === 0) return
  const attempted = outcomes.filter((outcome) => outcome.kind === 'attempted')
  const counts = new Map<string, { reset: boolean; add: number; gone: boolean }>()
  for (const outcome of attempted) {
    const count = counts.get(outcome.endpointId) ?? { reset: false, add: 0, gone: false }
    if (outcome.status === 'succeeded') {
      count.reset = true
      count.add = 0
    } else if (outcome.gone) count.gone = true
    else if (outcome.status === 'failed') count.add += 1
    counts.set(outcome.endpointId, count)
  }
  const endpoints = [...counts]
  // Counted on the endpoint's row as the update finds it, not as the statement's snapshot saw it:
  // writers recording failures of one endpoint at once wait for each other's row, and each adds
  // to what the one before it wrote.
  const failed = sql`(case when counts.reset then counts.add else endpoint.failed_deliveries + counts.add end)`
  const disabling = sql`(case when not endpoint.enabled then null
    when counts.gone then 'gone'
    when ${failed} >= ${disableAfter}::int then 'persistent_failure' end)`
  await sql`
    with attempts as (
      insert into webhook_attempts (delivery_id, at, status_code, error, duration_ms)
      select * from unnest(
        ${attempted.map((outcome) => outcome.deliveryId)}::uuid[],
        ${attempted.map((outcome) => outcome.at.toISOString())}::timestamptz[],
        ${attempted.map((outcome) => outcome.answer.status)}::int[],
        ${attempted.map((outcome) => outcome.answer.error)}::text[],
        ${attempted.map((outcome) => outcome.durationMs)}::int[]
      )
    ), deliveries as (
      update webhook_deliveries as delivery
      set status = changed.status, next_attempt_at = changed.next_attempt_at, updated_at = now()
      from unnest(
        ${changed.map((row) => row.id)}::uuid[],
        ${changed.map((row) => row.status)}::text[],
        ${changed.map((row) => row.next)}::timestamptz[]
      ) as changed(id, status, next_attempt_at)
      where delivery.id = changed.id
    )
    update webhook_endpoints as endpoint
    set failed_deliveries = ${failed},
        enabled = endpoint.enabled and ${disabling} is null,
        disabled_reason = coalesce(${disabling}, endpoint.disabled_reason),
        version = endpoint.version + case when ${disabling} is null then 0 else 1 end,
        updated_at = case when ${disabling} is null then endpoint.updated_at else now() end
    from unnest(
      ${endpoints.map(([id]) => id)}::uuid[],
      ${endpoints.map(([, count]) => count.reset)}::boolean[],
      ${endpoints.map(([, count]) => count.add)}::int[],
      ${endpoints.map(([, count]) => count.gone)}::boolean[]
    ) as counts(id, reset, add, gone)
    where endpoint.id = counts.id and (${failed} <> endpoint.failed_deliveries or ${disabling} is not null)
  `.execute(db)
}

/** What the claimed jobs deliver, with the secrets that sign for their endpoints now (newest first). */
async function targetsOf(db: Kysely<DB>, jobs: DeliveryJob[]): Promise<Map<string, Target>> {
  if (jobs.length === 0) return new Map()
  const { rows } = await sql<Target>`
    select delivery.id as delivery_id, delivery.status, endpoint.id as endpoint_id, endpoint.url, endpoint.enabled,
           event.id, event.type, event.occurred_at, event.case_id, event.organisation_ids, event.data,
           array(
             select secret.id::text || ' ' || secret.secret from webhook_secrets as secret
             where secret.endpoint_id = endpoint.id and (secret.expires_at is null or secret.expires_at > now())
             order by secret.created_at desc
           ) as secrets
    from webhook_deliveries as delivery
    join webhook_endpoints as endpoint on endpoint.id = delivery.endpoint_id
    join events as event on event.id = delivery.event_id
    where delivery.id = any(${jobs.map((job) => job.data.delivery_id)}::uuid[])
  `.execute(db)
  return new Map(rows.map((row) => [row.delivery_id, { ...row, secrets: row.secrets.map(openStoredSecret) }]))
}

/** `<id> <sealed secret>`, as the query joins them. */
function openStoredSecret(joined: string): string {
  const space = joined.indexOf(' ')
  return openSecret('webhook_secrets.secret', joined.slice(0, space), joined.slice(space + 1))
}

type Target = Pick<FeedEvent, 'id' | 'type' | 'occurred_at' | 'case_id' | 'organisation_ids' | 'data'> & {
  delivery_id: string
  status: WebhookDelivery['status']
  endpoint_id: string
  url: string
  enabled: boolean
  /** The secrets that sign for the endpoint now, newest first. */
  secrets: string[]
}

interface Answer {
  status: number | null
  error: string | null
}

/** POSTs the body and reads only the status: the endpoint's answer is never stored or followed. */
function post(url: URL, body: string, headers: Record<string, string>, settings: DeliverySettings): Promise<Answer> {
  const refused = unsafeTargetReason(url, settings.allowPrivateTargets)
  if (refused) return Promise.resolve({ status: null, error: refused })
  const client = url.protocol === 'https:' ? https : http
  const signal = AbortSignal.timeout(settings.timeoutSeconds * 1000)
  return new Promise((resolve) => {
    const request = client.request(
      url,
      {
        method: 'POST',
        headers: {
          ...headers,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'user-agent': 'trm-api-webhooks',
        },
        signal,
        ...(settings.allowPrivateTargets ? {} : { lookup: publicLookup }),
      },
      (response) => {
        response.resume()
        response.on('end', () => resolve({ status: response.statusCode ?? null, error: null }))
        response.on('error', (error) => resolve({ status: response.statusCode ?? null, error: error.message }))
      },
    )
    request.on('error', (error) =>
      resolve({
        status: null,
        error: signal.aborted ? `no answer within ${settings.timeoutSeconds} seconds` : error.message,
      }),
    )
    request.end(body)
  })
}
