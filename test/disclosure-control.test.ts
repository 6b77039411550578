import fc from 'fast-check'
import t from 'tap'
import { protectCounts } from '../src/indicators/disclosure-control.js'
import { type PublishedTable, recoverByAlgebra, recoverByHand } from './fixtures/intruder.js'

const rules = { threshold: 5 }

function published(counts: number[][]): PublishedTable {
  const table = protectCounts(counts, rules)
  return {
    rows: table.cells.map((cells, i) => ({ cells, total: table.rowTotals[i] ?? null })),
    totals: { cells: table.columnTotals, total: table.total },
  }
}

function suppressedCount(table: PublishedTable): number {
  return [...table.rows, ...(table.totals ? [table.totals] : [])].reduce(
    (sum, row) => sum + [...row.cells, ...(row.total ? [row.total] : [])].filter((cell) => cell.suppressed).length,
    0,
  )
}

t.test(
  'a small count is suppressed, and the cheapest rectangle with it, so the totals give nothing away',
  async (t) => {
    // Beneficiaries by corridor (rows) and year (columns): 2 people in one cell.
    const table = published([
      [2, 8],
      [7, 6],
    ])
    t.same(
      table.rows.map((row) => row.cells.map((cell) => cell.value)),
      [
        [null, null],
        [null, null],
      ],
      'the 2, and the 8, 7 and 6 that would reveal it through the totals',
    )
    t.same(
      table.rows.map((row) => row.total?.value),
      [10, 13],
    )
    t.same(
      table.totals?.cells.map((cell) => cell.value),
      [9, 14],
    )
    t.equal(table.totals?.total?.value, 23)
    t.same(recoverByHand(table), [])
    t.same(recoverByAlgebra(table), [])
  },
)

t.test('a small total is suppressed like any count, and protected in turn', async (t) => {
  const table = published([[0, 3]])
  t.same(
    table.rows[0]?.cells.map((cell) => [cell.value, cell.suppressed]),
    [
      [0, false],
      [null, true],
    ],
  )
  t.same([table.rows[0]?.total?.suppressed, table.totals?.total?.suppressed], [true, true])
  t.same(recoverByAlgebra(table), [])
})

t.test('nothing small, nothing suppressed', async (t) => {
  const table = published([
    [5, 0, 12],
    [9, 30, 6],
  ])
  t.equal(suppressedCount(table), 0)
})

t.test('an intruder recovers no suppressed cell of any table, and no published count is from 1 to 4', async (t) => {
  const counts = fc.array(
    fc.array(fc.oneof(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 60 })), { minLength: 1, maxLength: 5 }),
    {
      minLength: 1,
      maxLength: 5,
    },
  )
  const tables = counts.map((rows) => {
    const width = rows[0]?.length ?? 1
    return rows.map((row) => Array.from({ length: width }, (_, j) => row[j] ?? 0))
  })
  fc.assert(
    fc.property(tables, (rows) => {
      const table = published(rows)
      const shown = [...table.rows, ...(table.totals ? [table.totals] : [])].flatMap((row) => [
        ...row.cells,
        ...(row.total ? [row.total] : []),
      ])
      const small = shown.filter((cell) => !cell.suppressed && cell.value !== null && cell.value > 0 && cell.value < 5)
      return small.length === 0 && recoverByHand(table).length === 0 && recoverByAlgebra(table).length === 0
    }),
    { numRuns: 400, seed: 7 },
  )
  t.pass('400 random tables: nothing recovered')
})

t.test('the intruder is no straw man: primary suppression alone gives cells away', async (t) => {
  const cell = (value: number | null) => ({ value, suppressed: value === null })
  const naive: PublishedTable = {
    rows: [
      { cells: [cell(null), cell(8)], total: cell(10) },
      { cells: [cell(7), cell(6)], total: cell(13) },
    ],
    totals: { cells: [cell(9), cell(14)], total: cell(23) },
  }
  t.same(recoverByHand(naive), [[0, 0]], 'the 2 follows from its row total')
  // Two cells suppressed in one row and one column each still leave a bridge between two cycles.
  const bridged: PublishedTable = {
    rows: [
      { cells: [cell(null), cell(null), cell(9), cell(9)], total: cell(30) },
      { cells: [cell(null), cell(null), cell(9), cell(9)], total: cell(30) },
      { cells: [cell(9), cell(null), cell(null), cell(null)], total: cell(36) },
      { cells: [cell(9), cell(9), cell(null), cell(null)], total: cell(36) },
    ],
    totals: { cells: [cell(30), cell(36), cell(36), cell(30)], total: cell(132) },
  }
  t.same(recoverByHand(bridged), [], 'no line has a single unknown')
  t.same(recoverByAlgebra(bridged), [[2, 1]], 'but the cell between the two cycles is determined')
})
