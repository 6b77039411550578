import { existsSync, readdirSync, readFileSync } from 'node:fs'
import type { ValidateFunction } from 'ajv'
import { Ajv2020 } from 'ajv/dist/2020.js'
import type { Corridor, Guard, SopDefinition, SopReference, Step, Transition } from './definition.js'

const definitionsDir = new URL('./definitions/', import.meta.url)
const schema = JSON.parse(readFileSync(new URL('./sop.schema.json', import.meta.url), 'utf8')) as object
const variantSchema = JSON.parse(readFileSync(new URL('./variant.schema.json', import.meta.url), 'utf8')) as object

export class SopDefinitionError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'SopDefinitionError'
  }
}

/** A national variant as written: a base definition and what differs (see `variant.schema.json`). */
interface VariantFile {
  id: string
  version: number
  extends: SopReference
  title: string
  description: string
  corridors: Corridor[]
  steps?: Record<string, Pick<Step, 'title' | 'description' | 'deadline'>>
  guards?: Record<string, Guard[]>
  transitions?: Transition[]
}

/** Every version of every procedure, loaded and checked once. */
export interface SopRegistry {
  all(): SopDefinition[]
  find(id: string, version: number): SopDefinition | undefined
  /** The newest version of the generic procedure that applies to an adult or a child. */
  current(appliesTo: SopDefinition['applies_to']): SopDefinition
  /** The procedure a case opens on: the most specific for its corridor (see `specificity`). */
  select(appliesTo: SopDefinition['applies_to'], corridor: Corridor): SopDefinition
}

/**
 * How closely a procedure fits a case's corridor, or undefined where it does not apply: 3 for
 * the exact corridor, 2 for the country of return with any sending country, 1 for the sending
 * country with any country of return, 0 for a generic procedure (which names no corridor). The
 * loader refuses two procedures that could tie.
 */
export function specificity(definition: Pick<SopDefinition, 'corridors'>, corridor: Corridor): number | undefined {
  if (!definition.corridors) return 0
  const fits = definition.corridors
    .filter(
      (c) =>
        (c.sending === '*' || c.sending === corridor.sending) &&
        (c.receiving === '*' || c.receiving === corridor.receiving),
    )
    .map((c) => (c.sending === '*' ? 2 : c.receiving === '*' ? 1 : 3))
  return fits.length > 0 ? Math.max(...fits) : undefined
}

/** The procedures shipped in `definitions/`, loaded once per process (they never change while it runs). */
let shipped: SopRegistry | undefined

/**
 * Loads the generic procedures from `dir` and the national variants from its `variants/` folder,
 * resolving each variant into a full definition that the same schema and checks hold to.
 */
export function loadSops(dir: URL = definitionsDir): SopRegistry {
  if (dir !== definitionsDir) return loadSopsFrom(dir)
  shipped ??= loadSopsFrom(definitionsDir)
  return shipped
}

