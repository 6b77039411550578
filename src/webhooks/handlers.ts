import { type Kysely, sql, type Transaction } from 'kysely'
import type { components } from '../../openapi/dist/types.js'
import type { DB, WebhookDelivery, WebhookEndpoint, WebhookSecret } from '../db/schema.js'
import { isAnyUuid } from '../db/statements.js'
import { actingRoles, requireRole } from '../http/authentication.js'
import type { Handlers } from '../http/contract.js'
import { etag, requiredIfMatch, runMutation, staleVersion } from '../http/mutation.js'
import { decodeCursor, toPage } from '../http/pagination.js'
import { notFound, ProblemError } from '../http/problem.js'
import { insertSecret, secretsOf } from './queries.js'
import { newSecret, secretPrefix } from './signature.js'
import { unsafeTargetReason } from './targets.js'

type Schemas = components['schemas']
type Db = Kysely<DB> | Transaction<DB>

export interface WebhookDependencies {
  db: Kysely<DB>
  allowPrivateTargets: boolean
}

export function webhookHandlers({ db, allowPrivateTargets }: WebhookDependencies) {
  function checkedUrl(raw: string): string {
    const url = URL.canParse(raw) ? new URL(raw) : undefined
    if (!url) throw new ProblemError(422, 'The URL cannot be parsed.', { code: 'unsafe-target' })
    const refused = unsafeTargetReason(url, allowPrivateTargets)
    if (refused) throw new ProblemError(422, `The URL cannot receive webhooks: ${refused}.`, { code: 'unsafe-target' })
    return url.href
  }

  /** The endpoint, if it belongs to the organisation: nobody learns of another's endpoints. */
  async function endpointOf(trx: Db, organisationId: string, endpointId: string, { lock = false } = {}) {
    let query = trx
      .selectFrom('webhook_endpoints')
      .selectAll()
      .where('id', '=', endpointId)
      .where('organisation_id', '=', organisationId)
    if (lock) query = query.forUpdate()
    const found = await query.executeTakeFirst()
    if (!found) throw notFound('webhook endpoint', endpointId)
    return found
  }

  /** The endpoint; `withSecret` adds its newest secret, for the answer that issues it and a retry of that request. */
  async function renderEndpoint(trx: Db, endpoint: WebhookEndpoint, { withSecret = false } = {}) {
    const secrets = (await secretsOf(trx, [endpoint.id])).get(endpoint.id) ?? []
    const body = presentEndpoint(endpoint, secrets)
    const newest = secrets[0]
    return { body: withSecret && newest ? { ...body, secret: newest.secret } : body, etag: etag(endpoint.version) }
  }

  return {
    async listWebhookEndpoints(request) {
      const caller = requireRole(request, ...actingRoles)
      const { limit = 50, cursor } = request.query
      const after = cursor ? decodeCursor(cursor, ['integer'])[0] : undefined
      let query = db.selectFrom('webhook_endpoints').selectAll().where('organisation_id', '=', caller.organisation.id)
      if (after) query = query.where('seq', '<', after)
      const rows = await query
        .orderBy('seq', 'desc')
        .limit(limit + 1)
        .execute()
      const secrets = await secretsOf(
        db,
        rows.slice(0, limit).map((row) => row.id),
      )
      return toPage(
        rows,
        limit,
        (row) => presentEndpoint(row, secrets.get(row.id) ?? []),
        (row) => [String(row.seq)],
      )
    },

    async createWebhookEndpoint(request, reply) {
      const caller = requireRole(request, ...actingRoles)
      const url = checkedUrl(request.body.url)
      return runMutation(
        db,
        request,
        reply,
        async (trx) => {
          const endpoint = await trx
            .insertInto('webhook_endpoints')
            .values({
              organisation_id: caller.organisation.id,
              url,
              description: request.body.description ?? null,
              event_types: request.body.event_types ?? [],
              enabled: true,
              disabled_reason: null,
            })
            .returning('id')
            .executeTakeFirstOrThrow()
          await insertSecret(trx, endpoint.id, newSecret())
          return { status: 201, resourceId: endpoint.id, location: `/v1/webhook-endpoints/${endpoint.id}` }
        },
        async (trx, endpointId) =>
          renderEndpoint(trx, await endpointOf(trx, caller.organisation.id, endpointId), { withSecret: true }),
      ) as Promise<Schemas['WebhookEndpointWithSecret']>
    },

    async getWebhookEndpoint(request, reply) {
      const caller = requireRole(request, ...actingRoles)
      const rendered = await renderEndpoint(db, await endpointOf(db, caller.organisation.id, request.params.endpointId))
      reply.header('etag', rendered.etag)
      return rendered.body
    },

    async updateWebhookEndpoint(request, reply) {
      const caller = requireRole(request, ...actingRoles)
      const expected = requiredIfMatch(request)
      const { url, description, event_types: eventTypes, enabled } = request.body
      const checked = url === undefined ? undefined : checkedUrl(url)
      return runMutation(
        db,
        request,
        reply,
        async (trx) => {
          const endpoint = await endpointOf(trx, caller.organisation.id, request.params.endpointId, { lock: true })
          if (endpoint.version !== expected) throw staleVersion('webhook endpoint', endpoint.version)
          const enabling = enabled === undefined ? {} : enabled ? enable : disableByRequest
          await trx
            .updateTable('webhook_endpoints')
            .set({
              ...(checked === undefined ? {} : { url: checked }),
              ...(description === undefined ? {} : { description }),
              ...(eventTypes === undefined ? {} : { event_types: eventTypes }),
              ...(enabled === endpoint.enabled ? {} : enabling),
              version: sql`version + 1`,
              updated_at: new Date(),
            })
            .where('id', '=', endpoint.id)
            .execute()
          if (enabled === false && endpoint.enabled) {
            await trx
              .updateTable('webhook_deliveries')
              .set({ status: 'cancelled', next_attempt_at: null, updated_at: new Date() })
              .where('endpoint_id', '=', endpoint.id)
              .where('status', 'in', ['pending', 'retrying'])
              .execute()
          }
          return { status: 200, resourceId: endpoint.id }
        },
        async (trx, endpointId) => renderEndpoint(trx, await endpointOf(trx, caller.organisation.id, endpointId)),
      )
    },

    async rotateWebhookSecret(request, reply) {
      const caller = requireRole(request, ...actingRoles)
      const overlapSeconds = request.body.overlap_seconds ?? 86_400
      return runMutation(
        db,
        request,
        reply,
        async (trx) => {
          const endpoint = await endpointOf(trx, caller.organisation.id, request.params.endpointId, { lock: true })
          const now = new Date()
          const ends = new Date(now.getTime() + overlapSeconds * 1000)
          await trx
            .updateTable('webhook_secrets')
            .set({ expires_at: ends })
            .where('endpoint_id', '=', endpoint.id)
            .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', ends)]))
            .execute()
          await insertSecret(trx, endpoint.id, newSecret(), now)
          await trx
            .updateTable('webhook_endpoints')
            .set({ version: sql`version + 1`, updated_at: now })
            .where('id', '=', endpoint.id)
            .execute()
          return { status: 200, resourceId: endpoint.id }
        },
        async (trx, endpointId) =>
          renderEndpoint(trx, await endpointOf(trx, caller.organisation.id, endpointId), { withSecret: true }),
      ) as Promise<Schemas['WebhookEndpointWithSecret']>
    },

    async listWebhookDeliveries(request) {
      const caller = requireRole(request, ...actingRoles)
      const endpoint = await endpointOf(db, caller.organisation.id, request.params.endpointId)
      const { status, limit = 50, cursor } = request.query
      const after = cursor ? decodeCursor(cursor, ['integer'])[0] : undefined
      let query = deliveriesWithType(db).where('delivery.endpoint_id', '=', endpoint.id)
      if (status) query = query.where('delivery.status', '=', status)
      if (after) query = query.where('delivery.seq', '<', after)
      const rows = await query
        .orderBy('delivery.seq', 'desc')
        .limit(limit + 1)
        .execute()
      const attempts = await attemptsOf(
        db,
        rows.slice(0, limit).map((row) => row.id),
      )
      return toPage(
        rows,
        limit,
        (row) => presentDelivery(row, attempts.get(row.id) ?? []),
        (row) => [String(row.seq)],
      )
    },

    async redeliverWebhook(request, reply) {
      const caller = requireRole(request, ...actingRoles)
      return runMutation(
        db,
        request,
        reply,
        async (trx) => {
          const endpoint = await endpointOf(trx, caller.organisation.id, request.params.endpointId, { lock: true })
          const delivery = await trx
            .selectFrom('webhook_deliveries')
            .selectAll()
            .where('id', '=', request.params.deliveryId)
            .where('endpoint_id', '=', endpoint.id)
            .forUpdate()
            .executeTakeFirst()
          if (!delivery) throw notFound('delivery', request.params.deliveryId)
          if (!endpoint.enabled) {
            throw new ProblemError(409, 'The endpoint is disabled: enable it first.', { code: 'endpoint-disabled' })
          }
          if (delivery.status === 'pending' || delivery.status === 'retrying') {
            throw new ProblemError(409, `The delivery is already ${delivery.status}.`, { code: 'delivery-in-progress' })
          }
          await trx
            .updateTable('webhook_deliveries')
            .set({ status: 'pending', queued_at: null, next_attempt_at: null, updated_at: new Date() })
            .where('id', '=', delivery.id)
            .execute()
          return { status: 202, resourceId: delivery.id }
        },
        async (trx, deliveryId) => {
          const row = await deliveriesWithType(trx)
            .where('delivery.id', '=', deliveryId)
            .where('delivery.endpoint_id', '=', request.params.endpointId)
            .executeTakeFirst()
          if (!row) throw notFound('delivery', deliveryId)
          await endpointOf(trx, caller.organisation.id, row.endpoint_id)
          return { body: presentDelivery(row, (await attemptsOf(trx, [row.id])).get(row.id) ?? []) }
        },
      )
    },
  } satisfies Partial<Handlers>
}

