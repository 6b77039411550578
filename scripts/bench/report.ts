// Plain-text tables for the terminal: the report is read by people comparing runs, not parsed.

import type { LoadResult } from './load.js'
import { type OperationName, operationTitles } from './plan.js'
import type { QueryTiming } from './queries.js'

/** An operation's runs on both implementations, and the statements one request of it sends on each. */
export interface Measured {
  operation: OperationName
  service: LoadResult[]
  minimal: LoadResult[]
  statements: { service: number; minimal: number }
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

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  if (sorted.length === 0) return Number.NaN
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

const rate = (runs: LoadResult[]) => median(runs.map((run) => run.requestsPerSecond))
const p95 = (runs: LoadResult[]) => median(runs.map((run) => run.p95))
const failed = (runs: LoadResult[]) => runs.reduce((sum, run) => sum + run.errors + run.non2xx, 0)

/**
 * Service requests a second per minimal requests a second: the median of each round's ratio, as
 * the two runs of a round ran side by side under the same load from elsewhere.
 */
export function ratioOf(measured: Measured): number {
  return median(
    measured.service.map(
      (run, round) => run.requestsPerSecond / (measured.minimal[round]?.requestsPerSecond ?? Number.NaN),
    ),
  )
}

export function resultTable(results: Measured[]): string {
  const rows = results.map((measured) => [
    operationTitles[measured.operation],
    `${measured.statements.service} / ${measured.statements.minimal}`,
    fixed(rate(measured.service)),
    fixed(rate(measured.minimal)),
    fixed(ratioOf(measured), 2),
    `${fixed(p95(measured.service), 1)} / ${fixed(p95(measured.minimal), 1)}`,
    `${fixed(failed(measured.service))} / ${fixed(failed(measured.minimal))}`,
  ])
  const header = [
    'operation',
    'statements service / minimal',
    'service req/s',
    'minimal req/s',
    'ratio',
    'p95 ms service / minimal',
    'errors service / minimal',
  ]
  const short = results.flatMap((measured) =>
    (['service', 'minimal'] as const).flatMap((label) => {
      const runs = measured[label].filter((run) => run.exhausted)
      return runs.length > 0
        ? [`  ${operationTitles[measured.operation]}, ${label}: ${runs.length} run(s) ended early, out of fresh cases`]
        : []
    }),
  )
  return [table(header, rows), ...(short.length > 0 ? ['(seed more cases for full runs)', ...short] : [])].join('\n')
}

const statementTargets: Partial<Record<OperationName, number>> = { read: 2, send: 5, transition: 5, feed: 1 }
const ratioTargets: OperationName[] = ['read', 'list', 'send', 'transition', 'firstRead', 'feed']

/** Issue 14's targets beside this run: reported, never enforced. */
export function targetSummary(
  results: Measured[],
  cases: number,
  peakRss: number,
  timings: readonly QueryTiming[],
): string {
  const verdict = (met: boolean) => (met ? 'met' : 'NOT met')
  const lines: string[] = []
  for (const measured of results) {
    const title = operationTitles[measured.operation]
    if (ratioTargets.includes(measured.operation)) {
      lines.push(
        `  ${title}: service/minimal ${fixed(ratioOf(measured), 2)}, target ≥ 0.7: ${verdict(ratioOf(measured) >= 0.7)}`,
      )
    }
    const most = statementTargets[measured.operation]
    if (most !== undefined) {
      lines.push(
        `  ${title}: ${measured.statements.service} statements, target ≤ ${most}: ${verdict(measured.statements.service <= most)}`,
      )
    }
  }
  const errors = results.reduce((sum, measured) => sum + failed(measured.service) + failed(measured.minimal), 0)
  lines.push(`  errors and non-2xx, target 0: ${fixed(errors)} (${verdict(errors === 0)})`)
  for (const timing of timings) {
    lines.push(
      `  ${timing.query}: the query alone p95 ${fixed(timing.p95, 2)} ms at ${fixed(cases)} cases, ` +
        `target ≤ 10 ms at 1,000,000: ${verdict(timing.p95 <= 10)} at this size`,
    )
  }
  lines.push(
    `  service peak RSS under load: ${megabytes(peakRss)} MB, target ≤ 150 MB: ${verdict(peakRss <= 150 * 1_048_576)}`,
  )
  return `targets (reported, not enforced):\n${lines.join('\n')}`
}
