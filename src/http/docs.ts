import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import { stringify } from 'yaml'
import { contract } from './contract.js'

/** The contract as served, written once per process. */
let documents: { json: string; yaml: string } | undefined

/** Serves the contract (`/openapi.json`, `/openapi.yaml`) and the Swagger UI on it (`/docs`). */
export async function registerDocs(app: FastifyInstance): Promise<void> {
  documents ??= { json: JSON.stringify(contract), yaml: stringify(contract) }
  const { json, yaml } = documents
  await app.register(swagger, { mode: 'static', specification: { document: contract as never } })
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: {
      persistAuthorization: true,
      displayOperationId: true,
      tryItOutEnabled: true,
      deepLinking: true,
      showExtensions: true,
    },
  })
  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async (_request, reply) =>
    reply.type('application/json').send(json),
  )
  app.get('/openapi.yaml', { config: { public: true }, schema: { hide: true } }, async (_request, reply) =>
    reply.type('application/yaml').send(yaml),
  )
}