const enable = { enabled: true, disabled_reason: null, failed_deliveries: 0 } as const
const disableByRequest = { enabled: false, disabled_reason: 'by_request' } as const

function deliveriesWithType(db: Db) {
  return db
    .selectFrom('webhook_deliveries as delivery')
    .innerJoin('events as event', 'event.id', 'delivery.event_id')
    .selectAll('delivery')
    .select('event.type as event_type')
}

async function attemptsOf(db: Db, deliveryIds: string[]) {
  const byDelivery = new Map<string, Schemas['WebhookAttempt'][]>()
  if (deliveryIds.length === 0) return byDelivery
  const rows = await db
    .selectFrom('webhook_attempts')
    .selectAll()
    .where(isAnyUuid('delivery_id', deliveryIds))
    .orderBy('id')
    .execute()
  for (const row of rows) {
    const list = byDelivery.get(row.delivery_id) ?? []
    list.push({
      at: row.at.toISOString(),
      status_code: row.status_code,
      error: row.error,
      duration_ms: row.duration_ms,
    })
    byDelivery.set(row.delivery_id, list)
  }
  return byDelivery
}

function presentEndpoint(row: WebhookEndpoint, secrets: WebhookSecret[]): Schemas['WebhookEndpoint'] {
  return {
    id: row.id,
    organisation_id: row.organisation_id,
    url: row.url,
    description: row.description,
    event_types: row.event_types,
    enabled: row.enabled,
    disabled_reason: row.disabled_reason,
    secrets: secrets.map((secret) => ({
      prefix: secretPrefix(secret.secret),
      created_at: secret.created_at.toISOString(),
      expires_at: secret.expires_at?.toISOString() ?? null,
    })),
    version: row.version,
    etag: etag(row.version),
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  }
}

function presentDelivery(
  row: WebhookDelivery & { event_type: Schemas['EventType'] },
  attempts: Schemas['WebhookAttempt'][],
): Schemas['WebhookDelivery'] {
  return {
    id: row.id,
    endpoint_id: row.endpoint_id,
    event_id: row.event_id,
    event_type: row.event_type,
    status: row.status,
    attempts,
    next_attempt_at: row.next_attempt_at?.toISOString() ?? null,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  }
}
