import type { SopDefinition } from '../sops/definition.js'

// The keys every language must hold, derived from what the service says: the procedures' titles,
// steps and actions, the record kinds, and the contract's vocabularies that people read. A step,
// an action or a reason code added anywhere without its translations fails the completeness test.

type EnumSchema = { enum?: readonly unknown[] }

/** Titles of the procedures, their steps and their actions. */
export function procedureKeys(definitions: readonly SopDefinition[]): string[] {
  return unique(
    definitions.flatMap((definition) => [
      `sop.${definition.id}.title`,
      ...Object.keys(definition.steps).map((step) => `step.${step}`),
      ...definition.transitions.map((transition) => `action.${transition.action}`),
    ]),
  )
}

/** Titles of the record kinds and assessments whose absence or outcome a refusal names. */
export function recordKeys(kinds: { records: object; assessments: object }): string[] {
  return [
    ...Object.keys(kinds.records).map((kind) => `record.${kind}`),
    ...Object.keys(kinds.assessments).map((kind) => `assessment.${kind}`),
  ]
}

/**
 * The contract's vocabularies: each data category and purpose with a label and a plain description
 * (a consent receipt explains them), each role, and every code of an enum schema named `…Reason`
 * (`DeclineReason` → `reason.decline.<code>`).
 */
export function vocabularyKeys(schemas: Readonly<Record<string, EnumSchema>>): string[] {
  const codes = (name: string) => (schemas[name]?.enum ?? []).filter((code): code is string => typeof code === 'string')
  const described = (prefix: string, name: string) =>
    codes(name).flatMap((code) => [`${prefix}.${code}`, `${prefix}.${code}.description`])
  const reasons = Object.keys(schemas)
    .filter((name) => /^[A-Z]\w*Reason$/.test(name))
    .flatMap((name) => {
      const vocabulary = name
        .slice(0, -'Reason'.length)
        .replaceAll(/(?<=[a-z0-9])([A-Z])/g, '_$1')
        .toLowerCase()
      return codes(name).map((code) => `reason.${vocabulary}.${code}`)
    })
  return [
    ...described('category', 'DataCategory'),
    ...described('purpose', 'Purpose'),
    ...codes('Role').map((role) => `role.${role}`),
    ...reasons,
  ]
}

/** The sides of a procedure, which refusals name. */
export function sideKeys(sides: readonly string[]): string[] {
  return sides.map((side) => `side.${side}`)
}

/**
 * What each language lacks: the required keys it has not, and the keys of the English source it
 * has not. Empty lists when the catalogues are complete.
 */
export function missingKeys(
  required: readonly string[],
  catalogues: Readonly<Record<string, Readonly<Record<string, string>>>>,
  source = 'en',
): Record<string, string[]> {
  const wanted = unique([...required, ...Object.keys(catalogues[source] ?? {})])
  return Object.fromEntries(
    Object.entries(catalogues).map(([language, catalogue]) => [
      language,
      wanted.filter((key) => typeof catalogue[key] !== 'string' || catalogue[key] === ''),
    ]),
  )
}

function unique(keys: string[]): string[] {
  return [...new Set(keys)]
}
