import t from 'tap'
import { startTestApp } from './fixtures/app.js'

t.test('liveness and readiness need no key', async (t) => {
  const { request } = await startTestApp(t)
  const live = await request({ method: 'GET', url: '/health/live' })
  t.equal(live.statusCode, 200)
  const ready = await request({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 200)
  t.match(ready.json(), { status: 'ok', database: 'ok', migrations: { pending: 0 } })
})

t.test('readiness answers 503 when the database is gone', async (t) => {
  const { request, database } = await startTestApp(t)
  await database.db.destroy()
  const ready = await request({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 503)
  t.equal(ready.headers['content-type'], 'application/problem+json; charset=utf-8')
})
