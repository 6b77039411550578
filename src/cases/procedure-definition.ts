import type { Case, Purpose } from '../db/schema.js'
import type { SopDefinition } from '../sops/definition.js'
import type { SopRegistry } from '../sops/registry.js'

/** The procedure a case follows, as loaded at start. */
export function definitionOf(sops: SopRegistry, found: Pick<Case, 'id' | 'sop_id' | 'sop_version'>): SopDefinition {
  const definition = sops.find(found.sop_id, found.sop_version)
  if (!definition) throw new Error(`case ${found.id} follows ${found.sop_id}@${found.sop_version}, which is not loaded`)
  return definition
}

/** What the exchange serves at the case's step: the step's own purposes, those of the step before for a hold, none at the end. */
export function purposesAt(
  definition: SopDefinition,
  found: Pick<Case, 'step' | 'previous_step'>,
): Exclude<Purpose, 'statistics'>[] {
  const step = definition.steps[found.step]
  if (!step || step.terminal) return []
  if (step.purposes) return step.purposes
  return found.previous_step ? (definition.steps[found.previous_step]?.purposes ?? []) : []
}
