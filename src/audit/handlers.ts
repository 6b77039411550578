import type { Kysely } from 'kysely'
import type { Clock } from '../clock.js'
import type { DB } from '../db/schema.js'
import { requireRole } from '../http/authentication.js'
import type { Handlers } from '../http/contract.js'
import type { AuditSigner } from './signing-key.js'
import { verifyAuditTrail } from './verify.js'

/** The verification of the audit chain, for the data protection officer, and the checkpoints' key set. */
export function auditHandlers({
  db,
  clock,
  signer,
}: {
  db: Kysely<DB>
  clock: Clock
  signer: AuditSigner | undefined
}) {
  const keys = signer ? [signer.publicJwk] : []
  return {
    async verifyAuditTrail(request) {
      requireRole(request, 'dpo')
      return verifyAuditTrail(db, keys, clock.now())
    },
    async getAuditSigningKeys() {
      return { keys }
    },
  } satisfies Partial<Handlers>
}