function loadSopsFrom(dir: URL): SopRegistry {
  const ajv = new Ajv2020({ allErrors: true, strict: true })
  const validate = ajv.compile(schema)
  const validateVariant = ajv.compile(variantSchema)
  const checked = (file: string, definition: unknown): SopDefinition => {
    if (!validate(definition))
      throw new SopDefinitionError(`${file} does not match sop.schema.json: ${problems(validate)}`)
    checkCoherent(file, definition as SopDefinition)
    return definition as SopDefinition
  }
  const generic = jsonFiles(dir).map(({ file, json }) => {
    const definition = checked(file, json)
    if (definition.corridors || definition.extends)
      throw new SopDefinitionError(`${file}: a definition for some corridors is a variant, in variants/`)
    return definition
  })
  const variants = jsonFiles(new URL('variants/', dir)).map(({ file, json }) => {
    if (!validateVariant(json))
      throw new SopDefinitionError(`variants/${file} does not match variant.schema.json: ${problems(validateVariant)}`)
    const variant = json as unknown as VariantFile
    if (generic.some((d) => d.id === variant.id))
      throw new SopDefinitionError(
        `variants/${file}: ${variant.id} is a generic procedure; a variant has an id of its own`,
      )
    const base = generic.find((d) => d.id === variant.extends.id && d.version === variant.extends.version)
    if (!base)
      throw new SopDefinitionError(
        `variants/${file} extends ${variant.extends.id}@${variant.extends.version}, which is not a generic definition`,
      )
    return checked(`variants/${file}`, resolveVariant(`variants/${file}`, base, variant))
  })
  const definitions = [...generic, ...variants]
  const byKey = new Map(definitions.map((d) => [`${d.id}@${d.version}`, d]))
  if (byKey.size !== definitions.length) throw new SopDefinitionError('two definition files share an id and version')
  const candidates = (appliesTo: SopDefinition['applies_to']) => {
    const newest = new Map<string, SopDefinition>()
    for (const d of definitions) {
      if (d.applies_to !== appliesTo) continue
      const seen = newest.get(d.id)
      if (!seen || seen.version < d.version) newest.set(d.id, d)
    }
    return [...newest.values()]
  }
  for (const appliesTo of ['adult', 'child'] as const) checkNoTies(appliesTo, candidates(appliesTo))
  const current = (appliesTo: SopDefinition['applies_to']) =>
    candidates(appliesTo).find((d) => !d.corridors) as SopDefinition
  return {
    all: () => definitions,
    find: (id, version) => byKey.get(`${id}@${version}`),
    current,
    select: (appliesTo, corridor) => {
      let chosen = current(appliesTo)
      let best = 0
      for (const definition of candidates(appliesTo)) {
        const fit = specificity(definition, corridor)
        if (fit !== undefined && fit > best) {
          chosen = definition
          best = fit
        }
      }
      return chosen
    },
  }
}

function jsonFiles(dir: URL): { file: string; json: unknown }[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => ({ file, json: JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as unknown }))
}

function problems(validate: ValidateFunction): string {
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ')
}

/** The base with the variant's names and corridors, its step fields, added guards and added transitions. */
function resolveVariant(file: string, base: SopDefinition, variant: VariantFile): SopDefinition {
  const steps = structuredClone(base.steps)
  for (const [name, fields] of Object.entries(variant.steps ?? {})) {
    const step = steps[name]
    if (!step) throw new SopDefinitionError(`${file}: step ${name} is not a step of ${base.id}@${base.version}`)
    if (step.terminal && fields.deadline) throw new SopDefinitionError(`${file}: terminal step ${name} has no deadline`)
    Object.assign(step, fields)
  }
  const transitions = structuredClone(base.transitions)
  for (const [action, guards] of Object.entries(variant.guards ?? {})) {
    const changed = transitions.filter((t) => t.action === action)
    if (changed.length === 0)
      throw new SopDefinitionError(`${file}: ${action} is not an action of ${base.id}@${base.version}`)
    for (const transition of changed) transition.guards.push(...structuredClone(guards))
  }
  for (const transition of variant.transitions ?? []) {
    if (transitions.some((t) => t.action === transition.action))
      throw new SopDefinitionError(`${file}: ${transition.action} is already an action of the base; add guards instead`)
    transitions.push(transition)
  }
  return {
    ...structuredClone(base),
    id: variant.id,
    version: variant.version,
    title: variant.title,
    description: variant.description,
    corridors: variant.corridors,
    extends: variant.extends,
    steps,
    transitions,
  }
}

/** At most one generic procedure, and no corridor named by two procedures, for adults or children. */
function checkNoTies(appliesTo: SopDefinition['applies_to'], candidates: SopDefinition[]): void {
  const generic = candidates.filter((d) => !d.corridors).map((d) => d.id)
  if (generic.length === 0) throw new SopDefinitionError(`no procedure applies to a ${appliesTo}`)
  if (generic.length > 1)
    throw new SopDefinitionError(`${generic.join(' and ')} are both the generic procedure for a ${appliesTo}`)
  const owner = new Map<string, string>()
  for (const definition of candidates) {
    for (const { sending, receiving } of definition.corridors ?? []) {
      const key = `${sending}→${receiving}`
      const other = owner.get(key)
      if (other)
        throw new SopDefinitionError(
          `${other} and ${definition.id} both apply to a ${appliesTo} in the corridor ${key}`,
        )
      owner.set(key, definition.id)
    }
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
