import type { Kysely } from 'kysely'
import type { DB } from '../db/schema.js'
import { apiKeyFromParts } from '../http/authentication.js'
import { insertApiKey, insertOrganisation, insertPrincipal } from '../organisations/queries.js'
import { insertAgreement } from '../transfers/queries.js'
import { demoOrganisations, demoTransferAgreements } from './demo-data.js'

/** Seeds the demo data set into an empty database; answers whether it did. */
export async function seedDemoIfEmpty(db: Kysely<DB>): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const existing = await trx.selectFrom('organisations').select('id').limit(1).executeTakeFirst()
    if (existing) return false
    for (const { principals, ...organisation } of demoOrganisations) {
      await insertOrganisation(trx, organisation)
      for (const { key, ...principal } of principals) {
        await insertPrincipal(trx, { ...principal, organisation_id: organisation.id })
        await insertApiKey(trx, principal.id, apiKeyFromParts(key.prefix, key.secret), 'demo key (public)')
      }
    }
    const hubAdmin = demoOrganisations[0]?.principals[0]?.id ?? ''
    for (const agreement of demoTransferAgreements) {
      await insertAgreement(trx, { ...agreement, registered_by_principal_id: hubAdmin })
    }
    return true
  })
}

export async function hasDemoData(db: Kysely<DB>): Promise<boolean> {
  const hub = demoOrganisations[0]?.id ?? ''
  return (await db.selectFrom('organisations').select('id').where('id', '=', hub).executeTakeFirst()) !== undefined
}

/** What to print so that a person can try the service from the Swagger UI. */
export function demoBanner(baseUrl: string): string {
  const lines = [
    '',
    'DEMO DATA: this database holds the demo data set. Its keys are public; never use them for real cases.',
    `Swagger UI: ${baseUrl}/docs  (press Authorize and paste a key)`,
    '',
  ]
  for (const organisation of demoOrganisations) {
    for (const principal of organisation.principals) {
      const key = `trm_${principal.key.prefix}_${principal.key.secret}`
      lines.push(`  ${key}  ${organisation.name}: ${principal.name} [${principal.roles.join(', ')}]`)
    }
  }
  return `${lines.join('\n')}\n`
}
