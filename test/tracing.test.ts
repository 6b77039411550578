import { metrics } from '@opentelemetry/api'
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import t from 'tap'
import { startTracing } from '../src/tracing.js'
import { tracingConfigured } from '../src/tracing-start.js'

t.test('tracing is off unless OTEL_* configures it', async (t) => {
  t.equal(tracingConfigured({}), false)
  t.equal(tracingConfigured({ OTEL_TRACES_EXPORTER: 'otlp' }), true)
  t.equal(tracingConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }), true)
  t.equal(tracingConfigured({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' }), false)
})

t.test('with tracing on, one trace spans the HTTP request, its Fastify route and its SQL', async (t) => {
  const exporter = new InMemorySpanExporter()
  const untraced = metrics.getMeterProvider()
  const tracing = startTracing({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  t.teardown(() => tracing.shutdown())
  t.equal(metrics.getMeterProvider(), untraced, 'traces only: no metrics are exported')
  // Loaded only now, so that the instrumentations see them load.
  const { startTestApp, testDatabaseUrl } = await import('./fixtures/app.js')
  const { sender } = await import('./fixtures/referral.js')
  const app = await startTestApp(t)
  await app.app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.app.server.address() as { port: number }
  const response = await fetch(`http://127.0.0.1:${port}/v1/me`, { headers: { authorization: `Bearer ${sender}` } })
  t.equal(response.status, 200)

  const spans = exporter.getFinishedSpans()
  const server =
    spans.find((span) => span.kind === 1 && span.attributes['http.route'] === '/v1/me') ??
    spans.find((span) => span.kind === 1)
  t.ok(server, 'an HTTP server span')
  const trace = spans.filter((span) => span.spanContext().traceId === server?.spanContext().traceId)
  t.ok(
    trace.some((span) => span.instrumentationScope.name.includes('fastify')),
    'a Fastify span in the same trace',
  )
  if (testDatabaseUrl) {
    const sql = trace.filter((span) => span.instrumentationScope.name.includes('pg'))
    t.ok(sql.length > 0, 'and the SQL of the request, in the same trace')
    t.notOk(JSON.stringify(sql.map((span) => span.attributes)).includes(sender), 'without the key among the values')
  }
})
