import { startTracing, tracingConfigured } from './tracing.js'

// Imported first by the entry points, so that tracing starts before what it traces is loaded.
if (tracingConfigured(process.env)) startTracing()
