import dagre from '@dagrejs/dagre'
import escapeHtml from 'escape-html'
import type { SopDefinition } from './definition.js'

/** A node and an edge once dagre laid them out: centres, sizes, and the points an edge runs through. */
interface LaidNode {
  x: number
  y: number
  width: number
  height: number
}
interface LaidEdge {
  x: number
  y: number
  width: number
  points: { x: number; y: number }[]
}

/** A transition the case took, as the disclosure policy lets every party see it: steps and when. */
export interface PathTaken {
  action: string
  from_step: string | null
  to_step: string
  at: Date
}

/** A case on the procedure: the way it came, where it stands, and until when. */
export interface CaseOnProcedure {
  path: readonly PathTaken[]
  step: string
  dueAt: Date | null
  now: Date
}

const START = '$start'
const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif'
const STEP_HEIGHT = 48
/** Wide enough for a case's line under the title: `overdue since 2026-12-31`. */
const MIN_STEP_WIDTH = 160
/** Average advance of a character at the sizes used below: no font metrics on the server, so an estimate. */
const CHAR_WIDTH = { title: 7.4, meta: 6.1, label: 5.9 }

const STYLE = `
  text { font-family: ${FONT}; fill: #1f2933; }
  .heading { font-size: 16px; font-weight: 600; }
  .step rect { fill: #ffffff; stroke: #52606d; stroke-width: 1.2; }
  .step .title { font-size: 13px; font-weight: 600; }
  .step .meta { font-size: 11px; fill: #52606d; }
  .step.initial rect { stroke: #1f2933; stroke-width: 2.5; }
  .step.terminal rect { fill: #e4e7eb; stroke: #3e4c59; }
  .step.exit rect { fill: #fff3e0; stroke: #b45309; stroke-dasharray: 6 3; }
  .step.visited rect { fill: #e3f0fb; stroke: #1d4ed8; stroke-width: 1.8; }
  .step.current rect { fill: #1d4ed8; stroke: #1e3a8a; stroke-width: 3; }
  .step.current.overdue rect { fill: #b91c1c; stroke: #7f1d1d; }
  .step.current text { fill: #ffffff; }
  .start circle { fill: #1f2933; }
  .edge path { fill: none; stroke: #9aa5b1; stroke-width: 1.1; marker-end: url(#arrow); }
  .edge.returns path { stroke-dasharray: 4 3; }
  .edge text { font-size: 10px; fill: #3e4c59; }
  .edge .label-box { fill: #ffffff; fill-opacity: 0.85; stroke: none; }
  .edge.taken path { stroke: #1d4ed8; stroke-width: 2.6; marker-end: url(#arrow-taken); }
  .edge.taken text { fill: #1d4ed8; font-weight: 600; }
`

/**
 * The procedure as an SVG picture, laid out by dagre (layered, left to right): a box per step —
 * the initial step framed heavily and entered from a dot, terminal steps grey and rounded, exit
 * steps (the return failed) dashed amber — and an arrow per transition from each step it leaves,
 * labelled with its action. A transition that keeps the step loops on it; one that returns to the
 * step before loops dashed. With a case, the transitions it took and the steps it passed are blue,
 * and its current step is filled: blue, or red once its deadline has passed. Only step names,
 * actions and dates are drawn: nothing of the person.
 */
export function procedureSvg(definition: SopDefinition, onCase?: CaseOnProcedure): string {
  const { edges, nodes } = layoutOf(definition)
  const taken = new Map<string, Date[]>()
  const entered = new Map<string, Date>()
  for (const row of onCase?.path ?? []) {
    const key = row.action === 'open' ? edgeKey('open', START) : edgeKey(row.action, row.from_step ?? START)
    taken.set(key, [...(taken.get(key) ?? []), row.at])
    entered.set(row.to_step, row.at)
  }
  const heading = `${definition.title} (${definition.id}, version ${definition.version})`
  const bounds = new Bounds()
  bounds.add(0, 0, heading.length * 8.6, 24)
  // The path taken is drawn last, over the arrows it crosses.
  const inOrder = [
    ...edges.filter(({ edge }) => !taken.has(edge.key)),
    ...edges.filter(({ edge }) => taken.has(edge.key)),
  ]
  const drawnEdges = inOrder.map(({ edge, laid }) => {
    for (const point of laid.points) bounds.add(point.x, point.y + 32, 0, 0)
    if (edge.label) bounds.add(laid.x - laid.width / 2, laid.y + 32 - 8, laid.width, 16)
    return drawEdge(edge, laid, taken.get(edge.key))
  })
  const drawnNodes = nodes.map(({ name, node }) => {
    bounds.add(node.x - node.width / 2, node.y + 32 - node.height / 2, node.width, node.height)
    if (name === START) {
      return `<g class="start"><title>start</title><circle cx="${num(node.x)}" cy="${num(node.y)}" r="7"/></g>`
    }
    return drawStep(name, definition, node, onCase, entered.get(name))
  })
  const width = Math.ceil(bounds.right + 16)
  const height = Math.ceil(bounds.bottom + 16)
  const left = Math.floor(Math.min(0, bounds.left - 16))
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width - left}" height="${height}" viewBox="${left} 0 ${width - left} ${height}" role="img" aria-labelledby="title" class="procedure" data-sop="${escapeHtml(definition.id)}" data-version="${definition.version}">`,
    `<title id="title">${escapeHtml(heading)}</title>`,
    `<style>${STYLE}</style>`,
    '<defs>',
    arrowMarker('arrow', '#9aa5b1'),
    arrowMarker('arrow-taken', '#1d4ed8'),
    '</defs>',
    `<rect x="${left}" y="0" width="${width - left}" height="${height}" fill="#ffffff"/>`,
    `<text class="heading" x="16" y="22">${escapeHtml(heading)}</text>`,
    '<g transform="translate(0 32)">',
    `<g class="edges">${drawnEdges.join('')}</g>`,
    `<g class="steps">${drawnNodes.join('')}</g>`,
    '</g>',
    '</svg>',
    '',
  ].join('\n')
}

