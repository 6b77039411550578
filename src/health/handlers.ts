import type { Kysely } from 'kysely'
import { type Migration, migrationStatus } from '../db/migrate.js'
import type { DB } from '../db/schema.js'
import type { Handlers } from '../http/contract.js'
import { DATABASE_RETRY_AFTER_SECONDS, ProblemError } from '../http/problem.js'

const retryLater = { 'retry-after': String(DATABASE_RETRY_AFTER_SECONDS) }

export function healthHandlers(db: Kysely<DB>, migrations: Migration[]) {
  return {
    async getLiveness() {
      return { status: 'ok' as const }
    },

    async getReadiness(request) {
      let status: Awaited<ReturnType<typeof migrationStatus>>
      try {
        status = await migrationStatus(db, migrations)
      } catch (error) {
        request.log.warn({ err: error }, 'readiness check failed')
        throw new ProblemError(503, 'The database is not reachable or its migrations do not match this code.', {
          code: 'not-ready',
          headers: retryLater,
        })
      }
      if (status.pending > 0) {
        throw new ProblemError(503, `${status.pending} migration(s) not applied yet.`, {
          code: 'not-ready',
          headers: retryLater,
        })
      }
      return { status: 'ok' as const, database: 'ok' as const, migrations: status }
    },
  } satisfies Partial<Handlers>
}
