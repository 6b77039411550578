import { readdirSync, readFileSync } from 'node:fs'
import { Ajv2020 } from 'ajv/dist/2020.js'
import type { SopDefinition } from './definition.js'

const definitionsDir = new URL('./definitions/', import.meta.url)
const schema = JSON.parse(readFileSync(new URL('./sop.schema.json', import.meta.url), 'utf8')) as object

export class SopDefinitionError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'SopDefinitionError'
  }
}

/** Every version of every procedure, loaded and checked once. */
export interface SopRegistry {
  all(): SopDefinition[]
  find(id: string, version: number): SopDefinition | undefined
  /** The newest version of the procedure that applies to an adult or a child. */
  current(appliesTo: SopDefinition['applies_to']): SopDefinition
}

export function loadSops(dir: URL = definitionsDir): SopRegistry {
  const validate = new Ajv2020({ allErrors: true, strict: true }).compile(schema)
  const definitions = readdirSync(dir)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => {
      const definition: unknown = JSON.parse(readFileSync(new URL(file, dir), 'utf8'))
      if (!validate(definition)) {
        const problems = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ')
        throw new SopDefinitionError(`${file} does not match sop.schema.json: ${problems}`)
      }
      checkCoherent(file, definition as SopDefinition)
      return definition as SopDefinition
    })
  const byKey = new Map(definitions.map((d) => [`${d.id}@${d.version}`, d]))
  if (byKey.size !== definitions.length) throw new SopDefinitionError('two definition files share an id and version')
  const newest = (appliesTo: SopDefinition['applies_to']) =>
    definitions.filter((d) => d.applies_to === appliesTo).sort((a, b) => b.version - a.version)[0]
  for (const appliesTo of ['adult', 'child'] as const) {
    if (!newest(appliesTo)) throw new SopDefinitionError(`no procedure applies to a ${appliesTo}`)
  }
  return {
    all: () => definitions,
    find: (id, version) => byKey.get(`${id}@${version}`),
    current: (appliesTo) => newest(appliesTo) as SopDefinition,
  }
}

/** What a schema cannot say: steps that exist, deadlines where someone must act (and no schedule where no one does), no dead ends. */
function checkCoherent(file: string, definition: SopDefinition): void {
  const fail = (message: string) => {
    throw new SopDefinitionError(`${file}: ${message}`)
  }
  const steps = definition.steps
  if (!steps[definition.initial_step]) fail(`initial step ${definition.initial_step} is not a step`)
  for (const [name, step] of Object.entries(steps)) {
    if (step.terminal && (step.responsible || step.deadline))
      fail(`terminal step ${name} has a responsible side or deadline`)
    if (!step.terminal && !(step.responsible && step.deadline))
      fail(`step ${name} needs a responsible side and a deadline`)
    if (step.terminal && step.schedule) fail(`terminal step ${name} schedules obligations`)
    if (!step.terminal && !definition.transitions.some((t) => t.from.includes(name)))
      fail(`step ${name} has no way out`)
  }
  const actions = new Set<string>()
  const exchanges = new Set<string>()
  for (const transition of definition.transitions) {
    for (const from of transition.from) {
      if (!steps[from]) fail(`${transition.action} starts from unknown step ${from}`)
      if (steps[from]?.terminal) fail(`${transition.action} leaves terminal step ${from}`)
      if (actions.has(`${from}:${transition.action}`)) fail(`two transitions ${transition.action} from ${from}`)
      actions.add(`${from}:${transition.action}`)
    }
    if (!transition.to.startsWith('$') && !steps[transition.to])
      fail(`${transition.action} leads to unknown step ${transition.to}`)
    const exchange = transition.exchange
    if (exchange) {
      if ((exchange.operation === 'send') !== (exchange.packet !== undefined))
        fail(`${transition.action}: a send names the packet it sends, and no other operation does`)
      for (const from of transition.from) {
        if (exchanges.has(`${from}:${exchange.operation}`))
          fail(`two transitions from ${from} take ${exchange.operation}`)
        exchanges.add(`${from}:${exchange.operation}`)
      }
    }
    if (transition.effects?.includes('full_referral') && exchange?.operation !== 'accept')
      fail(`${transition.action}: only accepting an enquiry sends the full referral`)
  }
}
