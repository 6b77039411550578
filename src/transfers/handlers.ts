import type { Kysely } from 'kysely'
import type { components } from '../../openapi/dist/types.js'
import type { Clock } from '../clock.js'
import type { DB } from '../db/schema.js'
import { callerOf, requireHubAdmin, requireRole } from '../http/authentication.js'
import type { Handlers } from '../http/contract.js'
import { decodeCursor, toPage } from '../http/pagination.js'
import { ProblemError } from '../http/problem.js'
import { findOrganisation } from '../organisations/queries.js'
import { safeguardArticle } from './basis.js'
import { countryStanding } from './countries.js'
import * as queries from './queries.js'

type Schemas = components['schemas']

export interface TransferDependencies {
  db: Kysely<DB>
  clock: Clock
}

export function transferHandlers({ db, clock }: TransferDependencies) {
  return {
    async createTransferAgreement(request, reply) {
      const caller = requireHubAdmin(request)
      const body = request.body
      const now = clock.now()
      const exporter = await findOrganisation(db, body.exporter_organisation_id)
      const importer = await findOrganisation(db, body.importer_organisation_id)
      if (!exporter || countryStanding(exporter.country, now).zone !== 'eea') {
        throw unprocessable('exporter_organisation_id', 'is not a registered organisation in the EU/EEA')
      }
      if (!importer || countryStanding(importer.country, now).zone !== 'third_country') {
        throw unprocessable(
          'importer_organisation_id',
          'is not a registered organisation in a country without an adequacy decision: no safeguards are needed',
        )
      }
      if (body.valid_until && body.valid_until < body.valid_from) {
        throw unprocessable('valid_until', 'comes before valid_from')
      }
      const agreement = await queries.insertAgreement(db, {
        exporter_organisation_id: exporter.id,
        importer_organisation_id: importer.id,
        safeguard: body.safeguard,
        reference: body.reference,
        valid_from: body.valid_from,
        valid_until: body.valid_until ?? null,
        registered_by_principal_id: caller.principal.id,
      })
      reply.code(201)
      return presentAgreement(agreement)
    },

    async listTransferAgreements(request) {
      const caller = callerOf(request)
      const hubAdmin = caller.organisation.kind === 'hub_operator' && caller.principal.roles.includes('admin')
      if (!hubAdmin) requireRole(request, 'dpo')
      const { limit = 50, cursor } = request.query
      const after = cursor ? decodeCursor(cursor, ['integer'])[0] : undefined
      const rows = await queries.listAgreements(db, {
        organisationId: hubAdmin ? undefined : caller.organisation.id,
        after,
        limit,
      })
      return toPage(rows, limit, presentAgreement, (row) => [String(row.seq)])
    },

    async listTransfers(request) {
      const caller = requireRole(request, 'dpo')
      const { limit = 50, cursor, from, to, country } = request.query
      const after = cursor ? decodeCursor(cursor, ['integer'])[0] : undefined
      const rows = await queries.listTransfers(db, {
        organisationId: caller.organisation.id,
        from,
        to,
        country,
        after,
        limit,
      })
      return toPage(
        rows.flatMap((row) => (row.transfer ? [{ ...row, transfer: row.transfer }] : [])),
        limit,
        (row): Schemas['Transfer'] => ({
          packet_id: row.id,
          packet_kind: row.kind,
          case_id: row.case_id,
          case_reference: row.case_reference,
          sender_organisation_id: row.sender_organisation_id,
          recipient_organisation_id: row.recipient_organisation_id,
          sent_at: row.sent_at.toISOString(),
          basis: row.transfer,
        }),
        (row) => [String(row.seq)],
      )
    },
  } satisfies Partial<Handlers>
}

function presentAgreement(row: queries.AgreementRow): Schemas['TransferAgreement'] {
  return {
    id: row.id,
    exporter_organisation_id: row.exporter_organisation_id,
    importer_organisation_id: row.importer_organisation_id,
    safeguard: row.safeguard,
    article: safeguardArticle[row.safeguard],
    reference: row.reference,
    valid_from: row.valid_from,
    valid_until: row.valid_until,
    registered_by_principal_id: row.registered_by_principal_id,
    created_at: row.created_at.toISOString(),
  }
}

function unprocessable(field: string, detail: string): ProblemError {
  return new ProblemError(422, `${field} ${detail}.`, {
    code: 'invalid-transfer-agreement',
    extras: { errors: [{ pointer: `#/${field}`, detail }] },
  })
}
