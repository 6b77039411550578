import { createRequire } from 'node:module'

/**
 * Whether the standard `OTEL_*` variables turn tracing on: `OTEL_TRACES_EXPORTER` or an OTLP
 * endpoint, unless `OTEL_SDK_DISABLED=true`.
 */
export function tracingConfigured(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED === 'true') return false
  return Boolean(env.OTEL_TRACES_EXPORTER || env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
}

// Imported first by the entry points, so that tracing starts before what it traces is loaded;
// loaded synchronously for that reason (an `await import` would let the entry point's other
// imports load first), and only when configured: the SDK holds about 17 MB that an untraced
// process does without.
if (tracingConfigured(process.env)) {
  const { startTracing } = createRequire(import.meta.url)('./tracing.js') as typeof import('./tracing.js')
  startTracing()
}
