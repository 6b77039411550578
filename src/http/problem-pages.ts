import escapeHtml from 'escape-html'
import type { FastifyInstance } from 'fastify'
import { ProblemError } from './problem.js'
import {
  isProblemName,
  type ProblemEntry,
  problemCatalogue,
  problemNames,
  problemPage,
  problemType,
} from './problems.js'

/**
 * Each problem type is described at `/problems/{name}` (and all of them at `/problems`): what
 * happened and what to do, as HTML, or as JSON for `Accept: application/json`. No key needed.
 */
export function registerProblemPages(app: FastifyInstance): void {
  const options = { config: { public: true }, schema: { hide: true } }
  app.get('/problems', options, async (request, reply) => {
    if (wantsJson(request.headers.accept)) {
      return reply.send(problemNames.map((name) => ({ name, ...describe(name, problemCatalogue[name]) })))
    }
    const rows = problemNames
      .map((name) => {
        const entry = problemCatalogue[name]
        return `<tr><td><a href="${problemPage(name)}"><code>${name}</code></a></td><td>${entry.status}</td><td>${escapeHtml(entry.title)}</td></tr>`
      })
      .join('\n')
    return reply.type('text/html; charset=utf-8').send(
      page(
        'Problem types',
        `<p>Every error is an RFC 9457 <code>application/problem+json</code> document whose <code>type</code> is <code>urn:trm:problem:{name}</code>; it is described at <code>/problems/{name}</code>, which the <code>Link</code> header of the error names.</p>
<table><thead><tr><th>Name</th><th>Status</th><th>Title</th></tr></thead><tbody>
${rows}
</tbody></table>`,
      ),
    )
  })
  app.get<{ Params: { name: string } }>('/problems/:name', options, async (request, reply) => {
    const { name } = request.params
    if (!isProblemName(name)) throw new ProblemError(404, `There is no problem type ${name}; see /problems.`)
    const entry = problemCatalogue[name]
    if (wantsJson(request.headers.accept)) return reply.send({ name, ...describe(name, entry) })
    return reply.type('text/html; charset=utf-8').send(
      page(
        entry.title,
        `<p><code>type: ${problemType(name)}</code> · HTTP ${entry.status}</p>
<h2>What happened</h2>
<p>${inline(entry.happened)}</p>
<h2>What to do</h2>
<p>${inline(entry.todo)}</p>
<p>Quote the <code>request_id</code> of the problem when you report it. <a href="/problems">All problem types</a> · <a href="/docs">API documentation</a></p>`,
      ),
    )
  })
}

function describe(name: Parameters<typeof problemType>[0], entry: ProblemEntry) {
  return { type: problemType(name), ...entry }
}

function wantsJson(accept: string | undefined): boolean {
  return accept !== undefined && /application\/(problem\+)?json/.test(accept) && !accept.includes('text/html')
}

/** The catalogue's `code` spans, as HTML. */
function inline(text: string): string {
  return escapeHtml(text).replaceAll(/`([^`]+)`/g, '<code>$1</code>')
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)} · trm-api</title>
<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;line-height:1.5}code{background:#f3f3f3;padding:0 .2em}td{padding:.1rem .6rem}</style>
</head><body><h1>${escapeHtml(title)}</h1>
${body}
</body></html>
`
}
