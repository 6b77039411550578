import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import { stringify } from 'yaml'
import { contract } from './contract.js'

/** Serves the contract (`/openapi.json`, `/openapi.yaml`) and the Swagger UI on it (`/docs`). */
export async function registerDocs(app: FastifyInstance): Promise<void> {
  const json = JSON.stringify(contract)
  const yaml = stringify(contract)
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
