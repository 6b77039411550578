// Replays the SQL that one request of the real service executed, for another case: the baseline
// serves each request with exactly these statements, in the same transaction boundaries.
import type pg from 'pg'

/** A statement's parameter as stored in a script file: JSON, with dates tagged. */
export type StoredValue = null | boolean | number | string | { $date: string } | StoredValue[]

export interface ScriptStep {
  text: string
  values: StoredValue[]
}

/** A value the sample request's result held at `path` that later statements send back, e.g. a new packet's id. */
export interface Binding {
  step: number
  row: number
  path: (string | number)[]
  sample: string
}

export interface Script {
  /** What one request of the operation executed, in order, begin and commit included. */
  steps: ScriptStep[]
  /** The sample request's own values by role (case id, request id, idempotency key…), replaced per request. */
  seeds: Record<string, string>
  bindings: Binding[]
  /** The steps whose rows make up the response: the reads of the resource, not locks or bookkeeping. */
  respond: number[]
}

export interface ScriptFile {
  capturedAt: number
  scripts: Record<string, Script>
}

type Template =
  | { kind: 'static'; value: unknown }
  | { kind: 'date'; at: number }
  | { kind: 'exact'; sample: string }
  | { kind: 'text'; value: string; keys: string[] }
  | { kind: 'array'; items: Template[] }

interface PreparedStep {
  text: string
  params: Template[]
  begins: boolean
  ends: boolean
  respond: boolean
  bindings: Binding[]
}

export interface PreparedScript {
  steps: PreparedStep[]
  seeds: Record<string, string>
  capturedAt: number
}

/** Values shorter than this are only replaced where a parameter equals them, never inside a text. */
const MIN_EMBEDDED_KEY = 16

function template(value: StoredValue, keys: Set<string>): Template {
  if (Array.isArray(value)) {
    const items = value.map((item) => template(item, keys))
    return items.every((item) => item.kind === 'static') ? { kind: 'static', value: value } : { kind: 'array', items }
  }
  if (value !== null && typeof value === 'object') return { kind: 'date', at: Date.parse(value.$date) }
  if (typeof value !== 'string') return { kind: 'static', value }
  if (keys.has(value)) return { kind: 'exact', sample: value }
  const embedded = [...keys].filter((key) => key.length >= MIN_EMBEDDED_KEY && value.includes(key))
  return embedded.length > 0 ? { kind: 'text', value, keys: embedded } : { kind: 'static', value }
}

export function prepareScript(script: Script, capturedAt: number): PreparedScript {
  const keys = new Set([...Object.values(script.seeds), ...script.bindings.map((binding) => binding.sample)])
  const respond = new Set(script.respond)
  return {
    seeds: script.seeds,
    capturedAt,
    steps: script.steps.map((step, index) => ({
      text: step.text,
      params: step.values.map((value) => template(value, keys)),
      begins: /^\s*(begin|start transaction)\b/i.test(step.text),
      ends: /^\s*(commit|rollback)\b/i.test(step.text),
      respond: respond.has(index),
      bindings: script.bindings.filter((binding) => binding.step === index),
    })),
  }
}

function render(param: Template, map: Map<string, string>, shift: number): unknown {
  switch (param.kind) {
    case 'static':
      return param.value
    case 'date':
      // The same distance from now as at capture: "24 hours ago" stays 24 hours ago.
      return new Date(param.at + shift)
    case 'exact':
      return map.get(param.sample) ?? param.sample
    case 'text': {
      let text = param.value
      for (const key of param.keys) {
        const replacement = map.get(key)
        if (replacement !== undefined) text = text.replaceAll(key, replacement)
      }
      return text
    }
    case 'array':
      return param.items.map((item) => render(item, map, shift))
  }
}

export function pick(row: unknown, path: (string | number)[]): unknown {
  let value = row
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined
    value = (value as Record<string | number, unknown>)[key]
  }
  return value
}

/**
 * Executes the script for one request. `seeds` gives, by role, this request's values for the sample's
 * (its case id, its idempotency key…); values that results produce (the new packet's id) are picked
 * up from this run's results as they come. Answers the rows of the response's steps.
 */
export async function replay(pool: pg.Pool, script: PreparedScript, seeds: Record<string, string>) {
  const map = new Map<string, string>()
  for (const [role, sample] of Object.entries(script.seeds)) {
    const value = seeds[role]
    if (value !== undefined) map.set(sample, value)
  }
  const shift = Date.now() - script.capturedAt
  const body: unknown[][] = []
  let client: pg.PoolClient | undefined
  try {
    for (const step of script.steps) {
      const params = step.params.map((param) => render(param, map, shift))
      if (step.begins) client = await pool.connect()
      const result = client ? await client.query(step.text, params) : await pool.query(step.text, params)
      if (step.ends) {
        client?.release()
        client = undefined
      }
      for (const binding of step.bindings) {
        const value = pick(result.rows[binding.row], binding.path)
        if (typeof value === 'string') map.set(binding.sample, value)
      }
      if (step.respond) body.push(result.rows)
    }
  } catch (error) {
    if (client) {
      await client.query('rollback').catch(() => {})
      client.release()
    }
    throw error
  }
  return body
}
