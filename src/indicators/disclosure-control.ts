/**
 * Statistical disclosure control of published tables of counts (pure, no I/O).
 *
 * Primary suppression: a count from 1 to `threshold − 1` is not published, in the body of the
 * table as in its margins. Secondary suppression: a table of counts with row totals, column
 * totals and a grand total is a system of linear equations; a suppressed cell can be worked out
 * from the published ones exactly when it lies on no cycle of suppressed cells. (Seen as a
 * bipartite graph — one node per row and per column, the totals row and column included, one
 * edge per suppressed cell — the changes to the suppressed cells that keep every total true are
 * the alternating cycles of that graph: a cell on no cycle, a bridge, has one possible value.)
 * So, while a suppressed cell is a bridge, the cheapest rectangle through it is suppressed too:
 * the three other corners, chosen to hide as few people as possible and to avoid cells of 0,
 * whose published value would narrow the others down.
 */
export interface DisclosureRules {
  /** Counts from 1 to threshold − 1 are suppressed. */
  threshold: number
}

export interface ProtectedCell {
  value: number | null
  suppressed: boolean
}

export interface ProtectedTable {
  cells: ProtectedCell[][]
  rowTotals: ProtectedCell[]
  columnTotals: ProtectedCell[]
  total: ProtectedCell
}

/** A cell of 0 is suppressed only when no rectangle of non-zero cells can protect a cell. */
const ZERO_COST = 1e9

/** Protects a table of counts (rows × columns) and its margins. */
export function protectCounts(counts: readonly (readonly number[])[], rules: DisclosureRules): ProtectedTable {
  const full = withMargins(counts)
  const suppressed = full.map((row) => row.map((value) => value > 0 && value < rules.threshold))
  for (;;) {
    const bridge = firstBridge(suppressed)
    if (!bridge || !hideRectangle(full, suppressed, bridge)) break
  }
  const rows = counts.length
  const columns = full[0] ? full[0].length - 1 : 0
  const cell = (i: number, j: number): ProtectedCell =>
    suppressed[i]?.[j] ? { value: null, suppressed: true } : { value: full[i]?.[j] ?? 0, suppressed: false }
  return {
    cells: counts.map((row, i) => row.map((_, j) => cell(i, j))),
    rowTotals: counts.map((_, i) => cell(i, columns)),
    columnTotals: Array.from({ length: columns }, (_, j) => cell(rows, j)),
    total: cell(rows, columns),
  }
}

/** Suppresses a figure resting on too few cases (a median, a share): no totals, so no secondary suppression. */
export function protectMeasure(value: number | null, cases: number, rules: DisclosureRules): ProtectedCell {
  if (cases === 0 || value === null) return { value: null, suppressed: false }
  if (cases < rules.threshold) return { value: null, suppressed: true }
  return { value, suppressed: false }
}

/** The table with its row totals as a last column and its column totals (and the grand total) as a last row. */
export function withMargins(counts: readonly (readonly number[])[]): number[][] {
  const columns = counts[0]?.length ?? 0
  const body = counts.map((row) => [...row, row.reduce((sum, value) => sum + value, 0)])
  const totals = Array.from({ length: columns + 1 }, (_, j) => body.reduce((sum, row) => sum + (row[j] ?? 0), 0))
  return [...body, totals]
}

/** The first suppressed cell that lies on no cycle of suppressed cells, in reading order. */
function firstBridge(suppressed: boolean[][]): [number, number] | undefined {
  for (let i = 0; i < suppressed.length; i++) {
    const row = suppressed[i] as boolean[]
    for (let j = 0; j < row.length; j++) {
      if (row[j] && !connectedWithout(suppressed, i, j)) return [i, j]
    }
  }
  return undefined
}

/** Whether row node `i` reaches column node `j` through suppressed cells other than (i, j). */
function connectedWithout(suppressed: boolean[][], i: number, j: number): boolean {
  const rows = suppressed.length
  const columns = suppressed[0]?.length ?? 0
  const seenRows = new Set<number>([i])
  const seenColumns = new Set<number>()
  let frontier: { row?: number; column?: number }[] = [{ row: i }]
  while (frontier.length > 0) {
    const next: typeof frontier = []
    for (const node of frontier) {
      if (node.row !== undefined) {
        for (let c = 0; c < columns; c++) {
          if (!suppressed[node.row]?.[c] || (node.row === i && c === j) || seenColumns.has(c)) continue
          if (c === j) return true
          seenColumns.add(c)
          next.push({ column: c })
        }
      } else if (node.column !== undefined) {
        for (let r = 0; r < rows; r++) {
          if (!suppressed[r]?.[node.column] || seenRows.has(r)) continue
          seenRows.add(r)
          next.push({ row: r })
        }
      }
    }
    frontier = next
  }
  return false
}

/** Suppresses the cheapest rectangle with (i, j) as a corner. */
function hideRectangle(full: number[][], suppressed: boolean[][], [i, j]: [number, number]): boolean {
  const cost = (r: number, c: number) => {
    if (suppressed[r]?.[c]) return 0
    const value = full[r]?.[c] ?? 0
    return value === 0 ? ZERO_COST : value
  }
  let best: { r: number; c: number; cost: number } | undefined
  for (let r = 0; r < full.length; r++) {
    if (r === i) continue
    for (let c = 0; c < (full[0]?.length ?? 0); c++) {
      if (c === j) continue
      const total = cost(i, c) + cost(r, c) + cost(r, j)
      if (!best || total < best.cost) best = { r, c, cost: total }
    }
  }
  if (!best) return false
  for (const [r, c] of [
    [i, best.c],
    [best.r, best.c],
    [best.r, j],
  ] as const) {
    const row = suppressed[r]
    if (row) row[c] = true
  }
  return true
}
