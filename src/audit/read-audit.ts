import type { FastifyRequest } from 'fastify'
import type { Kysely } from 'kysely'
import type { DB, NewAuditRecord } from '../db/schema.js'
import { type AuditEntry, auditRow } from './records.js'

/** Reads whose records one insert carries at most. */
const RECORDS_PER_INSERT = 500

interface Waiting {
  row: NewAuditRecord
  done: (error?: unknown) => void
}

/**
 * The audit records of reads, committed in groups: a read's record is durable before its answer
 * leaves, but the reads that come while one insert commits share the next insert and its commit,
 * so that a busy service does not pay one commit per read. One insert is in flight at a time; its
 * round trip is the window in which the next group gathers, and the first insert waits for the
 * reads served in the same turn of the event loop (the embedded database runs a statement in this
 * thread: without that wait, no other read would arrive before it). Changes write their record in
 * their own transaction (`recordAudit`), never here.
 */
export class ReadAudit {
  readonly #db: Kysely<DB>
  #waiting: Waiting[] = []
  #flushing = false
  /** Inserts made, and records they carried: the ratio is the group size. */
  inserts = 0
  records = 0

  constructor(db: Kysely<DB>) {
    this.#db = db
  }

  /** Resolves once the record of this read is committed. */
  record(request: FastifyRequest, entry: AuditEntry): Promise<void> {
    const row = auditRow(request, entry)
    return new Promise((resolve, reject) => {
      this.#waiting.push({ row, done: (error) => (error === undefined ? resolve() : reject(error)) })
      if (this.#flushing) return
      this.#flushing = true
      // The reads this turn of the event loop serves come first, and share the insert.
      setImmediate(() => void this.#flush())
    })
  }

  async #flush(): Promise<void> {
    try {
      while (this.#waiting.length > 0) {
        const group = this.#waiting.splice(0, RECORDS_PER_INSERT)
        try {
          await this.#db
            .insertInto('audit_records')
            .values(group.map((waiting) => waiting.row))
            .execute()
          this.inserts += 1
          this.records += group.length
          for (const waiting of group) waiting.done()
        } catch (error) {
          for (const waiting of group) waiting.done(error)
        }
      }
    } finally {
      this.#flushing = false
    }
  }
}
