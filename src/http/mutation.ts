import { createHash } from 'node:crypto'
import canonicalize from 'canonicalize'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Kysely, Transaction } from 'kysely'
import { bufferAppends, flushAppends, writeAtEnd } from '../db/appends.js'
import { compiledOnce, type Slot } from '../db/compiled.js'
import type { DB } from '../db/schema.js'
import { callerOf } from './authentication.js'
import { ProblemError } from './problem.js'

/** What a change did: its status, the resource it created or changed, and where that resource lives. */
export interface Outcome {
  status: number
  resourceId: string
  location?: string
}

/** A resource as the caller may see it now, and its ETag if it is versioned. */
export interface Rendered<T> {
  body: T
  etag?: string
}

const KEY_PATTERN = /^[\x21-\x7e]{1,200}$/
const KEY_RETENTION_MS = 24 * 60 * 60 * 1000

/**
 * The claim of a request's `Idempotency-Key`, for the change's first statement (the read that locks
 * what it changes) to carry as a `with` part named `key_claim` (`claimKey`, with `values` for its
 * slots), so that claiming costs no round trip of its own. The part answers the key if this
 * request claimed it; the carrying statement then reports what it found (`settle`): a key already
 * taken ends the change, and the first outcome is answered instead.
 */
export interface KeyClaim {
  values: ClaimValues
  settle(claimed: boolean): void
}

/** The values of `claimKey`'s slots. */
interface ClaimValues {
  [slot: string]: unknown
  key_organisation_id: string
  key: string
  key_operation_id: string
  key_fingerprint: string
  key_claimed_at: Date
  key_expired_before: Date
}

/**
 * Claims an `Idempotency-Key` and answers it if this request claimed it: a key older than its
 * retention is free again, and the conflict update claims it anew. Built with slots (`compiledOnce`).
 */
export function claimKey(db: Kysely<DB> | Transaction<DB>, slot: Slot) {
  return db
    .insertInto('idempotency_keys')
    .values({
      organisation_id: slot('key_organisation_id'),
      key: slot('key'),
      operation_id: slot('key_operation_id'),
      fingerprint: slot('key_fingerprint'),
    })
    .onConflict((conflict) =>
      conflict
        .columns(['organisation_id', 'key'])
        .doUpdateSet({
          operation_id: slot('key_operation_id'),
          fingerprint: slot('key_fingerprint'),
          status_code: null,
          resource_id: null,
          location: null,
          created_at: slot<Date>('key_claimed_at'),
        })
        .where('idempotency_keys.created_at', '<', slot<Date>('key_expired_before')),
    )
    .returning('key')
}

const claimKeyAlone = compiledOnce(claimKey)

/** Ends a change whose key another request claimed first. */
class KeyTaken extends Error {}

/**
 * Runs a change in one transaction, then renders the resource it touched. With an
 * `Idempotency-Key`, the key is claimed in that same transaction: a concurrent duplicate waits on
 * the claim, then answers with the first outcome's status and location and the resource as it is
 * now; the same key with another request is a 422. Only outcomes are stored, never bodies. The
 * events, audit records and timeline entries the change appends, and the key's outcome, are
 * written together, in one statement, when it is done. With `claimInChange`, the change carries
 * the claim in its first statement (`KeyClaim`); else it is claimed in a statement of its own first.
 */
