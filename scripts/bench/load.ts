// Loads one server with autocannon at a fixed number of connections for a fixed time, each request
// built fresh by the operation (another case, another cursor, another idempotency key).
import autocannon from 'autocannon'
import { sampleMemory } from './processes.js'

export interface LoadRequest {
  method: 'GET' | 'POST'
  path: string
  headers: Record<string, string>
  body?: string
}

/**
 * Builds the next request, or answers undefined when the operation has run out of fresh cases; one
 * that can run out says how many requests it has left.
 */
export type RequestFactory = (() => LoadRequest | undefined) & { remaining?: () => number }

export interface LoadResult {
  requestsPerSecond: number
  p50: number
  p99: number
  requests: number
  errors: number
  non2xx: number
  peakRss: number
  seconds: number
  /** The operation ran out of fresh cases before its time was up. */
  exhausted: boolean
}

export interface LoadOptions {
  url: string
  pid: number
  connections: number
  seconds: number
  next: RequestFactory
  /** What to send, until the run has stopped, once `next` has run out: a cheap path that changes nothing. */
  idlePath: string
  /** Send exactly this many requests instead of running for `seconds`: for a factory about to run out. */
  amount?: number
}

const emptyResult = { requestsPerSecond: 0, p50: 0, p99: 0, requests: 0, errors: 0, non2xx: 0, peakRss: 0 }

export async function load({
  url,
  pid,
  connections,
  seconds,
  next,
  idlePath,
  amount,
}: LoadOptions): Promise<LoadResult> {
  let exhausted = false
  let first = next()
  if (!first) return { ...emptyResult, seconds, exhausted: true }
  let instance: autocannon.Instance | undefined
  const memory = sampleMemory(pid)
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon(
      {
        url,
        connections,
        ...(amount === undefined ? { duration: seconds } : { amount }),
        requests: [
          {
            setupRequest: (request) => {
              const built = first ?? next()
              first = undefined
              if (!built) {
                // A repeated case would not be a fresh one (and would collide in the baseline): stop instead.
                if (!exhausted) {
                  exhausted = true
                  setImmediate(() => instance?.stop())
                }
                return { ...request, method: 'GET', path: idlePath, headers: {}, body: undefined }
              }
              return { ...request, ...built }
            },
          },
        ],
      },
      (error, outcome) => (error ? reject(error) : resolve(outcome)),
    )
  })
  const peakRss = memory.stop()
  const elapsed = result.duration > 0 ? result.duration : seconds
  return {
    requestsPerSecond: result.requests.total / elapsed,
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result.requests.total,
    errors: result.errors,
    non2xx: result.non2xx,
    peakRss,
    seconds: elapsed,
    exhausted,
  }
}
