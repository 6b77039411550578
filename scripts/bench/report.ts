// Plain-text tables for the terminal: the report is read by people comparing runs, not parsed.
import type { Captured } from './capture.js'
import type { LoadResult } from './load.js'
import type { QueryTiming } from './queries.js'

export interface Measured {
  name: string
  service: LoadResult
  baseline: LoadResult
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)))
  const line = (cells: string[]) =>
    cells.map((cell, column) => (column < 2 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0)))
  const rule = widths.map((width) => '-'.repeat(width))
  return [line(header), rule, ...rows.map(line)].map((cells) => `| ${cells.join(' | ')} |`).join('\n')
}

export const fixed = (value: number, digits = 0) =>
  Number.isFinite(value)
    ? value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : 'n/a'

export const megabytes = (bytes: number) => `${fixed(bytes / 1_048_576)}`

export function seconds(ms: number): string {
  return `${fixed(ms / 1000, 1)} s`
}

/** Service requests a second per baseline request a second; undefined when either run sent nothing. */
export function ratioOf(result: Measured): number | undefined {
  const { service, baseline } = result
  return service.requests > 0 && baseline.requests > 0
    ? service.requestsPerSecond / baseline.requestsPerSecond
    : undefined
}

export function statementSummary(name: string, captured: Captured): string {
  const lines = captured.script.steps.map((step, index) => {
    const text = step.text.replaceAll(/\s+/g, ' ').trim()
    return `    ${String(index + 1).padStart(2)}. ${text.length > 150 ? `${text.slice(0, 147)}…` : text}`
  })
  return [
    `  ${name}: ${captured.statements} statements, each a round trip (${captured.inTransaction} in its transaction)`,
    ...lines,
  ].join('\n')
}

/** The team's targets (2 cores, PostgreSQL on loopback), side by side with this run: reported, never enforced. */
export function targetSummary(results: Measured[], timings: QueryTiming[], cases: number): string {
  const ratioTargets = [0.6, 0.7, 0.7, 0.7]
  const lines = results.map((result, index) => {
    const ratio = ratioOf(result)
    const target = ratioTargets[index] ?? 0
    if (ratio === undefined) return `  ${result.name}: no ratio (a run sent nothing)`
    return `  ${result.name}: service/baseline ${fixed(ratio, 2)}, target ≥ ${fixed(target, 1)}: ${ratio >= target ? 'met' : 'NOT met'}`
  })
  const failures = results.reduce(
    (sum, result) =>
      sum + result.service.errors + result.service.non2xx + result.baseline.errors + result.baseline.non2xx,
    0,
  )
  lines.push(`  errors and non-2xx, target 0: ${fixed(failures)}${failures === 0 ? ' (met)' : ' (NOT met)'}`)
  for (const timing of timings) {
    const met = timing.p95 <= 10 && !timing.seqScan
    lines.push(
      `  ${timing.name}: p95 ${fixed(timing.p95, 2)} ms at ${fixed(cases)} cases, ${timing.seqScan ? 'with' : 'without'} a seq scan, target ≤ 10 ms at 1,000,000 with indexes: ${met ? 'met' : 'NOT met'} at this size`,
    )
  }
  const peak = Math.max(...results.map((result) => result.service.peakRss))
  lines.push(
    `  service memory under load: peak ${megabytes(peak)} MB, target ≤ 300 MB: ${peak <= 300 * 1_048_576 ? 'met' : 'NOT met'}`,
  )
  return `targets (reported, not enforced):\n${lines.join('\n')}`
}

export function resultTable(results: Measured[]): string {
  const rows = results.flatMap((result) =>
    (['service', 'baseline'] as const).map((label) => {
      const measured = result[label]
      return [
        label === 'service' ? result.name : '',
        label,
        fixed(measured.requestsPerSecond),
        fixed(measured.p50, 1),
        fixed(measured.p99, 1),
        fixed(measured.errors),
        fixed(measured.non2xx),
        megabytes(measured.peakRss),
        label === 'service' ? fixed(ratioOf(result) ?? Number.NaN, 2) : '',
      ]
    }),
  )
  const short = results.flatMap((result) =>
    (['service', 'baseline'] as const).flatMap((label) =>
      result[label].exhausted
        ? [`  ${result.name} on the ${label} ran out of fresh cases after ${fixed(result[label].seconds, 1)} s`]
        : [],
    ),
  )
  const header = [
    'operation',
    'server',
    'req/s',
    'p50 ms',
    'p99 ms',
    'errors',
    'non-2xx',
    'peak RSS MB',
    'service/baseline',
  ]
  return [table(header, rows), ...(short.length > 0 ? ['seed more cases for full runs:', ...short] : [])].join('\n')
}

export function timingTable(timings: QueryTiming[]): string {
  return table(
    ['query', 'seq scan', 'p50 ms', 'p95 ms', 'max ms', 'rows'],
    timings.map((timing) => [
      timing.name,
      timing.seqScan ? 'YES' : 'no',
      fixed(timing.p50, 2),
      fixed(timing.p95, 2),
      fixed(timing.max, 2),
      fixed(timing.rows),
    ]),
  )
}
