import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import { stringify } from 'yaml'
import { contract } from './contract.js'

/** The contract as served, each form written once per process, when first asked for (together about 1.3 MB). */
const written = new Map<'json' | 'yaml', string>()

function document(form: 'json' | 'yaml'): string {
  let text = written.get(form)
  if (text === undefined) {
    text = form === 'json' ? JSON.stringify(contract) : stringify(contract)
    written.set(form, text)
  }
  return text
}

/** Serves the contract (`/openapi.json`, `/openapi.yaml`) and the Swagger UI on it (`/docs`). */
export async function registerDocs(app: FastifyInstance): Promise<void> {
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
    reply.type('application/json').send(document('json')),
  )
  app.get('/openapi.yaml', { config: { public: true }, schema: { hide: true } }, async (_request, reply) =>
    reply.type('application/yaml').send(document('yaml')),
  )
}
