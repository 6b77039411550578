import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Kysely, Transaction } from 'kysely'
import type { Case, DB } from '../db/schema.js'
import { actingRoles, type Caller, requireRole } from '../http/authentication.js'
import { type Outcome, type Rendered, requiredIfMatch, runMutation, staleVersion } from '../http/mutation.js'
import { caseOfParty, requireLead } from './access.js'

export interface CaseChangeRules {
  /** The change needs `If-Match` with the case's ETag. */
  ifMatch?: boolean
  /** Only the organisation responsible for the person now may make it. */
  lead?: boolean
}

/**
 * Opens every change of a case the same way: an acting role, `If-Match` where the change needs it,
 * one transaction, the case locked (its `Idempotency-Key` claimed in the same statement), its
 * version and lead checked. The change then states only what is its own, and the render reads the
 * resource as the caller may see it.
 */
export async function runCaseChange<T>(
  db: Kysely<DB>,
  request: FastifyRequest<{ Params: { caseId: string } }>,
  reply: FastifyReply,
  rules: CaseChangeRules,
  change: (trx: Transaction<DB>, found: Case, caller: Caller) => Promise<Outcome>,
  render: (trx: Transaction<DB>, resourceId: string, caller: Caller) => Promise<Rendered<T>>,
): Promise<T> {
  const caller = requireRole(request, ...actingRoles)
  const expected = rules.ifMatch ? requiredIfMatch(request) : undefined
  return runMutation(
    db,
    request,
    reply,
    async (trx, claim) => {
      const found = await caseOfParty(trx, caller, request.params.caseId, { lock: true, claim })
      if (expected !== undefined && found.version !== expected) throw staleVersion('case', found.version)
      if (rules.lead) requireLead(found, caller)
      return change(trx, found, caller)
    },
    (trx, resourceId) => render(trx, resourceId, caller),
    { claimInChange: true },
  )
}
