import { setTimeout as sleep } from 'node:timers/promises'
import type { Kysely } from 'kysely'
import type { DB } from '../db/schema.js'
import { readingRoles, requireRole } from '../http/authentication.js'
import type { Handlers } from '../http/contract.js'
import { decodeCursor, encodeCursor } from '../http/pagination.js'
import { ProblemError } from '../http/problem.js'
import { eventsAfter, type FeedPosition, feedStart, presentEvent } from './outbox.js'

const POLL_INTERVAL_MS = 250
/** RFC 9745: `after`, the feed's earlier name for `cursor`, is deprecated as of 2 December 2026. */
const AFTER_DEPRECATED_AT = '@1796169600'

/** `closing` ends every long poll at once with the page it has, empty: the service is stopping. */
export function eventHandlers(db: Kysely<DB>, closing: AbortSignal) {
  return {
    async listEvents(request, reply) {
      const caller = requireRole(request, ...readingRoles)
      const { cursor, after, limit = 100, wait = 0 } = request.query
      if (after !== undefined) {
        reply.header('deprecation', AFTER_DEPRECATED_AT).header('link', '</docs#/events/listEvents>; rel="deprecation"')
        if (cursor !== undefined && cursor !== after) {
          throw new ProblemError(
            400,
            'Give the position as cursor; after, its earlier name, must not differ from it.',
            {
              code: 'validation',
              extras: { errors: [{ parameter: 'after', detail: 'differs from cursor' }] },
            },
          )
        }
      }
      const given = cursor ?? after
      const position: FeedPosition = given ? cursorPosition(given) : feedStart
      const until = Date.now() + wait * 1000
      let rows = await eventsAfter(db, caller.organisation.id, position, limit + 1)
      while (rows.length === 0 && Date.now() < until && !request.raw.destroyed) {
        await sleep(Math.min(POLL_INTERVAL_MS, until - Date.now()), undefined, { signal: closing }).catch(() => {})
        if (closing.aborted) break
        rows = await eventsAfter(db, caller.organisation.id, position, limit + 1)
      }
      const items = rows.slice(0, limit)
      const last = items.at(-1)
      return {
        items: items.map(presentEvent),
        next_cursor: encodeCursor(last ? [last.txid, last.seq] : [position.txid, position.seq]),
        has_more: rows.length > limit,
      }
    },
  } satisfies Partial<Handlers>
}

function cursorPosition(cursor: string): FeedPosition {
  const [txid, seq] = decodeCursor(cursor, ['integer', 'integer'])
  return { txid, seq }
}
