import type { ColumnType, Generated, Insertable, Selectable } from 'kysely'
import type { components } from '../../openapi/dist/types.js'

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>

export type OrganisationKind = components['schemas']['OrganisationKind']
export type Role = components['schemas']['Role']

export interface OrganisationTable {
  id: Generated<string>
  name: string
  country: string
  kind: OrganisationKind
  can_send: boolean
  can_receive: boolean
  created_at: Timestamp
}

export interface PrincipalTable {
  id: Generated<string>
  organisation_id: string
  name: string
  kind: 'staff' | 'system'
  roles: Role[]
  created_at: Timestamp
}

export interface ApiKeyTable {
  id: Generated<string>
  principal_id: string
  prefix: string
  /** SHA-256 of the key's secret part, hex. */
  secret_hash: string
  label: string
  created_at: Timestamp
  expires_at: Date | null
  revoked_at: Date | null
}

export interface SchemaMigrationTable {
  version: number
  name: string
  checksum: string
  applied_at: Timestamp
}

export interface DB {
  organisations: OrganisationTable
  principals: PrincipalTable
  api_keys: ApiKeyTable
  schema_migrations: SchemaMigrationTable
}

export type Organisation = Selectable<OrganisationTable>
export type NewOrganisation = Insertable<OrganisationTable>
export type Principal = Selectable<PrincipalTable>
export type NewPrincipal = Insertable<PrincipalTable>
export type ApiKey = Selectable<ApiKeyTable>
export type NewApiKey = Insertable<ApiKeyTable>