export async function runMutation<T>(
  db: Kysely<DB>,
  request: FastifyRequest,
  reply: FastifyReply,
  change: (trx: Transaction<DB>, claim?: KeyClaim) => Promise<Outcome>,
  render: (trx: Transaction<DB>, resourceId: string) => Promise<Rendered<T>>,
  options: { claimInChange?: boolean } = {},
): Promise<T> {
  const key = request.headers['idempotency-key']
  if (key === undefined) {
    return db.transaction().execute(async (trx) => {
      bufferAppends(trx)
      const outcome = await change(trx)
      await flushAppends(trx)
      return send(reply, outcome, await render(trx, outcome.resourceId), false)
    })
  }
  if (typeof key !== 'string' || !KEY_PATTERN.test(key)) {
    throw new ProblemError(400, 'Idempotency-Key must be 1 to 200 visible ASCII characters.', {
      code: 'validation',
      extras: { errors: [{ parameter: 'Idempotency-Key', detail: 'is not a valid key' }] },
    })
  }
  const organisationId = callerOf(request).organisation.id
  const operationId = request.routeOptions.config.operationId ?? request.routeOptions.url ?? ''
  const fingerprint = createHash('sha256')
    .update(`${request.method} ${request.url}\n${canonicalize(request.body ?? null)}`)
    .digest('hex')
  return db.transaction().execute(async (trx) => {
    bufferAppends(trx)
    const now = Date.now()
    const values: ClaimValues = {
      key_organisation_id: organisationId,
      key,
      key_operation_id: operationId,
      key_fingerprint: fingerprint,
      key_claimed_at: new Date(now),
      key_expired_before: new Date(now - KEY_RETENTION_MS),
    }
    let outcome: Outcome
    if (options.claimInChange) {
      let settled = false
      const claim: KeyClaim = {
        values,
        settle(claimed) {
          settled = true
          if (!claimed) throw new KeyTaken()
        },
      }
      try {
        outcome = await change(trx, claim)
      } catch (error) {
        if (error instanceof KeyTaken) return replay(trx)
        throw error
      }
      if (!settled) throw new Error(`${operationId} did not carry its Idempotency-Key claim`)
    } else {
      if ((await claimKeyAlone(trx, values)).length === 0) return replay(trx)
      outcome = await change(trx)
    }
    await writeAtEnd(
      trx,
      trx
        .updateTable('idempotency_keys')
        .set({ status_code: outcome.status, resource_id: outcome.resourceId, location: outcome.location ?? null })
        .where('organisation_id', '=', organisationId)
        .where('key', '=', key),
    )
    await flushAppends(trx)
    return send(reply, outcome, await render(trx, outcome.resourceId), false)
  })

  /** The first outcome of the key, with the resource as it is now; a 422 if the key named another request. */
  async function replay(trx: Transaction<DB>): Promise<T> {
    const stored = await trx
      .selectFrom('idempotency_keys')
      .selectAll()
      .where('organisation_id', '=', organisationId)
      .where('key', '=', key as string)
      .executeTakeFirstOrThrow()
    if (stored.fingerprint !== fingerprint || stored.status_code === null || stored.resource_id === null) {
      throw new ProblemError(422, 'This Idempotency-Key was used for a different request; use a new key.', {
        code: 'idempotency-key-reused',
      })
    }
    const outcome = {
      status: stored.status_code,
      resourceId: stored.resource_id,
      ...(stored.location ? { location: stored.location } : {}),
    }
    return send(reply, outcome, await render(trx, stored.resource_id), true)
  }
}

/**
 * A change made in one statement, which needs no transaction of its own: without an
 * `Idempotency-Key` it runs outside one, so that it costs that statement alone; with a key, it runs
 * in `runMutation`'s transaction beside the key's claim and outcome. `change` and `render` take
 * the database or that transaction alike.
 */
export async function runStatementMutation<T>(
  db: Kysely<DB>,
  request: FastifyRequest,
  reply: FastifyReply,
  change: (db: Kysely<DB> | Transaction<DB>) => Promise<Outcome>,
  render: (db: Kysely<DB> | Transaction<DB>, resourceId: string) => Promise<Rendered<T>>,
): Promise<T> {
  if (request.headers['idempotency-key'] !== undefined) return runMutation(db, request, reply, change, render)
  const outcome = await change(db)
  return send(reply, outcome, await render(db, outcome.resourceId), false)
}

function send<T>(reply: FastifyReply, outcome: Outcome, rendered: Rendered<T>, replayed: boolean): T {
  reply.code(outcome.status)
  if (outcome.location) reply.header('location', outcome.location)
  if (rendered.etag) reply.header('etag', rendered.etag)
  if (replayed) reply.header('idempotent-replayed', 'true')
  return rendered.body
}

/** The ETag of a resource at a version. */
export function etag(version: number): string {
  return `"${version}"`
}

/** The version named by `If-Match`: 428 without one, 412 for one that is not a version we issued. */
export function requiredIfMatch(request: FastifyRequest): number {
  const header = request.headers['if-match']
  if (header === undefined) {
    throw new ProblemError(428, 'Send If-Match with the ETag you last read.', { code: 'if-match-required' })
  }
  const match = /^"(\d{1,9})"$/.exec(String(header).trim())
  if (!match) {
    throw new ProblemError(
      412,
      'If-Match must be the ETag you read, quotes included, e.g. If-Match: "3" (the ETag header of a GET, or the etag field of the resource in a list).',
      { code: 'stale-version' },
    )
  }
  return Number(match[1])
}

export function staleVersion(what: string, currentVersion: number): ProblemError {
  return new ProblemError(412, `The ${what} changed since you read it: its ETag is now ${etag(currentVersion)}.`, {
    code: 'stale-version',
    extras: { current_etag: etag(currentVersion) },
  })
}
