import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { buildApp } from '../src/app.js'
import { type Config, loadConfig } from '../src/config.js'
import { readMigrations } from '../src/db/migrate.js'
import { seedDemoIfEmpty } from '../src/demo/seed.js'
import { demoKeys, openTestDatabase } from './fixtures/app.js'
import { sender } from './fixtures/referral.js'

/** The service on a fresh database with the demo data, listening on a free loopback port. */
async function listening(t: Test, config: Partial<Config> = {}, prepare?: (app: FastifyInstance) => void) {
  const database = await openTestDatabase(t)
  await seedDemoIfEmpty(database.db)
  const app = await buildApp({
    config: { ...loadConfig({}), logLevel: 'silent', ...config },
    database,
    migrations: await readMigrations(),
  })
  prepare?.(app)
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, port: (app.server.address() as AddressInfo).port }
}

interface RawExchange {
  /** Everything the server sent before it closed the connection. */
  received: string
  /** Bytes the client managed to send before the server closed the connection. */
  sent: number
}

/**
 * Sends `head`, then `trickle` one byte at a time with pauses, the way a slow or hostile client
 * does, until the server closes the connection (or 60 seconds pass).
 */
function trickle(port: number, head: string, trickle: string): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    let received = ''
    let sent = 0
    let closed = false
    const giveUp = setTimeout(() => {
      socket.destroy()
      reject(new Error('the server kept the slow connection open for 60 seconds'))
    }, 60_000)
    socket.setEncoding('utf8')
    socket.on('data', (chunk) => {
      received += chunk
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      closed = true
      clearTimeout(giveUp)
      resolve({ received, sent })
    })
    socket.on('connect', async () => {
      socket.write(head)
      for (const character of trickle) {
        await sleep(200)
        if (closed || socket.destroyed) return
        socket.write(character)
        sent += 1
      }
    })
  })
}

function parseResponse(raw: string) {
  const [head = '', body = ''] = raw.split('\r\n\r\n')
  const [statusLine = '', ...headerLines] = head.split('\r\n')
  const headers = Object.fromEntries(
    headerLines.map((line) => {
      const colon = line.indexOf(':')
      return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]
    }),
  )
  return { status: Number(statusLine.split(' ')[1]), headers, body }
}

async function openConnections(app: FastifyInstance): Promise<number> {
  return new Promise((resolve, reject) =>
    app.server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
  )
}

t.test('a body sent too slowly gets a 408 problem and its connection is closed', async (t) => {
  const { app, port } = await listening(t, { requestTimeoutMs: 1_000, headersTimeoutMs: 1_000 })
  const body = JSON.stringify({ profile: { age_band: '25_34' } }).padEnd(400, ' ')
  const head = [
    'POST /v1/cases HTTP/1.1',
    'Host: 127.0.0.1',
    `Authorization: Bearer ${sender}`,
    'Content-Type: application/json',
    `Content-Length: ${body.length}`,
    '',
    '',
  ].join('\r\n')
  const exchange = await trickle(port, head, body)
  t.ok(exchange.sent < body.length, 'the server closed the connection before the body was complete')
  const response = parseResponse(exchange.received)
  t.equal(response.status, 408)
  t.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.equal(response.headers.connection, 'close')
  t.match(JSON.parse(response.body), { type: 'urn:trm:problem:request-timeout', status: 408, title: String })
  t.equal(await openConnections(app), 0, 'the server holds no connection any more')
})

t.test('headers sent too slowly get a 408 problem as well', async (t) => {
  const { app, port } = await listening(t, { requestTimeoutMs: 1_000, headersTimeoutMs: 1_000 })
  const exchange = await trickle(port, 'GET /v1/me HTTP/1.1\r\n', `X-Padding: ${'x'.repeat(300)}\r\n\r\n`)
  const response = parseResponse(exchange.received)
  t.equal(response.status, 408)
  t.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.match(JSON.parse(response.body), { type: 'urn:trm:problem:request-timeout', status: 408 })
  t.equal(await openConnections(app), 0, 'the server holds no connection any more')
})

t.test('a request sent promptly is not affected by the short timeouts', async (t) => {
  const { port } = await listening(t, { requestTimeoutMs: 1_000, headersTimeoutMs: 1_000 })
  const response = await fetch(`http://127.0.0.1:${port}/v1/me`, { headers: { authorization: `Bearer ${sender}` } })
  t.equal(response.status, 200)
})

t.test('a long poll of the event feed answers an empty page when the service stops', async (t) => {
  // IOM Morocco is party to nothing in the demo data: its feed is empty, so the poll waits.
  const key = demoKeys.demoiommacw1 as string
  let polling: () => void = () => {}
  const pollArrived = new Promise<void>((resolve) => {
    polling = resolve
  })
  const { app, port } = await listening(t, {}, (app) => {
    app.addHook('onRequest', async (request) => {
      if (request.url.startsWith('/v1/events')) polling()
    })
  })
  const answer = new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const request = http.get(
      { host: '127.0.0.1', port, path: '/v1/events?wait=30', headers: { authorization: `Bearer ${key}` } },
      (response) => {
        let body = ''
        response.setEncoding('utf8')
        response.on('data', (chunk) => {
          body += chunk
        })
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }))
        response.on('error', reject)
      },
    )
    request.on('error', reject)
  })
  await pollArrived
  const closed = app.close()
  // The poll asked to wait 30 s; answering within 20 s of the close can only be the close's doing.
  // (Unreferenced, so that the file ends when its tests do, not 20 s later.)
  const response = await Promise.race([answer, sleep(20_000, undefined, { ref: false })])
  if (!response) throw new Error('the long poll was still waiting 20 s after the service began to stop')
  t.equal(response.status, 200, 'the poll answers, rather than being cut')
  t.equal(response.headers['content-type'], 'application/json; charset=utf-8')
  t.match(JSON.parse(response.body), { items: [], has_more: false, next_cursor: String })
  await closed
})
