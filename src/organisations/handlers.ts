import type { Kysely } from 'kysely'
import type { components } from '../../openapi/dist/types.js'
import type { Clock } from '../clock.js'
import type { ApiKey, DB, Organisation, Principal } from '../db/schema.js'
import { type CredentialCache, callerOf, generateApiKey, requireHubAdmin } from '../http/authentication.js'
import type { Handlers } from '../http/contract.js'
import { decodeCursor, toPage } from '../http/pagination.js'
import { notFound, ProblemError } from '../http/problem.js'
import { isTimeZone } from '../sops/deadline.js'
import { countryStanding } from '../transfers/countries.js'
import * as queries from './queries.js'
import { defaultTimeZone } from './time-zones.js'

type Schemas = components['schemas']

export function organisationHandlers(db: Kysely<DB>, clock: Clock, credentials: Pick<CredentialCache, 'forget'>) {
  const present = (row: Organisation) => presentOrganisation(row, clock.now())
  return {
    async getMe(request) {
      const caller = callerOf(request)
      return {
        principal: presentPrincipal(caller.principal),
        organisation: present(caller.organisation),
        api_key: caller.apiKey,
      }
    },

    async listOrganisations(request) {
      callerOf(request)
      const { limit = 50, cursor, country, kind, side } = request.query
      const after = cursor ? decodeCursor(cursor, ['text', 'uuid']) : undefined
      const rows = await queries.listOrganisations(db, { country, kind, side, after, limit })
      return toPage(rows, limit, present, (row) => [row.name, row.id])
    },

    async createOrganisation(request, reply) {
      requireHubAdmin(request)
      const { country, time_zone } = request.body
      if (time_zone !== undefined && !isTimeZone(time_zone)) {
        throw new ProblemError(422, `${time_zone} is not a time zone of the IANA database (e.g. Europe/Warsaw).`, {
          code: 'invalid-time-zone',
          extras: { errors: [{ pointer: '#/time_zone', detail: 'must name an IANA time zone' }] },
        })
      }
      if (time_zone === undefined && defaultTimeZone(country) === undefined) {
        throw new ProblemError(
          422,
          `There is no default time zone for ${country}: name the organisation's time_zone.`,
          {
            code: 'time-zone-required',
            extras: { errors: [{ pointer: '#/time_zone', detail: `is needed for an organisation in ${country}` }] },
          },
        )
      }
      const organisation = await queries.insertOrganisation(db, request.body)
      reply.code(201).header('location', `/v1/organisations/${organisation.id}`)
      return present(organisation)
    },

    async getOrganisation(request) {
      callerOf(request)
      const organisation = await queries.findOrganisation(db, request.params.organisationId)
      if (!organisation) throw notFound('organisation', request.params.organisationId)
      return present(organisation)
    },

    async listPrincipals(request) {
      requireHubAdmin(request)
      const { organisationId } = request.params
      if (!(await queries.findOrganisation(db, organisationId))) throw notFound('organisation', organisationId)
      const { limit = 50, cursor } = request.query
      const after = cursor ? decodeCursor(cursor, ['text', 'uuid']) : undefined
      const rows = await queries.listPrincipals(db, organisationId, after, limit)
      return toPage(rows, limit, presentPrincipal, (row) => [row.name, row.id])
    },

    async createPrincipal(request, reply) {
      requireHubAdmin(request)
      const { organisationId } = request.params
      if (!(await queries.findOrganisation(db, organisationId))) throw notFound('organisation', organisationId)
      const principal = await queries.insertPrincipal(db, { ...request.body, organisation_id: organisationId })
      reply.code(201).header('location', `/v1/organisations/${organisationId}/principals`)
      return presentPrincipal(principal)
    },

    async listApiKeys(request) {
      requireHubAdmin(request)
      const { principalId } = request.params
      if (!(await queries.findPrincipal(db, principalId))) throw notFound('principal', principalId)
      const { limit = 50, cursor } = request.query
      const after = cursor ? decodeCursor(cursor, ['text', 'uuid']) : undefined
      const rows = await queries.listApiKeys(db, principalId, after, limit)
      return toPage(rows, limit, presentApiKey, (row) => [row.label, row.id])
    },

    async issueApiKey(request, reply) {
      requireHubAdmin(request)
      const { principalId } = request.params
      if (!(await queries.findPrincipal(db, principalId))) throw notFound('principal', principalId)
      const { label, expires_at } = request.body
      if (expires_at && new Date(expires_at) <= clock.now()) {
        throw new ProblemError(422, `expires_at ${expires_at} is not in the future: the key could never be used.`, {
          code: 'expired',
          extras: { errors: [{ pointer: '#/expires_at', detail: 'must be in the future' }] },
        })
      }
      const generated = generateApiKey()
      const apiKey = await queries.insertApiKey(
        db,
        principalId,
        generated,
        label,
        expires_at ? new Date(expires_at) : null,
      )
      reply.code(201).header('location', `/v1/principals/${principalId}/api-keys`)
      return { ...presentApiKey(apiKey), key: generated.key }
    },

    async revokeApiKey(request) {
      requireHubAdmin(request)
      const apiKey = await queries.revokeApiKey(db, request.params.apiKeyId)
      if (!apiKey) throw notFound('API key', request.params.apiKeyId)
      // Other processes hear of it at commit; this one need not wait for its own notification.
      credentials.forget()
      return presentApiKey(apiKey)
    },
  } satisfies Partial<Handlers>
}

/** An organisation as the directory shows it, with where its country stands for transfers from the EU/EEA on that day. */
export function presentOrganisation(row: Organisation, now: Date): Schemas['Organisation'] {
  const standing = countryStanding(row.country, now)
  return {
    ...row,
    transfer_zone: standing.zone,
    adequacy_decision: standing.adequacyDecision,
    created_at: row.created_at.toISOString(),
  }
}

export function presentPrincipal(row: Principal): Schemas['Principal'] {
  return { ...row, created_at: row.created_at.toISOString() }
}

function presentApiKey(row: ApiKey): Schemas['ApiKey'] {
  return {
    id: row.id,
    principal_id: row.principal_id,
    prefix: row.prefix,
    label: row.label,
    created_at: row.created_at.toISOString(),
    expires_at: row.expires_at?.toISOString() ?? null,
    revoked_at: row.revoked_at?.toISOString() ?? null,
  }
}
