import type { FastifyRequest } from 'fastify'
import type { Kysely, Transaction } from 'kysely'
import { appendsOf } from '../db/appends.js'
import { type AuditRecord, type AuditRecordTable, type DB, json, type NewAuditRecord } from '../db/schema.js'
import { callerOf } from '../http/authentication.js'

type Db = Kysely<DB> | Transaction<DB>

export interface AuditEntry {
  caseId: string
  resourceType: AuditRecordTable['resource_type']
  resourceId: string
  details?: Record<string, unknown>
}

/**
 * Records who did what to which resource, in the transaction of the change or read itself (at its
 * end, with the other rows it appends, when it buffers them).
 */
export async function recordAudit(db: Db, request: FastifyRequest, entry: AuditEntry): Promise<void> {
  const row = auditRow(request, entry)
  const appends = appendsOf(db)
  if (appends) appends.audit.push(row)
  else await db.insertInto('audit_records').values(row).execute()
}

/** The record of what the request did to one resource. */
export function auditRow(request: FastifyRequest, entry: AuditEntry): NewAuditRecord {
  const caller = callerOf(request)
  return {
    action: request.routeOptions.config.operationId ?? 'unknown',
    principal_id: caller.principal.id,
    organisation_id: caller.organisation.id,
    request_id: String(request.id),
    case_id: entry.caseId,
    resource_type: entry.resourceType,
    resource_id: entry.resourceId,
    details: json(entry.details ?? {}),
  }
}

/** The audit trail of a case, oldest first; with `organisationId`, only that organisation's own records. */
export async function listCaseAudit(
  db: Db,
  caseId: string,
  after: string | undefined,
  limit: number,
  organisationId?: string,
) {
  let query = db.selectFrom('audit_records').selectAll().where('case_id', '=', caseId)
  if (organisationId !== undefined) query = query.where('organisation_id', '=', organisationId)
  if (after !== undefined) query = query.where('id', '>', after)
  return query
    .orderBy('id')
    .limit(limit + 1)
    .execute()
}

export function presentAuditRecord(row: AuditRecord) {
  return {
    id: String(row.id),
    at: row.at.toISOString(),
    action: row.action,
    principal_id: row.principal_id,
    organisation_id: row.organisation_id,
    request_id: row.request_id,
    case_id: row.case_id,
    resource_type: row.resource_type,
    resource_id: row.resource_id,
    details: row.details,
  }
}
