// The bare baseline: Fastify and a pg Pool of the service's size that serve each benchmarked
// request with exactly the statements the real endpoint executed (captured, see capture.ts),
// without authentication, validation or serialisation beyond JSON. What the service spends above
// this is the cost of everything it does besides the database.
//   BENCH_SCRIPTS=<file> DATABASE_URL=… DATABASE_SCHEMA=… PORT=… node --import tsx scripts/bench/baseline-server.ts
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import Fastify from 'fastify'
import pg from 'pg'
import { type PreparedScript, prepareScript, replay, type ScriptFile } from './replay.js'

const { BENCH_SCRIPTS, DATABASE_URL, DATABASE_SCHEMA, PORT } = process.env
if (!BENCH_SCRIPTS || !DATABASE_URL || !DATABASE_SCHEMA || !PORT) {
  throw new Error('the baseline needs BENCH_SCRIPTS, DATABASE_URL, DATABASE_SCHEMA and PORT')
}
const file = JSON.parse(readFileSync(BENCH_SCRIPTS, 'utf8')) as ScriptFile
const script = (name: string): PreparedScript => {
  const found = file.scripts[name]
  if (!found) throw new Error(`${BENCH_SCRIPTS} has no script ${name}`)
  return prepareScript(found, file.capturedAt)
}
const getCase = script('getCase')
const listCases = script('listCases')
const sendPacket = script('sendPacket')
const listEvents = script('listEvents')

// The service's pool: 10 connections in the schema (src/db/database.ts).
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 10, options: `-c search_path="${DATABASE_SCHEMA}"` })
const app = Fastify({ logger: false })

app.get('/ready', async () => ({ ok: true }))

app.get<{ Params: { caseId: string } }>('/v1/cases/:caseId', async (request) =>
  replay(pool, getCase, { caseId: request.params.caseId, requestId: randomUUID() }),
)

app.get('/v1/cases', async () => replay(pool, listCases, {}))

app.post<{ Params: { caseId: string }; Body: { recipient_organisation_id: string } }>(
  '/v1/cases/:caseId/packets',
  async (request, reply) => {
    const key = request.headers['idempotency-key']
    const rows = await replay(pool, sendPacket, {
      caseId: request.params.caseId,
      recipientId: request.body.recipient_organisation_id,
      idempotencyKey: typeof key === 'string' ? key : randomUUID(),
      requestId: randomUUID(),
    })
    reply.code(201)
    return rows
  },
)

app.get<{ Querystring: { after: string } }>('/v1/events', async (request) => {
  const [txid, seq] = JSON.parse(Buffer.from(request.query.after, 'base64url').toString('utf8')) as [string, string]
  return replay(pool, listEvents, { txid, seq })
})

const close = async () => {
  await app.close()
  await pool.end()
  process.exit(0)
}
process.once('SIGTERM', close)
process.once('SIGINT', close)
await app.listen({ host: '127.0.0.1', port: Number(PORT) })