interface Layout {
  nodes: { name: string; node: LaidNode }[]
  edges: { edge: EdgeDrawing; laid: LaidEdge }[]
}

/** Layouts by procedure and the titles drawn: laying out takes a few hundred milliseconds, a case's picture reuses it. */
const layouts = new Map<string, Layout>()

/**
 * Steps and transitions laid out left to right. A box is as wide as its title and the line under
 * it (name, responsible side, deadline) need; a case's line (`entered …`, `overdue since …`) is
 * shorter than the narrowest box, so a case is drawn on the same layout as its procedure.
 */
function layoutOf(definition: SopDefinition): Layout {
  const key = JSON.stringify([
    definition.id,
    definition.version,
    definition.title,
    Object.values(definition.steps).map((step) => step.title),
  ])
  const known = layouts.get(key)
  if (known) return known
  const graph = new dagre.graphlib.Graph({ multigraph: true })
  graph.setGraph({ rankdir: 'LR', nodesep: 14, ranksep: 60, edgesep: 12, marginx: 16, marginy: 16 })
  graph.setNode(START, { width: 14, height: 14 })
  for (const [name, step] of Object.entries(definition.steps)) {
    const meta = stepMeta(name, step, undefined, undefined)
    const width = Math.max(MIN_STEP_WIDTH, step.title.length * CHAR_WIDTH.title, meta.length * CHAR_WIDTH.meta) + 24
    graph.setNode(name, { width: Math.round(width), height: STEP_HEIGHT })
  }
  const edges: EdgeDrawing[] = [
    {
      key: edgeKey('open', START),
      from: START,
      to: definition.initial_step,
      action: 'open',
      declaredTo: definition.initial_step,
      label: '',
    },
  ]
  for (const transition of definition.transitions) {
    for (const from of transition.from) {
      const to = transition.to.startsWith('$') ? from : transition.to
      const label = transition.to === '$previous' ? `${transition.action} ↩ step before` : transition.action
      edges.push({
        key: edgeKey(transition.action, from),
        from,
        to,
        action: transition.action,
        declaredTo: transition.to,
        label,
      })
    }
  }
  for (const edge of edges) {
    graph.setEdge(
      edge.from,
      edge.to,
      { width: Math.ceil(edge.label.length * CHAR_WIDTH.label) + 6, height: edge.label ? 14 : 0, labelpos: 'c' },
      edge.key,
    )
  }
  dagre.layout(graph)
  const layout: Layout = {
    nodes: graph.nodes().map((name: string) => ({ name, node: graph.node(name) as LaidNode })),
    edges: edges.map((edge) => ({ edge, laid: graph.edge({ v: edge.from, w: edge.to, name: edge.key }) as LaidEdge })),
  }
  layouts.set(key, layout)
  return layout
}

interface EdgeDrawing {
  key: string
  from: string
  to: string
  action: string
  /** The step, or `$current` / `$previous`, as the definition says. */
  declaredTo: string
  label: string
}

function edgeKey(action: string, from: string): string {
  return `${action}@${from}`
}

