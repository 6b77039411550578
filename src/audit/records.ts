import type { FastifyRequest } from 'fastify'
import type { Kysely, Transaction } from 'kysely'
import { type AuditRecord, type AuditRecordTable, type DB, json } from '../db/schema.js'
import { callerOf } from '../http/authentication.js'

type Db = Kysely<DB> | Transaction<DB>

export interface AuditEntry {
  caseId: string
  resourceType: AuditRecordTable['resource_type']
  resourceId: string
  details?: Record<string, unknown>
}

/** Records who did what to which resource, in the transaction of the change or read itself. */
export async function recordAudit(db: Db, request: FastifyRequest, entry: AuditEntry): Promise<void> {
  const caller = callerOf(request)
  await insertAudit(db, entry, {
    action: request.routeOptions.config.operationId ?? 'unknown',
    principalId: caller.principal.id,
    organisationId: caller.organisation.id,
    requestId: String(request.id),
  })
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
  await insertAudit(db, entry, { ...actor, requestId: actor.runId })
}

async function insertAudit(
  db: Db,
  entry: AuditEntry,
  who: { action: string; principalId: string; organisationId: string; requestId: string },
): Promise<void> {
  await db
    .insertInto('audit_records')
    .values({
      action: who.action,
      principal_id: who.principalId,
      organisation_id: who.organisationId,
      request_id: who.requestId,
      case_id: entry.caseId,
      resource_type: entry.resourceType,
      resource_id: entry.resourceId,
      details: json(entry.details ?? {}),
    })
    .execute()
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
