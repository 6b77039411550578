import escapeHtml from 'escape-html'
import type { components } from '../../openapi/dist/types.js'

type Schemas = components['schemas']
type Access = Schemas['SubjectAccessAccess']

/**
 * The subject access export as a document a person can read: every value escaped, no script, no
 * external resource. Data the person gave is shown as it is held, field by field.
 */
export function renderSubjectAccessHtml(
  exported: Schemas['SubjectAccessExport'],
  organisationNames: ReadonlyMap<string, string>,
): string {
  const name = (id: string) => organisationNames.get(id) ?? id
  const { case: held } = exported
  const sections = Object.entries(held.sections)
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Personal data held – case ${text(held.reference)}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.4; }
table { border-collapse: collapse; width: 100%; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #bbb; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; }
dt { font-weight: 600; }
</style>
</head>
<body>
<h1>Personal data held about you</h1>
<p>Case <strong>${text(held.reference)}</strong>, as held by ${text(name(exported.organisation_id))} on
${text(exported.generated_at)}${exported.complete ? '' : ' (the part of the case this organisation may read)'}.
This document answers a request under Article 15 of the General Data Protection Regulation.</p>

<h2>About you</h2>
${render(held.profile)}

<h2>Information by category</h2>
${sections.length === 0 ? '<p>None.</p>' : sections.map(([category, section]) => `<h3>${text(category)}</h3>\n${render(section)}`).join('\n')}

<h2>Assessments and records</h2>
${table(
  ['Recorded', 'Kind', 'Category', 'By', 'Content'],
  exported.records.map((record) => [
    record.recorded_at,
    record.assessment ?? record.kind,
    record.category,
    name(record.recorded_by_organisation_id),
    markup(render(record.data)),
  ]),
)}

<h2>Documents</h2>
${table(
  ['Uploaded', 'File', 'Category', 'Type and size', 'By', 'SHA-256'],
  (exported.attachments ?? []).map((attachment) => [
    attachment.uploaded_at,
    attachment.file_name,
    attachment.category,
    `${attachment.media_type}, ${attachment.size} bytes`,
    name(attachment.uploaded_by_organisation_id),
    attachment.sha256,
  ]),
)}

<h2>Your consents</h2>
${table(
  ['Given', 'Status', 'What, to whom, for what', 'Informed of transfer risks'],
  exported.consents.map((consent) => [
    consent.given_at,
    consent.withdrawn_at ? `${consent.status} (${consent.withdrawn_at})` : consent.status,
    markup(
      consent.provisions
        .map(
          (p) =>
            `${text(p.categories.join(', '))} → ${text(p.recipients.map(name).join(', '))} for ${text(p.purposes.join(', '))}`,
        )
        .join('<br>'),
    ),
    consent.informed_of_transfer_risks ? 'yes' : 'no',
  ]),
)}

<h2>Who received your data</h2>
${table(
  ['Sent', 'To', 'Country', 'What', 'Received', 'Legal basis of the transfer'],
  exported.packets.map((packet) => [
    packet.sent_at,
    packet.recipient_name,
    packet.recipient_country,
    `${packet.kind}: ${packet.included_categories.join(', ') || 'profile only'}`,
    packet.received_at ?? 'not yet read',
    packet.transfer
      ? `${packet.transfer.legal_basis} (${packet.transfer.article})${packet.transfer.agreement_reference ? `: ${packet.transfer.agreement_reference}` : ''}`
      : 'inside the EU/EEA',
  ]),
)}

<h2>Who read your data</h2>
${accessTable(exported.reads)}

<h2>Who changed your data</h2>
${accessTable(exported.changes)}
</body>
</html>
`
}

function text(value: unknown): string {
  return escapeHtml(String(value))
}

function accessTable(accesses: Access[]): string {
  return table(
    ['When', 'Organisation', 'Who', 'What'],
    accesses.map((access) => [access.at, access.organisation_name, access.principal_name, access.action]),
  )
}

/** A table of cells, each escaped unless it is markup this module built. */
function table(headers: string[], rows: unknown[][]): string {
  if (rows.length === 0) return '<p>None.</p>'
  const head = `<tr>${headers.map((header) => `<th>${text(header)}</th>`).join('')}</tr>`
  const body = rows
    .map((row) => `<tr>${row.map((cell) => `<td>${isMarkup(cell) ? cell.html : text(cell)}</td>`).join('')}</tr>`)
    .join('\n')
  return `<table>\n${head}\n${body}\n</table>`
}

interface Markup {
  html: string
}

function markup(html: string): Markup {
  return { html }
}

function isMarkup(value: unknown): value is Markup {
  return typeof value === 'object' && value !== null && 'html' in value
}

/** Nested data as definition lists and lists: keys and values escaped. */
function render(value: unknown): string {
  if (Array.isArray(value)) {
    return value.length === 0 ? '—' : `<ul>${value.map((item) => `<li>${render(item)}</li>`).join('')}</ul>`
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
    if (entries.length === 0) return '—'
    return `<dl>${entries.map(([key, item]) => `<dt>${text(key.replaceAll('_', ' '))}</dt><dd>${render(item)}</dd>`).join('')}</dl>`
  }
  return value === null || value === undefined ? '—' : text(value)
}
