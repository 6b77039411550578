// Recomputes the audit chain of the configured database (DATABASE_URL, else the embedded one in
// DATA_DIR, which must not be open in a running `npm start`) and names the first record that was
// changed, deleted or inserted out of place. Exits 1 when the trail does not hold.
//
//   npm run audit:verify            a report to read
//   npm run audit:verify -- --json  the same as GET /v1/audit/verification answers
import { auditSigner, resolveAuditSigningKey } from '../src/audit/signing-key.js'
import { verifyAuditTrail } from '../src/audit/verify.js'
import { loadConfig } from '../src/config.js'
import { openDatabase } from '../src/db/database.js'

const config = loadConfig(process.env)
const database = await openDatabase(config)
try {
  const key = await resolveAuditSigningKey(config)
  const keys = key ? [(await auditSigner(key)).publicJwk] : []
  const report = await verifyAuditTrail(database.db, keys, new Date())
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify(report, null, 2))
  } else {
    const failure = report.first_failure
    console.log(report.valid ? 'audit trail: intact' : 'audit trail: BROKEN')
    console.log(
      `sealed: ${report.sealed_batches} batches, ${report.sealed_records} records; not sealed yet: ${report.unsealed_records}`,
    )
    console.log(
      `checkpoints verified: ${report.checkpoints_verified}` +
        (report.checkpoints_unverifiable > 0
          ? `, signed by a key not held here: ${report.checkpoints_unverifiable}`
          : ''),
    )
    if (report.last_checkpoint) {
      const last = report.last_checkpoint
      console.log(
        `last checkpoint: ${last.seq}, batch ${last.batch_seq}, hash ${last.batch_hash}, signed ${last.signed_at}`,
      )
    }
    if (failure) {
      console.log(
        `first failure: ${failure.problem} in batch ${failure.batch_seq}` +
          (failure.record_id ? `, record ${failure.record_id}` : ''),
      )
      console.log(failure.detail)
    }
  }
  if (!report.valid) process.exitCode = 1
} finally {
  await database.close()
}
