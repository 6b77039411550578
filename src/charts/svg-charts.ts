import { parse, View } from 'vega'
import { compile, type TopLevelSpec } from 'vega-lite'

/**
 * A cell of a table: a count or measure, a text where the number is not published (a suppressed
 * small count, `<5`), or nothing.
 */
export type Cell = number | string | null

/** A table as indicators publish it: one row per label (a period, a corridor, an organisation), one column per series. */
export interface ChartTable {
  title?: string
  /** What the numbers count or measure, for the value axis. */
  unit?: string
  rows: ({ label: string } & Record<string, Cell>)[]
}

interface Point {
  label: string
  series: string
  /** The number drawn; null where the cell holds none. */
  value: number | null
  /** What the cell says: the number, or the text in its place (`<5`). */
  shown: string
  /** Where the text of the cell stands: at its number, or on the axis where it has none. */
  at: number
}

const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif'

/**
 * Grouped bars: a group per row, a bar per series, each bar with its number above it. A cell
 * without a number (a suppressed count) has no bar: its text (`<5`) stands on the axis instead,
 * so the picture never shows a number the table withholds.
 */
export function renderBarChart(table: ChartTable): Promise<string> {
  const data = pointsOf(table)
  const x = { field: 'label', type: 'nominal', sort: null, title: null, axis: { labelAngle: 0, labelLimit: 160 } }
  const offset = { field: 'series', type: 'nominal', sort: seriesOf(table) }
  return render({
    ...frame(table),
    data: { values: data },
    encoding: { x, xOffset: offset },
    layer: [
      {
        mark: { type: 'bar', tooltip: true },
        transform: [{ filter: 'isValid(datum.value)' }],
        encoding: {
          y: { field: 'value', type: 'quantitative', title: table.unit ?? null },
          color: { field: 'series', type: 'nominal', sort: seriesOf(table), title: null },
        },
      },
      {
        mark: { type: 'text', dy: -5, fontSize: 10, aria: false },
        encoding: { y: { field: 'at', type: 'quantitative' }, text: { field: 'shown' } },
      },
    ],
  } as TopLevelSpec)
}

/**
 * A line per series over the rows in their order (periods, oldest first), a point at each number.
 * A cell without a number has no point (the line joins the points either side), and its text
 * (`<5`) stands on the axis at that row.
 */
export function renderLineChart(table: ChartTable): Promise<string> {
  const data = pointsOf(table)
  const x = { field: 'label', type: 'ordinal', sort: null, title: null, axis: { labelAngle: 0 } }
  const colour = { field: 'series', type: 'nominal', sort: seriesOf(table), title: null }
  return render({
    ...frame(table),
    data: { values: data },
    encoding: { x },
    layer: [
      {
        mark: { type: 'line', point: true, tooltip: true },
        transform: [{ filter: 'isValid(datum.value)' }],
        encoding: {
          y: { field: 'value', type: 'quantitative', title: table.unit ?? null },
          color: colour,
        },
      },
      {
        mark: { type: 'text', dy: -6, fontSize: 10, aria: false },
        transform: [{ filter: '!isValid(datum.value)' }],
        encoding: { y: { field: 'at', type: 'quantitative' }, text: { field: 'shown' }, color: colour },
      },
    ],
  } as TopLevelSpec)
}

function frame(table: ChartTable) {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    ...(table.title ? { title: table.title } : {}),
    // The step is that of a row (a group of bars), not of each bar in it.
    width: { step: Math.max(56, 18 * seriesOf(table).length + 12), for: 'position' },
    height: 240,
    background: '#ffffff',
    config: { font: FONT, view: { stroke: null } },
  }
}

/** The columns other than `label`, in the order they first appear. */
function seriesOf(table: ChartTable): string[] {
  const series = new Set<string>()
  for (const row of table.rows) for (const key of Object.keys(row)) if (key !== 'label') series.add(key)
  return [...series]
}

/** The cells that hold a number or a text; an empty cell is left out, drawn neither as a bar nor as a text. */
function pointsOf(table: ChartTable): Point[] {
  const series = seriesOf(table)
  return table.rows.flatMap((row) =>
    series.flatMap((name) => {
      const cell = row[name] ?? null
      if (cell === null || cell === '') return []
      const value = typeof cell === 'number' && Number.isFinite(cell) ? cell : null
      return [
        { label: row.label, series: name, value, shown: value !== null ? String(value) : String(cell), at: value ?? 0 },
      ]
    }),
  )
}

/** Vega-Lite compiled to Vega and rendered headless to an SVG string: no browser, no canvas. */
async function render(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' })
  try {
    return await view.toSVG()
  } finally {
    view.finalize()
  }
}
