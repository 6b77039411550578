// The seven hot operations and the requests the bench sends for each: the service and the minimal
// implementation get the same kinds of request, a change each on cases of its own.
import { randomUUID } from 'node:crypto'
import { demoOrganisationIds } from '../../src/demo/demo-data.js'
import { caseId, iomPolandKey, iomUkraineKey, keyOf, packetId, receiverOf, senderOf } from './dataset.js'
import type { LoadRequest, RequestFactory } from './load.js'

export const operationNames = ['read', 'list', 'send', 'transition', 'firstRead', 'feed', 'inbox'] as const
export type OperationName = (typeof operationNames)[number]

export const operationTitles: Record<OperationName, string> = {
  read: 'case read GET /v1/cases/{id}',
  list: 'list GET /v1/cases?limit=50',
  send: 'packet send POST /v1/cases/{id}/packets',
  transition: 'transition POST /v1/cases/{id}/transitions',
  firstRead: 'packet first read GET /v1/packets/{id}',
  feed: 'feed GET /v1/events?limit=50',
  inbox: 'inbox GET /v1/packets?direction=inbound',
}

/** The operations that change what they act on: each request needs a case (or packet) of its own. */
export const consuming: ReadonlySet<OperationName> = new Set(['send', 'transition', 'firstRead'])

const poland = { authorization: `Bearer ${iomPolandKey}` }
const ukraine = { authorization: `Bearer ${iomUkraineKey}` }
const json = { 'content-type': 'application/json' }

/** A hold until a day well after every seeded deadline, so the case stays where the bench put it. */
const hold = { action: 'put_on_hold', reason: 'Benchmark: waiting for travel documents.', review_date: '2027-06-30' }

/**
 * One request of an operation: `n` is the seeded case (or packet) it acts on, where it acts on one;
 * `cursor` a place in the feed.
 */
export function requestOf(
  operation: OperationName,
  n: number,
  cursor: string,
  extra: Record<string, string> = {},
): LoadRequest {
  switch (operation) {
    case 'read':
      return { method: 'GET', path: `/v1/cases/${caseId(n)}`, headers: { ...poland, ...extra } }
    case 'list':
      return { method: 'GET', path: '/v1/cases?limit=50', headers: { ...poland, ...extra } }
    case 'send':
      return {
        method: 'POST',
        path: `/v1/cases/${caseId(n)}/packets`,
        headers: {
          authorization: `Bearer ${keyOf(senderOf(n))}`,
          ...json,
          'idempotency-key': `bench-${randomUUID()}`,
          ...extra,
        },
        body: JSON.stringify({ recipient_organisation_id: receiverOf(n).organisationId, purpose: 'return_assistance' }),
      }
    case 'transition':
      // Seeded cases that took send_referral are at version 4 (scripts/bench/seed.ts).
      return {
        method: 'POST',
        path: `/v1/cases/${caseId(n)}/transitions`,
        headers: { authorization: `Bearer ${keyOf(senderOf(n))}`, ...json, 'if-match': '"4"', ...extra },
        body: JSON.stringify(hold),
      }
    case 'firstRead':
      return {
        method: 'GET',
        path: `/v1/packets/${packetId(n)}`,
        headers: { authorization: `Bearer ${keyOf(receiverOf(n))}`, ...extra },
      }
    case 'feed':
      return { method: 'GET', path: `/v1/events?limit=50&cursor=${cursor}`, headers: { ...ukraine, ...extra } }
    case 'inbox':
      return { method: 'GET', path: '/v1/packets?direction=inbound&limit=50', headers: { ...ukraine, ...extra } }
  }
}

/**
 * Which seeded cases an operation may act on (scripts/bench/seed.ts): IOM Poland's cases to read;
 * a third of all waiting to send their enquiry, a third with their enquiry unread by its
 * recipient, a third to put on hold, each by the partner who acts on it.
 */
export function eligible(operation: OperationName, n: number): boolean {
  switch (operation) {
    case 'read':
      return senderOf(n).organisationId === demoOrganisationIds.iomPoland
    case 'send':
      return n % 3 === 0
    case 'firstRead':
      return n % 3 === 1
    case 'transition':
      return n % 3 === 2
    default:
      return true
  }
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

/** The requests of one operation for one implementation: reads rotate over their cases and cursors; a change takes each of its cases once. */
export function factory(operation: OperationName, cases: number[], cursors: string[]): RequestFactory {
  let index = 0
  const next: RequestFactory = () => {
    const at = index++
    if (consuming.has(operation)) {
      const n = cases[at]
      return n === undefined ? undefined : requestOf(operation, n, '')
    }
    return requestOf(operation, cases[at % cases.length] ?? 1, cursors[at % cursors.length] ?? '')
  }
  return next
}
