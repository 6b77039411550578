/**
 * A webhook receiver that verifies each delivery's signature (Standard Webhooks, with the
 * `standardwebhooks` package) before it trusts the event, and answers 204 quickly: do the work
 * after answering, and read the details through the API (events carry identifiers only).
 *
 *   WEBHOOK_SECRET=whsec_… PORT=4000 npx tsx examples/webhook-receiver.ts
 *
 * The secret is the one `POST /v1/webhook-endpoints` answered with, once.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pathToFileURL } from 'node:url'
import { Webhook, WebhookVerificationError } from 'standardwebhooks'
import type { components } from '../openapi/dist/types.js'

export type Event = components['schemas']['Event']

export interface WebhookReceiver {
  url: string
  server: Server
  close(): Promise<void>
}

export async function startWebhookReceiver(options: {
  secret: string
  port?: number
  onEvent: (event: Event) => void
  log?: (line: string) => void
}): Promise<WebhookReceiver> {
  const webhook = new Webhook(options.secret)
  const log = options.log ?? console.log
  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const headers = {
        'webhook-id': String(request.headers['webhook-id'] ?? ''),
        'webhook-timestamp': String(request.headers['webhook-timestamp'] ?? ''),
        'webhook-signature': String(request.headers['webhook-signature'] ?? ''),
      }
      let event: Event
      try {
        // Checks the signature and that the timestamp is within five minutes: a replay fails.
        event = webhook.verify(body, headers) as Event
      } catch (error) {
        if (!(error instanceof WebhookVerificationError)) throw error
        log(`refused a delivery: ${error.message}`)
        response.writeHead(400).end()
        return
      }
      response.writeHead(204).end()
      log(`${event.type} ${event.id}`)
      options.onEvent(event)
    })
  })
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const secret = process.env.WEBHOOK_SECRET
  if (!secret) throw new Error('Set WEBHOOK_SECRET to the secret the endpoint was registered with.')
  const receiver = await startWebhookReceiver({ secret, port: Number(process.env.PORT ?? 4000), onEvent: () => {} })
  console.log(`listening at ${receiver.url}`)
}
