// Which seeded cases each part of the benchmark uses, and the requests it sends: the samples the
// SQL is captured from, the cases the data checks read, and the request factories of the load runs.
import { randomUUID } from 'node:crypto'
import { demoOrganisationIds } from '../../src/demo/demo-data.js'
import { encodeCursor } from '../../src/http/pagination.js'
import type { CaptureRequest } from './capture.js'
import { caseId, iomPolandKey, iomUkraineKey, receiverOf, receiverSlots, senderOf, stepOf } from './dataset.js'
import type { RequestFactory } from './load.js'

export interface CasePlan {
  /** The case whose read is captured. */
  readSample: number
  /** The case whose packet send is captured. */
  packetSample: number
  /** One case of IOM Poland per receiving partner and step, read through the service to check the data set. */
  checked: number[]
  /** IOM Poland's other cases in a fixed random order, for the case reads. */
  reads: number[]
  /** Disjoint halves of those cases for the packet sends, so that every packet sent is its case's second. */
  packets: { service: number[]; baseline: number[] }
}

/** A small deterministic generator, so that two runs on the same data set send the same requests. */
export function shuffled<T>(items: T[], seed: number): T[] {
  let state = seed >>> 0
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
  const copy = [...items]
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[copy[i], copy[j]] = [copy[j] as T, copy[i] as T]
  }
  return copy
}

function rotating<T>(items: T[]): () => T {
  let index = 0
  return () => items[index++ % items.length] as T
}

/** Plans over IOM Poland's cases, leaving out those an earlier run on the schema sent again (`touched` ids). */
export function planCases(cases: number, touched: Set<string>): CasePlan {
  const own: number[] = []
  for (let n = 1; n <= cases; n++) {
    if (senderOf(n).organisationId !== demoOrganisationIds.iomPoland) continue
    if (touched.size > 0 && touched.has(caseId(n))) continue
    own.push(n)
  }
  // An enquiry goes out once, from return_decided: the packet load takes only cases waiting there.
  const waiting = own.filter((n) => stepOf(n) === 'return_decided')
  const readSample = own[0]
  const packetSample = waiting[0]
  if (readSample === undefined || packetSample === undefined) throw new Error('too few cases of IOM Poland')
  const checked: number[] = []
  const shapes = new Set<string>()
  for (const n of own.filter((m) => m !== readSample && m !== packetSample)) {
    const shape = `${receiverOf(n).organisationId} ${stepOf(n)}`
    if (shapes.has(shape)) continue
    shapes.add(shape)
    checked.push(n)
    if (checked.length === receiverSlots.length * 2) break
  }
  const reserved = new Set([readSample, packetSample, ...checked])
  const rest = own.filter((n) => !reserved.has(n))
  const packets = shuffled(
    rest.filter((n) => stepOf(n) === 'return_decided'),
    2,
  )
  return {
    readSample,
    packetSample,
    checked,
    reads: shuffled(rest, 1),
    packets: {
      service: packets.filter((_, index) => index % 2 === 0),
      baseline: packets.filter((_, index) => index % 2 === 1),
    },
  }
}

export function decodeFeedCursor(cursor: string): { txid: string; seq: string } {
  const [txid, seq] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string]
  return { txid, seq }
}

const polandHeaders = { authorization: `Bearer ${iomPolandKey}` }
const ukraineHeaders = { authorization: `Bearer ${iomUkraineKey}` }

/**
 * One request of each kind for the capture, with the values of its own that the baseline replaces
 * per request. `listCasesPage` (a page after a cursor) is captured only to time its query.
 */
export function captureRequests(plan: CasePlan, cases: number, feedCursor: string): Record<string, CaptureRequest> {
  // Fresh per run: a kept schema remembers the keys of earlier runs.
  const key = `bench-capture-send-packet-${randomUUID()}`
  const recipientId = receiverOf(plan.packetSample).organisationId
  return {
    getCase: {
      method: 'GET',
      url: `/v1/cases/${caseId(plan.readSample)}`,
      headers: { ...polandHeaders, 'x-request-id': 'bench-capture-get-case' },
      seeds: { caseId: caseId(plan.readSample), requestId: 'bench-capture-get-case' },
    },
    listCases: { method: 'GET', url: '/v1/cases?limit=50', headers: polandHeaders, seeds: {} },
    listCasesPage: {
      method: 'GET',
      url: `/v1/cases?limit=50&cursor=${encodeCursor([listSampleSeq(cases)])}`,
      headers: polandHeaders,
      seeds: {},
    },
    sendPacket: {
      method: 'POST',
      url: `/v1/cases/${caseId(plan.packetSample)}/packets`,
      headers: {
        ...polandHeaders,
        'content-type': 'application/json',
        'idempotency-key': key,
        'x-request-id': 'bench-capture-send-packet-request',
      },
      payload: { recipient_organisation_id: recipientId, purpose: 'return_assistance' },
      seeds: {
        caseId: caseId(plan.packetSample),
        recipientId,
        idempotencyKey: key,
        requestId: 'bench-capture-send-packet-request',
      },
    },
    listEvents: {
      method: 'GET',
      url: `/v1/events?limit=50&after=${feedCursor}`,
      headers: ukraineHeaders,
      seeds: decodeFeedCursor(feedCursor),
    },
  }
}

/** The cursor of the captured page of cases: the middle of the seeded cases. */
export function listSampleSeq(cases: number): string {
  return String(Math.floor(cases / 2))
}

export interface Operation {
  name: string
  service: RequestFactory
  baseline: RequestFactory
}

function packetSends(order: number[]): RequestFactory {
  let index = 0
  const next: RequestFactory = () => {
    const n = order[index++]
    if (n === undefined) return undefined
    return {
      method: 'POST',
      path: `/v1/cases/${caseId(n)}/packets`,
      headers: { ...polandHeaders, 'content-type': 'application/json', 'idempotency-key': `bench-${randomUUID()}` },
      body: JSON.stringify({ recipient_organisation_id: receiverOf(n).organisationId, purpose: 'return_assistance' }),
    }
  }
  next.remaining = () => Math.max(0, order.length - index)
  return next
}

/** The four loads; the service and the baseline get the same requests, except for the packets' cases. */
export function operations(plan: CasePlan, feedCursors: string[]): Operation[] {
  const nextRead = rotating(plan.reads)
  const nextCursor = rotating(feedCursors)
  const read: RequestFactory = () => ({
    method: 'GET',
    path: `/v1/cases/${caseId(nextRead())}`,
    headers: polandHeaders,
  })
  const list: RequestFactory = () => ({ method: 'GET', path: '/v1/cases?limit=50', headers: polandHeaders })
  const feed: RequestFactory = () => ({
    method: 'GET',
    path: `/v1/events?limit=50&after=${nextCursor()}`,
    headers: ukraineHeaders,
  })
  return [
    { name: 'case read GET /v1/cases/{id}', service: read, baseline: read },
    { name: 'list GET /v1/cases?limit=50', service: list, baseline: list },
    {
      name: 'packet POST /v1/cases/{id}/packets',
      service: packetSends(plan.packets.service),
      baseline: packetSends(plan.packets.baseline),
    },
    { name: 'feed GET /v1/events?limit=50&after=…', service: feed, baseline: feed },
  ]
}
