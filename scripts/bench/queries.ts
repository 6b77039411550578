// Times the captured SQL of the two paging queries at the seeded size, alone on one connection, and
// shows one plan of each: the paging must stay an index range whatever the table size.
import pg from 'pg'
import type { Script } from './replay.js'

export interface QueryTiming {
  name: string
  runs: number
  p50: number
  p95: number
  max: number
  rows: number
  plan: string
  seqScan: boolean
}

export interface QueryVariant {
  /** Replacements of the sample's parameter values (by equality) for this run. */
  replace: Map<string, string>
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0
}

/** The step of the script that `matches`, with its parameters rendered through `replace`. */
function statementOf(script: Script, matches: RegExp) {
  const index = script.steps.findIndex((step) => matches.test(step.text))
  const step = script.steps[index]
  if (!step) throw new Error(`no captured statement matches ${matches}`)
  const values = step.values
  return {
    text: step.text,
    params: (replace: Map<string, string>) =>
      values.map((value) =>
        typeof value === 'string'
          ? (replace.get(value) ?? value)
          : value !== null && typeof value === 'object' && !Array.isArray(value)
            ? new Date(Date.parse(value.$date))
            : value,
      ),
  }
}

export async function timeQuery(
  connectionString: string,
  schema: string,
  name: string,
  script: Script,
  matches: RegExp,
  variants: QueryVariant[],
): Promise<QueryTiming> {
  const statement = statementOf(script, matches)
  const client = new pg.Client({ connectionString, options: `-c search_path="${schema}"` })
  await client.connect()
  try {
    const timings: number[] = []
    let rows = 0
    for (const variant of variants) {
      const started = process.hrtime.bigint()
      const result = await client.query(statement.text, statement.params(variant.replace))
      timings.push(Number(process.hrtime.bigint() - started) / 1e6)
      rows += result.rowCount ?? 0
    }
    timings.sort((a, b) => a - b)
    // The plan of the captured request itself: the caller and the cursor the load uses.
    const explained = await client.query<{ 'QUERY PLAN': string }>(
      `explain (analyze, buffers) ${statement.text}`,
      statement.params(new Map()),
    )
    const plan = explained.rows.map((row) => row['QUERY PLAN']).join('\n')
    return {
      name,
      runs: timings.length,
      p50: percentile(timings, 50),
      p95: percentile(timings, 95),
      max: timings.at(-1) ?? 0,
      rows: timings.length > 0 ? rows / timings.length : 0,
      plan,
      seqScan: /Seq Scan/.test(plan),
    }
  } finally {
    await client.end()
  }
}
