// Draws every procedure as an SVG into docs/procedures/, and the demo history's indicator chart
// into docs/indicators/ (`npm run diagrams`), the pictures the README shows. With --check, writes
// nothing and fails if a committed picture is not current.
import { readFileSync, writeFileSync } from 'node:fs'
import { loadConfig } from '../src/config.js'
import { drawDemoCharts } from '../src/demo/chart.js'
import { procedureFiles } from '../src/sops/diagram-svg.js'
import { loadSops } from '../src/sops/registry.js'

const check = process.argv.includes('--check')
const sops = loadSops()
const pictures = [
  ...procedureFiles(sops.all()).map(({ file, svg }) => ({ file: `procedures/${file}`, svg })),
  ...(await drawDemoCharts(sops, { threshold: loadConfig({}).statisticsThreshold })).map(({ file, svg }) => ({
    file: `indicators/${file}`,
    svg,
  })),
]
const directory = new URL('../docs/', import.meta.url)
const stale: string[] = []
for (const { file, svg } of pictures) {
  const url = new URL(file, directory)
  if (!check) {
    writeFileSync(url, svg)
    console.log(`docs/${file}`)
    continue
  }
  let committed: string | undefined
  try {
    committed = readFileSync(url, 'utf8')
  } catch {
    committed = undefined
  }
  if (committed !== svg) stale.push(`docs/${file}`)
}
if (stale.length > 0) {
  console.error(`${stale.join(', ')} not current: run 'npm run diagrams' and commit the result.`)
  process.exitCode = 1
}