function stepMeta(
  name: string,
  step: SopDefinition['steps'][string],
  onCase: CaseOnProcedure | undefined,
  enteredAt: Date | undefined,
): string {
  if (onCase?.step === name) {
    if (!onCase.dueAt) return enteredAt ? `since ${day(enteredAt)}` : 'now'
    return `${onCase.dueAt < onCase.now ? 'overdue since' : 'due'} ${day(onCase.dueAt)}`
  }
  if (onCase && enteredAt) return `entered ${day(enteredAt)}`
  return [name, step.responsible, step.deadline].filter(Boolean).join(' · ')
}

function drawStep(
  name: string,
  definition: SopDefinition,
  node: LaidNode,
  onCase: CaseOnProcedure | undefined,
  enteredAt: Date | undefined,
): string {
  const step = definition.steps[name] as SopDefinition['steps'][string]
  const classes = ['step']
  if (name === definition.initial_step) classes.push('initial')
  if (step.terminal) classes.push('terminal')
  if (step.exit) classes.push('exit')
  if (onCase && enteredAt) classes.push('visited')
  if (onCase?.step === name) {
    classes.push('current')
    if (onCase.dueAt && onCase.dueAt < onCase.now) classes.push('overdue')
  }
  const x = node.x - node.width / 2
  const y = node.y - node.height / 2
  const meta = stepMeta(name, step, onCase, enteredAt)
  return [
    `<g class="${classes.join(' ')}" data-step="${escapeHtml(name)}" transform="translate(${num(x)} ${num(y)})">`,
    `<title>${escapeHtml(`${step.title} (${name})`)}</title>`,
    `<rect width="${num(node.width)}" height="${node.height}" rx="${step.terminal ? 18 : 4}"/>`,
    `<text class="title" x="${num(node.width / 2)}" y="20" text-anchor="middle">${escapeHtml(step.title)}</text>`,
    `<text class="meta" x="${num(node.width / 2)}" y="37" text-anchor="middle">${escapeHtml(meta)}</text>`,
    '</g>',
  ].join('')
}

function drawEdge(edge: EdgeDrawing, laid: LaidEdge, takenAt: Date[] | undefined): string {
  const classes = ['edge']
  if (edge.declaredTo === '$previous') classes.push('returns')
  if (edge.declaredTo === '$current') classes.push('stays')
  if (takenAt) classes.push('taken')
  const tooltip = takenAt ? `${edge.action}: ${takenAt.map(day).join(', ')}` : edge.action
  const label = edge.label
    ? `<rect class="label-box" x="${num(laid.x - laid.width / 2)}" y="${num(laid.y - 7)}" width="${num(laid.width)}" height="14"/>` +
      `<text x="${num(laid.x)}" y="${num(laid.y + 3.5)}" text-anchor="middle">${escapeHtml(edge.label)}</text>`
    : ''
  return [
    `<g class="${classes.join(' ')}" data-action="${escapeHtml(edge.action)}" data-from="${escapeHtml(edge.from)}" data-to="${escapeHtml(edge.declaredTo)}">`,
    `<title>${escapeHtml(tooltip)}</title>`,
    `<path d="${curve(laid.points)}"/>`,
    label,
    '</g>',
  ].join('')
}

/** A smooth path through dagre's points: straight to the first midpoint, quadratic curves through the rest. */
function curve(points: readonly { x: number; y: number }[]): string {
  const [first, ...rest] = points
  if (!first) return ''
  if (rest.length < 2) return `M${num(first.x)},${num(first.y)}${rest.map((p) => ` L${num(p.x)},${num(p.y)}`).join('')}`
  let d = `M${num(first.x)},${num(first.y)}`
  for (let i = 0; i < rest.length - 1; i++) {
    const control = rest[i] as { x: number; y: number }
    const next = rest[i + 1] as { x: number; y: number }
    const end = i === rest.length - 2 ? next : { x: (control.x + next.x) / 2, y: (control.y + next.y) / 2 }
    d += ` Q${num(control.x)},${num(control.y)} ${num(end.x)},${num(end.y)}`
  }
  return d
}

function arrowMarker(id: string, colour: string): string {
  return `<marker id="${id}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="${colour}"/></marker>`
}

class Bounds {
  left = 0
  right = 0
  bottom = 0
  add(x: number, y: number, width: number, height: number): void {
    this.left = Math.min(this.left, x)
    this.right = Math.max(this.right, x + width)
    this.bottom = Math.max(this.bottom, y + height)
  }
}

function day(date: Date): string {
  return date.toISOString().slice(0, 10)
}

function num(value: number): string {
  return String(Math.round(value * 10) / 10)
}

/** The picture of each procedure as `docs/procedures/` keeps it: one file per id and version. */
export function procedureFiles(definitions: readonly SopDefinition[]): { file: string; svg: string }[] {
  return definitions.map((definition) => ({
    file: `${definition.id}.v${definition.version}.svg`,
    svg: procedureSvg(definition),
  }))
}
