import { PGlite } from '@electric-sql/pglite'
import { installKeyring, newKeyEntry, parseKeyring } from '../crypto/keyring.js'
import { pgliteDatabase } from '../db/embedded.js'
import { migrate, readMigrations } from '../db/migrate.js'
import { indicatorChart } from '../indicators/chart.js'
import type { DisclosureRules } from '../indicators/disclosure-control.js'
import { type IndicatorRequest, indicatorReport } from '../indicators/report.js'
import type { SopRegistry } from '../sops/registry.js'
import { seedDemoHistory } from './history.js'
import { seedDemoIfEmpty } from './seed.js'

/** The day the README's chart is drawn as of, so that it is the same whenever it is drawn. */
export const DEMO_CHART_NOW = new Date('2026-06-30T12:00:00Z')

/** What the README's chart shows: `GET /v1/indicators/{name}/chart.svg?{query}` on the demo history. */
export const demoCharts: { name: 'beneficiaries_served'; request: IndicatorRequest; file: string }[] = [
  {
    name: 'beneficiaries_served',
    request: { from: '2025-01-01', to: '2026-06-30', grain: 'year' },
    file: 'beneficiaries-served.svg',
  },
]

/** Draws the demo charts from the demo history on a throwaway embedded database. */
export async function drawDemoCharts(
  sops: SopRegistry,
  rules: DisclosureRules,
): Promise<{ file: string; svg: string }[]> {
  installKeyring(parseKeyring(newKeyEntry('demo-chart')))
  const pglite = await PGlite.create()
  const database = pgliteDatabase(pglite)
  try {
    await migrate(database, await readMigrations())
    await seedDemoIfEmpty(database.db)
    await seedDemoHistory(database.db, sops, DEMO_CHART_NOW)
    const drawn: { file: string; svg: string }[] = []
    for (const { name, request, file } of demoCharts) {
      const report = await indicatorReport(database.db, request, rules, DEMO_CHART_NOW)
      const table = report.tables.find((candidate) => candidate.name === name)
      if (!table) throw new Error(`no indicator ${name}`)
      drawn.push({ file, svg: await indicatorChart(report, table) })
    }
    return drawn
  } finally {
    await database.close()
  }
}
