import t from 'tap'
import { startTestApp, testDatabaseUrl } from './fixtures/app.js'
import { sender } from './fixtures/referral.js'

const token = 'scrape-token-for-tests'

t.test('/metrics answers Prometheus text to a scraper with the token, per contract operation', async (t) => {
  const { app, request } = await startTestApp(t, { metricsToken: token })
  for (let i = 0; i < 3; i++) t.equal((await request({ method: 'GET', url: '/v1/me', key: sender })).statusCode, 200)
  t.equal((await request({ method: 'GET', url: '/v1/me' })).statusCode, 401)

  const refused = await app.inject({ url: '/metrics' })
  t.equal(refused.statusCode, 401, 'no token, no metrics')
  const wrong = await app.inject({ url: '/metrics', headers: { authorization: `Bearer ${token}x` } })
  t.equal(wrong.statusCode, 401, 'a wrong token, no metrics')

  const scraped = await app.inject({ url: '/metrics', headers: { authorization: `Bearer ${token}` } })
  t.equal(scraped.statusCode, 200)
  t.match(scraped.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  const text = scraped.body
  t.match(text, 'trm_http_requests_total{operation="getMe",method="GET",status="200"} 3', 'three answered getMe')
  t.match(text, 'trm_http_requests_total{operation="getMe",method="GET",status="401"} 1')
  t.match(text, /trm_http_request_duration_seconds_count\{operation="getMe",method="GET",status="200"\} 3/)
  t.match(text, 'trm_webhook_deliveries_pending 0', 'no webhook delivery waits')
  t.match(text, 'trm_webhook_delivery_lag_seconds 0')
  t.match(text, '# TYPE trm_escalations_open gauge')
  t.match(text, '# TYPE trm_job_queue_jobs gauge')
  if (testDatabaseUrl) t.match(text, /trm_db_pool_connections\{state="total"\} [1-9]/, 'the pool holds connections')
})

t.test('without METRICS_TOKEN there is no /metrics', async (t) => {
  const { app } = await startTestApp(t)
  t.equal((await app.inject({ url: '/metrics' })).statusCode, 404)
})
