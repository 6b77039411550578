// Writes the problem types of each operation (the contract's `x-common-problem-types` and each
// operation's `x-problem-types`) as a TypeScript module beside the generated types, which
// openapi-typescript does not carry extensions into. Run by scripts/generate-contract.sh.
import { readFileSync, writeFileSync } from 'node:fs'

const [input, output] = process.argv.slice(2)
if (!input || !output) throw new Error('usage: problem-types.ts <bundled openapi.json> <problem-types.ts>')
const contract = JSON.parse(readFileSync(input, 'utf8')) as {
  'x-common-problem-types'?: string[]
  paths: Record<string, Record<string, { operationId?: string; 'x-problem-types'?: string[] }>>
}
const urn = (name: string) => `'urn:trm:problem:${name}'`
const list = (names: string[]) => `[${names.map(urn).join(', ')}]`
const operations = Object.values(contract.paths)
  .flatMap((item) => Object.values(item))
  .filter((operation) => typeof operation === 'object' && operation?.operationId)
  .map((operation) => `  ${operation.operationId}: ${list(operation['x-problem-types'] ?? [])},`)
writeFileSync(
  output,
  `// Generated from openapi/openapi.yaml by scripts/problem-types.ts: do not edit.
import type { components, operations } from './types.js'

type ProblemType = components['schemas']['ProblemType']

/** The problem types any operation may answer with (the contract's \`x-common-problem-types\`). */
export const commonProblemTypes = ${list(contract['x-common-problem-types'] ?? [])} as const satisfies readonly ProblemType[]

/** The problem types each operation may answer with besides the common ones (its \`x-problem-types\`). */
export const operationProblemTypes = {
${operations.join('\n')}
} as const satisfies { [K in keyof operations]: readonly ProblemType[] }

export type CommonProblemType = (typeof commonProblemTypes)[number]

/** The \`type\` of a problem that operation \`K\` may answer with. */
export type OperationProblemType<K extends keyof typeof operationProblemTypes> =
  | CommonProblemType
  | (typeof operationProblemTypes)[K][number]
`,
)
