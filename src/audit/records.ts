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

/** Who did something, as an audit record names them: what they did, who and where they are, and the request or run. */
export interface AuditActor {
  action: string
  principalId: string
  organisationId: string
  requestId: string
}

/** The request's caller, as its audit records name them. */
export function requestActor(request: FastifyRequest): AuditActor {
  const caller = callerOf(request)
  return {
    action: request.routeOptions.config.operationId ?? 'unknown',
    principalId: caller.principal.id,
    organisationId: caller.organisation.id,
    requestId: String(request.id),
  }
}

/** The record of what the request did to one resource. */
export function auditRow(request: FastifyRequest, entry: AuditEntry): NewAuditRecord {
  return rowOf(entry, requestActor(request))
}

/** Who acted when no one asked: a job of the service, as the system principal it acts as. */
export interface SystemActor {
  /** What the job did, as an operation is named by its operationId. */
  action: string
  principalId: string
  organisationId: string
  /** The run of the job, in place of a request id. */
  runId: string
}

/** Records what a job of the service did, in the transaction of the change itself. */
export async function recordSystemAudit(db: Db, actor: SystemActor, entry: AuditEntry): Promise<void> {
  await db
    .insertInto('audit_records')
    .values(rowOf(entry, { ...actor, requestId: actor.runId }))
    .execute()
}

function rowOf(entry: AuditEntry, who: AuditActor): NewAuditRecord {
  return {
    action: who.action,
    principal_id: who.principalId,
    organisation_id: who.organisationId,
    request_id: who.requestId,
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
