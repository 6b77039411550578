import type { Kysely } from 'kysely'
import type { components } from '../../openapi/dist/types.js'
import type { DB } from '../db/schema.js'
import { type DisclosureRules, type ProtectedCell, protectCounts, protectMeasure } from './disclosure-control.js'
import { caseCounts, durations, type Grain, type IndicatorScope, trainingFigures } from './queries.js'

type Schemas = components['schemas']
export type IndicatorReport = Schemas['IndicatorReport']
export type IndicatorTable = Schemas['IndicatorTable']
type IndicatorName = Schemas['IndicatorName']

export interface IndicatorRequest {
  from: string
  to: string
  grain: Grain
  corridor?: string | undefined
  organisationId?: string | undefined
}

/**
 * IOM's Reintegration Sustainability Survey scores each dimension from 0 to 1 and reads 0.66 or
 * more as sustainable; a reintegration counts as sustainable when every dimension reaches it.
 */
export const SUSTAINABLE_FROM = 0.66

const CASE_COUNTS: { name: IndicatorName; title: string }[] = [
  { name: 'beneficiaries_served', title: 'Beneficiaries served (cases opened)' },
  { name: 'minors_supported', title: 'Minors supported (cases of a child opened)' },
  { name: 'reintegrations_scored', title: 'Reintegrations with a sustainability score' },
  { name: 'sustainable_reintegrations', title: 'Sustainable reintegrations (every dimension ≥ 0.66)' },
  { name: 'retrafficked', title: 'People re-trafficked (suspected, or closed as re-trafficked)' },
]

/**
 * Every indicator as a table, computed over the live data in three statements, with statistical
 * disclosure control applied to every figure about cases.
 */
export async function indicatorReport(
  db: Kysely<DB>,
  request: IndicatorRequest,
  rules: DisclosureRules,
  now: Date,
): Promise<IndicatorReport> {
  const [sendingCountry, receivingCountry] = request.corridor?.split('-') ?? []
  const scope: IndicatorScope = {
    from: request.from,
    until: dayAfter(request.to),
    grain: request.grain,
    sendingCountry,
    receivingCountry,
    organisationId: request.organisationId,
    now,
    sustainableFrom: SUSTAINABLE_FROM,
  }
  const [counts, timings, trainings] = await Promise.all([
    caseCounts(db, scope),
    durations(db, scope),
    trainingFigures(db, scope),
  ])
  const periods = periodsOf(scope)
  const columns = periods.map((start) => periodLabel(start, request.grain))
  const at = (start: string) => periods.indexOf(start)

  const countTables = CASE_COUNTS.map(({ name, title }) => {
    const rows = counts.filter((row) => row.indicator === name)
    const corridors = [...new Set(rows.map((row) => row.corridor))].sort()
    const matrix = corridors.map(() => periods.map(() => 0))
    for (const row of rows) {
      const line = matrix[corridors.indexOf(row.corridor)]
      if (line && at(row.period) >= 0) line[at(row.period)] = row.cases
    }
    return countTable(name, title, 'cases', 'corridor', corridors, columns, matrix, rules)
  })

  const trainingTable = (
    name: IndicatorName,
    title: string,
    unit: IndicatorTable['unit'],
    pick: (row: (typeof trainings)[number]) => number,
  ) => {
    const organisers = [...new Set(trainings.map((row) => row.organiser))].sort()
    const matrix = organisers.map(() => periods.map(() => 0))
    for (const row of trainings) {
      const line = matrix[organisers.indexOf(row.organiser)]
      if (line && at(row.period) >= 0) line[at(row.period)] = pick(row)
    }
    return countTable(name, title, unit, 'organisation', organisers, columns, matrix, undefined)
  }

  const measureTable = (
    name: IndicatorName,
    title: string,
    unit: IndicatorTable['unit'],
    rowsAre: IndicatorTable['rows_are'],
    columnsAre: IndicatorTable['columns_are'],
    measure: 'acknowledge' | 'deadline' | 'step',
    value: (row: (typeof timings)[number]) => number | null,
  ): IndicatorTable => {
    const rows = timings.filter((row) => row.measure === measure)
    const labels = [...new Set(rows.map((row) => row.row_label))].sort()
    const columnKeys = columnsAre === 'period' ? periods : [...new Set(rows.map((row) => row.column_label))].sort()
    return {
      name,
      title,
      unit,
      rows_are: rowsAre,
      columns_are: columnsAre,
      columns: columnsAre === 'period' ? columns : columnKeys,
      rows: labels.map((label) => ({
        label,
        cells: columnKeys.map((key) => {
          const row = rows.find((candidate) => candidate.row_label === label && candidate.column_label === key)
          return row ? protectMeasure(round(value(row)), row.cases, rules) : { value: null, suppressed: false }
        }),
        total: null,
      })),
      totals: null,
      protected: true,
    }
  }

  const tables: IndicatorTable[] = [
    ...countTables.slice(0, 2),
    trainingTable('centres_improved', 'Centres improved', 'centres', (row) => row.centres),
    trainingTable('staff_trained', 'Professional staff trained in voluntary return', 'people', (row) => row.staff),
    trainingTable('initiatives_with_ngos', 'Initiatives with NGOs', 'initiatives', (row) => row.initiatives),
    measureTable(
      'time_to_acknowledge_median',
      'Time from referral to acknowledgement, median (hours)',
      'hours',
      'corridor',
      'period',
      'acknowledge',
      (row) => row.median_hours,
    ),
    measureTable(
      'time_to_acknowledge_p90',
      'Time from referral to acknowledgement, 90th percentile (hours)',
      'hours',
      'corridor',
      'period',
      'acknowledge',
      (row) => row.p90_hours,
    ),
    measureTable(
      'steps_within_deadline',
      'Share of steps finished within their deadline',
      'share',
      'corridor',
      'period',
      'deadline',
      (row) => (row.within === null || row.cases === 0 ? null : row.within / row.cases),
    ),
    measureTable(
      'time_per_step_median',
      'Time spent in each step, median (hours), by corridor',
      'hours',
      'step',
      'corridor',
      'step',
      (row) => row.median_hours,
    ),
    ...countTables.slice(2),
  ]
  return {
    from: request.from,
    to: request.to,
    period: request.grain,
    corridor: request.corridor ?? null,
    organisation: request.organisationId ?? null,
    threshold: rules.threshold,
    consent_purpose: 'statistics',
    tables,
  }
}

