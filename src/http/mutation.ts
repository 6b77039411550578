import { createHash } from 'node:crypto'
import canonicalize from 'canonicalize'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Kysely, Transaction } from 'kysely'
import { type DB, json } from '../db/schema.js'
import { callerOf } from './authentication.js'
import { ProblemError } from './problem.js'

/** What a change answers: its status, body and any headers (Location, ETag). */
export interface Outcome<T> {
  status: number
  body: T
  headers?: Record<string, string>
}

const KEY_PATTERN = /^[\x21-\x7e]{1,200}$/
const KEY_RETENTION_MS = 24 * 60 * 60 * 1000

/**
 * Runs a change in one transaction. With an `Idempotency-Key`, the key is claimed in that same
 * transaction: a concurrent duplicate waits on the claim and then replays the stored outcome, so
 * duplicates produce one effect; the same key with another request is a 422.
 */
export async function runMutation<T>(
  db: Kysely<DB>,
  request: FastifyRequest,
  reply: FastifyReply,
  change: (trx: Transaction<DB>) => Promise<Outcome<T>>,
): Promise<T> {
  const key = request.headers['idempotency-key']
  if (key === undefined) return send(reply, await db.transaction().execute(change), false)
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
  const { outcome, replayed } = await db.transaction().execute(async (trx) => {
    // A key older than its retention is free again: the conflict update claims it anew.
    const claimed = await trx
      .insertInto('idempotency_keys')
      .values({ organisation_id: organisationId, key, operation_id: operationId, fingerprint })
      .onConflict((conflict) =>
        conflict
          .columns(['organisation_id', 'key'])
          .doUpdateSet({
            operation_id: operationId,
            fingerprint,
            status_code: null,
            headers: null,
            body: null,
            created_at: new Date(),
          })
          .where('idempotency_keys.created_at', '<', new Date(Date.now() - KEY_RETENTION_MS)),
      )
      .returning('key')
      .executeTakeFirst()
    if (!claimed) {
      const stored = await trx
        .selectFrom('idempotency_keys')
        .selectAll()
        .where('organisation_id', '=', organisationId)
        .where('key', '=', key)
        .executeTakeFirstOrThrow()
      if (stored.fingerprint !== fingerprint || stored.status_code === null) {
        throw new ProblemError(422, 'This Idempotency-Key was used for a different request; use a new key.', {
          code: 'idempotency-key-reused',
        })
      }
      return {
        outcome: { status: stored.status_code, body: stored.body as T, headers: stored.headers ?? {} },
        replayed: true,
      }
    }
    const outcome = await change(trx)
    await trx
      .updateTable('idempotency_keys')
      .set({ status_code: outcome.status, headers: json(outcome.headers ?? {}), body: json(outcome.body) })
      .where('organisation_id', '=', organisationId)
      .where('key', '=', key)
      .execute()
    return { outcome, replayed: false }
  })
  return send(reply, outcome, replayed)
}

function send<T>(reply: FastifyReply, outcome: Outcome<T>, replayed: boolean): T {
  reply.code(outcome.status).headers(outcome.headers ?? {})
  if (replayed) reply.header('idempotent-replayed', 'true')
  return outcome.body
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
  if (!match)
    throw new ProblemError(412, 'If-Match does not name a version of this resource.', { code: 'stale-version' })
  return Number(match[1])
}

export function staleVersion(what: string, currentVersion: number): ProblemError {
  return new ProblemError(412, `The ${what} changed since you read it: its ETag is now ${etag(currentVersion)}.`, {
    code: 'stale-version',
    extras: { current_etag: etag(currentVersion) },
  })
}
