import type { Cell, ChartTable } from '../charts/svg-charts.js'
import type { IndicatorReport, IndicatorTable } from './report.js'

type Row = IndicatorTable['rows'][number]

/**
 * One table of a report drawn as a chart. What a cell shows is what the table publishes: its
 * number, `<5` where it is suppressed (no bar or point then, only the text), nothing where there
 * is nothing to measure. Tables by period put the periods along the axis and draw a series per
 * row, with the column totals as one more series when there are rows to add up: bars for years,
 * lines for quarters and months. The table of steps by corridor draws a group per step.
 */
export async function indicatorChart(report: IndicatorReport, table: IndicatorTable): Promise<string> {
  // Loaded on the first chart asked for: Vega is memory no other request needs.
  const { renderBarChart, renderLineChart } = await import('../charts/svg-charts.js')
  const shown = (cell: Row['cells'][number] | undefined): Cell =>
    cell?.suppressed ? `<${report.threshold}` : (cell?.value ?? null)
  const scope = [`${report.from} to ${report.to}`, report.corridor].filter(Boolean).join(', ')
  const frame = { title: `${table.title}, ${scope}`, unit: table.unit }
  if (table.columns_are !== 'period') {
    return renderBarChart({
      ...frame,
      rows: table.rows.map((row) => chartRow(row.label, table.columns, (j) => shown(row.cells[j]))),
    })
  }
  const series = table.totals && table.rows.length > 1 ? [...table.rows, table.totals] : table.rows
  const chart: ChartTable = {
    ...frame,
    rows: table.columns.map((column, j) =>
      chartRow(
        column,
        series.map((row) => row.label),
        (i) => shown(series[i]?.cells[j]),
      ),
    ),
  }
  return report.period === 'year' ? renderBarChart(chart) : renderLineChart(chart)
}

/** A row of a chart; a series named `label` (an organisation may be) is quoted so as not to take the row's place. */
function chartRow(label: string, series: string[], cell: (index: number) => Cell): ChartTable['rows'][number] {
  return {
    ...Object.fromEntries(series.map((name, index) => [name === 'label' ? '"label"' : name, cell(index)])),
    label,
  }
}
