import type { SopDefinition } from './definition.js'

/** The procedure as a Mermaid state diagram, to paste into any Mermaid viewer. */
export function mermaidDiagram(definition: SopDefinition): string {
  const lines = ['stateDiagram-v2', `  [*] --> ${definition.initial_step}`]
  for (const [name, step] of Object.entries(definition.steps)) {
    lines.push(`  ${name} : ${step.title}${step.responsible ? ` (${step.responsible}, ${step.deadline})` : ''}`)
  }
  for (const transition of definition.transitions.filter((t) => t.to !== '$previous')) {
    // `$current` keeps the case where it is: a loop on the step, not a state of its own.
    for (const from of transition.from) {
      lines.push(`  ${from} --> ${transition.to === '$current' ? from : transition.to} : ${transition.action}`)
    }
  }
  for (const transition of definition.transitions.filter((t) => t.to === '$previous')) {
    for (const from of transition.from) {
      lines.push(`  note right of ${from} : ${transition.action} returns to the step before`)
    }
  }
  for (const [name, step] of Object.entries(definition.steps)) {
    if (step.terminal) lines.push(`  ${name} --> [*]`)
  }
  return `${lines.join('\n')}\n`
}
