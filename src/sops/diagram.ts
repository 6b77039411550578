import type { SopDefinition, Transition } from './definition.js'
import { transitionOperation } from './engine.js'

/**
 * The procedure as a Mermaid state diagram, to paste into any Mermaid viewer. A transition taken by
 * a packet operation is labelled with it (`send_referral · sendPacket`); one that keeps the step
 * (`$current`) loops on it; one that alerts or notifies says whom
 * (`report_missing · alerts both sides`, `accept_referral · acceptPacket · notifies child_protection_authority (receiving)`).
 */
export function mermaidDiagram(definition: SopDefinition): string {
  const lines = ['stateDiagram-v2', `  [*] --> ${definition.initial_step}`]
  for (const [name, step] of Object.entries(definition.steps)) {
    lines.push(`  ${name} : ${step.title}${step.responsible ? ` (${step.responsible}, ${step.deadline})` : ''}`)
  }
  for (const transition of definition.transitions.filter((t) => t.to !== '$previous')) {
    const label = transitionLabel(transition)
    for (const from of transition.from) {
      lines.push(`  ${from} --> ${transition.to === '$current' ? from : transition.to} : ${label}`)
    }
  }
  for (const transition of definition.transitions.filter((t) => t.to === '$previous')) {
    for (const from of transition.from) {
      lines.push(`  note right of ${from} : ${transition.action} returns to the step before`)
    }
  }
  for (const [name, step] of Object.entries(definition.steps)) {
    if (step.schedule) {
      const due = step.schedule.map((item) => `${item.record} ${item.after}`).join(', ')
      lines.push(`  note right of ${name} : schedules ${due}`)
    }
  }
  for (const [name, step] of Object.entries(definition.steps)) {
    if (step.terminal) lines.push(`  ${name} --> [*]`)
  }
  return `${lines.join('\n')}\n`
}

export function transitionLabel(transition: Transition): string {
  return [
    transition.action,
    ...(transition.exchange ? [transitionOperation(transition)] : []),
    ...(transition.effects?.includes('alert_both_sides') ? ['alerts both sides'] : []),
    ...(transition.notify ?? []).map((notice) => `notifies ${notice.organisation_kind} (${notice.country})`),
  ].join(' · ')
}
