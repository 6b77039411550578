import type { Kysely, Transaction } from 'kysely'
import type { components } from '../../openapi/dist/types.js'
import type { Clock } from '../clock.js'
import { type DB, json, type Training } from '../db/schema.js'
import { type Caller, callerOf, readingRoles, requireRole } from '../http/authentication.js'
import type { Handlers } from '../http/contract.js'
import { etag, type Rendered, requiredIfMatch, runMutation, staleVersion } from '../http/mutation.js'
import { decodeCursor, toPage } from '../http/pagination.js'
import { notFound, ProblemError } from '../http/problem.js'
import * as queries from './queries.js'

type Schemas = components['schemas']

export interface TrainingDependencies {
  db: Kysely<DB>
  clock: Clock
}

/**
 * The training registry. A training holds no personal data. It is read by the organisations it
 * names (organiser, participants, NGO partners, improved centres), by any auditor and by the hub's
 * admin; to anyone else it does not exist (404). Only a supervisor of the organiser writes it.
 */
export function trainingHandlers({ db, clock }: TrainingDependencies) {
  function reader(request: Parameters<typeof callerOf>[0]): queries.TrainingReader {
    const caller = callerOf(request)
    const hubAdmin = caller.organisation.kind === 'hub_operator' && caller.principal.roles.includes('admin')
    if (!hubAdmin) requireRole(request, ...readingRoles)
    return {
      organisationId: caller.organisation.id,
      everyone: hubAdmin || caller.principal.roles.includes('auditor'),
    }
  }

  async function render(trx: Transaction<DB>, caller: Caller, id: string): Promise<Rendered<Schemas['Training']>> {
    const found = await queries.findTraining(trx, id, { organisationId: caller.organisation.id, everyone: false })
    if (!found) throw notFound('training', id)
    return { body: presentTraining(found), etag: etag(found.version) }
  }

  async function requireKnown(trx: Transaction<DB>, body: Schemas['TrainingUpdate']): Promise<void> {
    const named = [
      ...(body.participant_organisation_ids ?? []),
      ...(body.ngo_partner_ids ?? []),
      ...(body.improved_centre_ids ?? []),
    ]
    const unknown = await queries.unknownOrganisations(trx, named)
    if (unknown.length > 0) {
      throw new ProblemError(422, `No organisation ${unknown.join(', ')} in the directory.`, {
        code: 'unknown-organisation',
        extras: { errors: unknown.map((id) => ({ pointer: '#/', detail: `${id} is not an organisation` })) },
      })
    }
  }

  return {
    async listTrainings(request) {
      const readerOf = reader(request)
      const { limit = 50, cursor } = request.query
      const after = cursor ? decodeCursor(cursor, ['integer'])[0] : undefined
      const rows = await queries.listTrainings(db, readerOf, { after, limit })
      return toPage(rows, limit, presentTraining, (row) => [String(row.seq)])
    },

    async getTraining(request, reply) {
      const found = await queries.findTraining(db, request.params.trainingId, reader(request))
      if (!found) throw notFound('training', request.params.trainingId)
      reply.header('etag', etag(found.version))
      return presentTraining(found)
    },

    async createTraining(request, reply) {
      const caller = requireRole(request, 'supervisor')
      const body = request.body
      return runMutation(
        db,
        request,
        reply,
        async (trx) => {
          await requireKnown(trx, body)
          const now = clock.now()
          const participants = body.participants ?? []
          const created = await trx
            .insertInto('trainings')
            .values({
              kind: body.kind,
              held_on: body.held_on,
              place: body.place,
              country: body.country,
              topic: body.topic,
              organiser_organisation_id: caller.organisation.id,
              participants: json(participants),
              participants_total: participants.reduce((sum, group) => sum + group.count, 0),
              participant_organisation_ids: body.participant_organisation_ids ?? [],
              ngo_partner_ids: body.ngo_partner_ids ?? [],
              improved_centre_ids: body.improved_centre_ids ?? [],
              created_at: now,
              updated_at: now,
              created_by_principal_id: caller.principal.id,
            })
            .returning('id')
            .executeTakeFirstOrThrow()
          return { status: 201, resourceId: created.id, location: `/v1/trainings/${created.id}` }
        },
        (trx, id) => render(trx, caller, id),
      )
    },

    async updateTraining(request, reply) {
      const caller = requireRole(request, 'supervisor')
      const body = request.body
      return runMutation(
        db,
        request,
        reply,
        async (trx) => {
          const expected = requiredIfMatch(request)
          const id = request.params.trainingId
          const found = await queries.findTraining(
            trx,
            id,
            { organisationId: caller.organisation.id, everyone: false },
            { lock: true },
          )
          if (!found) throw notFound('training', id)
          if (found.organiser_organisation_id !== caller.organisation.id) {
            throw new ProblemError(403, 'Only a supervisor of the organiser changes a training.', {
              code: 'not-organiser',
            })
          }
          if (found.version !== expected) throw staleVersion('training', found.version)
          await requireKnown(trx, body)
          const { participants, ...rest } = body
          await trx
            .updateTable('trainings')
            .set((eb) => ({
              ...rest,
              ...(participants
                ? {
                    participants: json(participants),
                    participants_total: participants.reduce((sum, group) => sum + group.count, 0),
                  }
                : {}),
              version: eb('version', '+', 1),
              updated_at: clock.now(),
            }))
            .where('id', '=', found.id)
            .execute()
          return { status: 200, resourceId: found.id }
        },
        (trx, id) => render(trx, caller, id),
      )
    },
  } satisfies Partial<Handlers>
}

function presentTraining(row: Training): Schemas['Training'] {
  return {
    id: row.id,
    kind: row.kind,
    held_on: row.held_on,
    place: row.place,
    country: row.country,
    topic: row.topic,
    organiser_organisation_id: row.organiser_organisation_id,
    participants: row.participants,
    participants_total: row.participants_total,
    participant_organisation_ids: row.participant_organisation_ids,
    ngo_partner_ids: row.ngo_partner_ids,
    improved_centre_ids: row.improved_centre_ids,
    version: row.version,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  }
}
