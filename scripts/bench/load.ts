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

/** Builds the next request, or answers undefined when the operation has run out of fresh cases. */
export type RequestFactory = () => LoadRequest | undefined

export interface LoadResult {
  requestsPerSecond: number
  p50: number
  p95: number
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
  /** The most requests to send: a change has only so many fresh cases. The run ends at whichever comes first. */
  amount?: number
}

const emptyResult = { requestsPerSecond: 0, p50: 0, p95: 0, p99: 0, requests: 0, errors: 0, non2xx: 0, peakRss: 0 }

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0

export async function load({ url, pid, connections, seconds, next, amount }: LoadOptions): Promise<LoadResult> {
  if (amount === 0) return { ...emptyResult, seconds: 0, exhausted: true }
  const memory = sampleMemory(pid)
  // autocannon's summary has no 95th percentile: every response time is kept instead.
  const latencies: number[] = []
  const started = performance.now()
  // autocannon ends a run on its one-second tick: the time of the last response is the run's end.
  let last = started
  let timer: NodeJS.Timeout | undefined
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        connections,
        ...(amount === undefined ? { duration: seconds } : { amount }),
        requests: [
          {
            setupRequest: (request) => {
              const built = next()
              if (!built) throw new Error('the operation ran out of requests before its amount')
              return { ...request, ...built }
            },
          },
        ],
      },
      (error, outcome) => (error ? reject(error) : resolve(outcome)),
    )
    instance.on('response', (_client, _status, _bytes, responseTime) => {
      latencies.push(responseTime)
      last = performance.now()
    })
    if (amount !== undefined) timer = setTimeout(() => instance.stop(), seconds * 1000)
  })
  clearTimeout(timer)
  const elapsed = (last - started) / 1000
  const peakRss = memory.stop()
  latencies.sort((a, b) => a - b)
  return {
    requestsPerSecond: result.requests.total / elapsed,
    p50: percentile(latencies, 0.5),
    p95: percentile(latencies, 0.95),
    p99: percentile(latencies, 0.99),
    requests: result.requests.total,
    errors: result.errors,
    non2xx: result.non2xx,
    peakRss,
    seconds: elapsed,
    exhausted: amount !== undefined && result.requests.total >= amount,
  }
}