function countTable(
  name: IndicatorName,
  title: string,
  unit: IndicatorTable['unit'],
  rowsAre: IndicatorTable['rows_are'],
  labels: string[],
  columns: string[],
  matrix: number[][],
  rules: DisclosureRules | undefined,
): IndicatorTable {
  const published = rules ? protectCounts(matrix, rules) : protectCounts(matrix, { threshold: 1 })
  return {
    name,
    title,
    unit,
    rows_are: rowsAre,
    columns_are: 'period',
    columns,
    rows: labels.map((label, i) => ({
      label,
      cells: published.cells[i] as ProtectedCell[],
      total: published.rowTotals[i] as ProtectedCell,
    })),
    totals: {
      label: 'total',
      cells: labels.length > 0 ? published.columnTotals : columns.map(() => ({ value: 0, suppressed: false })),
      total: published.total,
    },
    protected: rules !== undefined,
  }
}

function round(value: number | null): number | null {
  return value === null ? null : Math.round(value * 1000) / 1000
}

/** The first days of the periods that the range touches, `YYYY-MM-DD`. */
export function periodsOf(scope: Pick<IndicatorScope, 'from' | 'until' | 'grain'>): string[] {
  const months = scope.grain === 'year' ? 12 : scope.grain === 'quarter' ? 3 : 1
  const start = new Date(`${scope.from}T00:00:00Z`)
  const first = new Date(
    Date.UTC(
      start.getUTCFullYear(),
      scope.grain === 'year' ? 0 : start.getUTCMonth() - (start.getUTCMonth() % months),
      1,
    ),
  )
  const end = new Date(`${scope.until}T00:00:00Z`)
  const periods: string[] = []
  for (let at = first; at < end; at = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + months, 1))) {
    periods.push(at.toISOString().slice(0, 10))
  }
  return periods
}

export function periodLabel(start: string, grain: Grain): string {
  const year = start.slice(0, 4)
  if (grain === 'year') return year
  if (grain === 'month') return start.slice(0, 7)
  return `${year}-Q${Math.floor((Number(start.slice(5, 7)) - 1) / 3) + 1}`
}

function dayAfter(day: string): string {
  const next = new Date(`${day}T00:00:00Z`)
  next.setUTCDate(next.getUTCDate() + 1)
  return next.toISOString().slice(0, 10)
}

/** The report as CSV: one line per published figure; suppressed counts as `<threshold`. */
export function indicatorCsv(report: IndicatorReport): string {
  const lines = ['indicator,row,column,value']
  const text = (cell: Schemas['IndicatorCell']) =>
    cell.suppressed ? `<${report.threshold}` : cell.value === null ? '' : String(cell.value)
  // A leading = + - @ would make a spreadsheet run the name of an organisation as a formula.
  const quote = (raw: string) => {
    const value = /^[=+\-@]/.test(raw) ? `'${raw}` : raw
    return /[",\n\r]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value
  }
  for (const table of report.tables) {
    const lineRows = table.totals ? [...table.rows, table.totals] : table.rows
    for (const row of lineRows) {
      row.cells.forEach((cell, j) => {
        lines.push([table.name, quote(row.label), quote(table.columns[j] ?? ''), text(cell)].join(','))
      })
      if (row.total) lines.push([table.name, quote(row.label), 'total', text(row.total)].join(','))
    }
  }
  return `${lines.join('\r\n')}\r\n`
}
