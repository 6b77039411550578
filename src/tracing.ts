import { FastifyOtelInstrumentation } from '@fastify/otel'
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http'
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg'
import { NodeSDK } from '@opentelemetry/sdk-node'
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base'

/**
 * OpenTelemetry tracing through HTTP, Fastify and pg, off unless configured by the standard
 * `OTEL_*` variables: `OTEL_TRACES_EXPORTER` (`otlp`, `console`, …) or
 * `OTEL_EXPORTER_OTLP_ENDPOINT`; `OTEL_SERVICE_NAME` names the service (`trm-api` by default);
 * `OTEL_SDK_DISABLED=true` turns it off whatever else is set. It must start before the modules it
 * traces are loaded: `src/server.ts` and `src/worker.ts` start it before importing the service.
 * Spans carry routes and SQL statements with their parameters left out, never request bodies.
 * `src/tracing-start.ts` loads this module only when tracing is configured.
 *
 * Starts tracing; `spanProcessors` replace the exporter of `OTEL_*` (tests use an in-memory one).
 */
export function startTracing(options: { spanProcessors?: SpanProcessor[] } = {}): { shutdown(): Promise<void> } {
  const sdk = new NodeSDK({
    serviceName: process.env.OTEL_SERVICE_NAME ?? 'trm-api',
    ...(options.spanProcessors ? { spanProcessors: options.spanProcessors } : {}),
    // Traces only: left to the SDK's defaults, the same variables would also start OTLP metric and
    // log exporters, and stopping the service would wait seconds on a collector that takes no metrics.
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      new HttpInstrumentation(),
      new FastifyOtelInstrumentation({ registerOnInitialization: true }),
      // Statements only: their parameters may hold a person's data.
      new PgInstrumentation({ enhancedDatabaseReporting: false }),
    ],
  })
  sdk.start()
  return sdk
}
