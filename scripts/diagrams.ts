// Draws every procedure as an SVG into docs/procedures/ (`npm run diagrams`), the pictures the
// README shows. With --check, writes nothing and fails if a committed picture is not current.
import { readFileSync, writeFileSync } from 'node:fs'
import { procedureFiles } from '../src/sops/diagram-svg.js'
import { loadSops } from '../src/sops/registry.js'

const directory = new URL('../docs/procedures/', import.meta.url)
const check = process.argv.includes('--check')
const stale: string[] = []
for (const { file, svg } of procedureFiles(loadSops().all())) {
  const url = new URL(file, directory)
  if (!check) {
    writeFileSync(url, svg)
    console.log(`docs/procedures/${file}`)
    continue
  }
  let committed: string | undefined
  try {
    committed = readFileSync(url, 'utf8')
  } catch {
    committed = undefined
  }
  if (committed !== svg) stale.push(`docs/procedures/${file}`)
}
if (stale.length > 0) {
  console.error(`${stale.join(', ')} not current with the procedures: run 'npm run diagrams' and commit the result.`)
  process.exitCode = 1
}
