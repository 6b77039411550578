// Captures the SQL the real service executes for one request of each benchmarked kind: the service
// is built in this process on the bench schema, and every statement any pg client sends while a
// request is served is recorded with its parameters and its result rows.

import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { installKeyring, resolveKeyring } from '../../src/crypto/keyring.js'
import { openDatabase } from '../../src/db/database.js'
import { readMigrations } from '../../src/db/migrate.js'
import type { Binding, Script, StoredValue } from './replay.js'

interface Recorded {
  client: number
  text: string
  values: unknown[]
  rows: unknown[]
}

let recording: Recorded[] | undefined
const clientIds = new WeakMap<object, number>()
let clients = 0

/** Records every statement from now on while `recording` is set; pg's Pool makes its clients from this class. */
function installRecorder(): void {
  const prototype = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown; recorded?: true }
  if (prototype.recorded) return
  const original = prototype.query
  prototype.query = function (this: object, ...args: unknown[]) {
    const [text, values] = args
    const result = original.apply(this, args)
    if (recording && typeof text === 'string') {
      if (!clientIds.has(this)) clientIds.set(this, ++clients)
      const entry: Recorded = {
        client: clientIds.get(this) ?? 0,
        text,
        values: [...((values as unknown[]) ?? [])],
        rows: [],
      }
      recording.push(entry)
      if (result instanceof Promise) {
        result.then(
          (outcome: { rows?: unknown[] }) => {
            entry.rows = outcome.rows ?? []
          },
          () => {},
        )
      }
    }
    return result
  }
  prototype.recorded = true
}

export interface CaptureRequest {
  method: 'GET' | 'POST'
  url: string
  headers: Record<string, string>
  payload?: unknown
  /** The sample request's own values by role, for the baseline to replace. */
  seeds: Record<string, string>
}

export interface Captured {
  script: Script
  status: number
  body: unknown
  /** Statements sent: each is a round trip, the next one waits for its answer. */
  statements: number
  inTransaction: number
}

export interface CaptureSession {
  capture(request: CaptureRequest): Promise<Captured>
  close(): Promise<void>
}

export async function openCaptureSession(connectionString: string, schema: string): Promise<CaptureSession> {
  installRecorder()
  const config = loadConfig({
    DATABASE_URL: connectionString,
    DATABASE_SCHEMA: schema,
    DATA_ENCRYPTION_KEYS: process.env.DATA_ENCRYPTION_KEYS,
    LOG_LEVEL: 'silent',
    JOBS: 'external',
    RATE_LIMIT_PER_MINUTE: '1000000',
  })
  const database = await openDatabase(config)
  installKeyring(await resolveKeyring(config))
  const app: FastifyInstance = await buildApp({ config, database, migrations: await readMigrations() })
  await app.ready()
  return {
    async capture(request) {
      const log: Recorded[] = []
      recording = log
      let response: Awaited<ReturnType<FastifyInstance['inject']>>
      try {
        response = await app.inject({
          method: request.method,
          url: request.url,
          headers: request.headers,
          ...(request.payload === undefined ? {} : { payload: request.payload as object }),
        })
      } finally {
        recording = undefined
      }
      const script = toScript(log, request.seeds)
      return {
        script,
        status: response.statusCode,
        body: response.json(),
        statements: log.length,
        inTransaction: countInTransaction(log),
      }
    },
    close: () => app.close(),
  }
}

function countInTransaction(log: Recorded[]): number {
  let inside = false
  let count = 0
  for (const entry of log) {
    if (/^\s*(begin|start transaction)\b/i.test(entry.text)) inside = true
    if (inside) count += 1
    if (/^\s*(commit|rollback)\b/i.test(entry.text)) inside = false
  }
  return count
}

const MAPPABLE = [
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
  /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/,
  /^[A-Z]{2}-[A-Z]{2}-\d{4}-\d{6,}$/,
]

function store(value: unknown): StoredValue {
  if (value instanceof Date) return { $date: value.toISOString() }
  if (Array.isArray(value)) return value.map(store)
  if (value === null || value === undefined) return null
  if (typeof value === 'object') return JSON.stringify(value)
  return value as StoredValue
}

function leaves(value: unknown, path: (string | number)[], found: (path: (string | number)[], leaf: string) => void) {
  if (typeof value === 'string') found(path, value)
  else if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) leaves(item, [...path, index], found)
  } else if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    for (const [key, item] of Object.entries(value)) leaves(item, [...path, key], found)
  }
}

function mentions(values: unknown[], text: string): boolean {
  return values.some((value) =>
    typeof value === 'string'
      ? value.includes(text)
      : Array.isArray(value)
        ? mentions(value, text)
        : value !== null &&
          typeof value === 'object' &&
          !(value instanceof Date) &&
          JSON.stringify(value).includes(text),
  )
}

/**
 * The recorded statements as a script: the first place each id-like result value was read from,
 * when a later statement sends it back, so that a replay for another case uses that case's values.
 */
function toScript(log: Recorded[], seeds: Record<string, string>): Script {
  let transactionClient: number | undefined
  for (const [index, entry] of log.entries()) {
    if (/^\s*(begin|start transaction)\b/i.test(entry.text)) transactionClient = entry.client
    if (transactionClient !== undefined && entry.client !== transactionClient) {
      throw new Error(`statement ${index} ran on another connection inside a transaction: ${entry.text}`)
    }
    if (/^\s*(commit|rollback)\b/i.test(entry.text)) transactionClient = undefined
  }
  const known = new Set(Object.values(seeds))
  const bindings: Binding[] = []
  for (const [step, entry] of log.entries()) {
    const later = log.slice(step + 1).map((next) => next.values)
    for (const [rowIndex, row] of entry.rows.entries()) {
      leaves(row, [], (path, leaf) => {
        if (known.has(leaf) || !MAPPABLE.some((pattern) => pattern.test(leaf))) return
        if (!later.some((values) => mentions(values, leaf))) return
        known.add(leaf)
        bindings.push({ step, row: rowIndex, path, sample: leaf })
      })
    }
  }
  const respond = log.flatMap((entry, index) =>
    /^\s*select\b/i.test(entry.text) && !/\bfor update\b/i.test(entry.text) && !/from "api_keys"/i.test(entry.text)
      ? [index]
      : [],
  )
  return {
    steps: log.map((entry) => ({ text: entry.text, values: entry.values.map(store) })),
    seeds,
    bindings,
    respond,
  }
}
