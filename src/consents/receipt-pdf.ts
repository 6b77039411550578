import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { Bidi } from 'bidi-js'
import { create } from 'fontkit'
import PDFDocument from 'pdfkit'
import type { Block, Receipt } from './receipt.js'

// The receipt as a PDF that embeds its fonts (Noto Sans for Latin and Cyrillic, Noto Naskh Arabic;
// both SIL Open Font License). pdfkit shapes each run of text with fontkit (Arabic letters take
// their joined forms); the Unicode bidirectional algorithm (bidi-js) orders the runs of a line,
// so that Arabic reads right to left with numbers, references and Latin names inside it left to
// right. Lines are broken here, on spaces, before that ordering.

const require = createRequire(import.meta.url)
// This build of Noto Naskh Arabic has one glyph per letter form, each mapped back to its letter,
// so the text copies and extracts as written (builds that draw letters as a shared skeleton plus
// dots do not). Its package exports no file paths: the fonts sit beside its entry point.
const arabicFonts = join(dirname(require.resolve('@embedpdf/fonts-arabic')), '..', 'fonts')
const fonts = Object.entries({
  sans: require.resolve('@expo-google-fonts/noto-sans/400Regular/NotoSans_400Regular.ttf'),
  sansBold: require.resolve('@expo-google-fonts/noto-sans/700Bold/NotoSans_700Bold.ttf'),
  arabic: join(arabicFonts, 'NotoNaskhArabic-Regular.ttf'),
  arabicBold: join(arabicFonts, 'NotoNaskhArabic-Bold.ttf'),
}).map(([name, path]) => [name, create(readFileSync(path))] as const)

// Its CommonJS build exports the factory itself, which its type declarations call a default export.
const bidi = (require('bidi-js') as () => Bidi)()
const ARABIC = /[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]/
const MARGIN = 56

interface Style {
  size: number
  bold?: boolean
  indent?: number
  gapBefore?: number
  colour?: string
}

const styles: Record<Block['kind'], Style> = {
  title: { size: 20, bold: true, gapBefore: 0 },
  heading: { size: 14, bold: true, gapBefore: 14 },
  subheading: { size: 12, bold: true, gapBefore: 8 },
  paragraph: { size: 11, gapBefore: 6 },
  fact: { size: 11, gapBefore: 4 },
  item: { size: 11, indent: 16, gapBefore: 3 },
  note: { size: 9, gapBefore: 18, colour: '#555555' },
}

export function receiptPdf(receipt: Receipt): Promise<Buffer> {
  const doc = new PDFDocument({
    size: 'A4',
    margin: MARGIN,
    lang: receipt.language,
    displayTitle: true,
    info: { Title: receipt.title, Creator: 'trm-api' },
  })
  // Parsed once: pdfkit takes a fontkit font as it is (its types say only files and bytes) and
  // keeps its own subset of it per document.
  for (const [name, font] of fonts) doc.registerFont(name, font as unknown as PDFKit.Mixins.PDFFontSource)
  const chunks: Buffer[] = []
  doc.on('data', (chunk: Buffer) => chunks.push(chunk))
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)))
    doc.on('error', reject)
  })
  const writer = new LineWriter(doc, receipt.direction === 'rtl')
  for (const block of receipt.blocks) {
    const style = styles[block.kind]
    const text =
      block.kind === 'fact'
        ? `${block.label}: ${block.value}`
        : block.kind === 'item'
          ? `• ${block.label}${block.text === undefined ? '' : `: ${block.text}`}`
          : block.text
    writer.paragraph(text, { ...style, bold: style.bold || (block.kind === 'paragraph' && block.strong) })
  }
  doc.end()
  return done
}

class LineWriter {
  private y = MARGIN

  constructor(
    private readonly doc: PDFKit.PDFDocument,
    private readonly rtl: boolean,
  ) {}

  paragraph(text: string, style: Style): void {
    this.y += style.gapBefore ?? 0
    const width = this.doc.page.width - 2 * MARGIN - (style.indent ?? 0)
    const lineHeight = style.size * 1.6
    for (const line of this.wrap(text, width, style)) {
      if (this.y + lineHeight > this.doc.page.height - MARGIN) {
        this.doc.addPage()
        this.y = MARGIN
      }
      this.draw(line, style)
      this.y += lineHeight
    }
  }

  /** Words on lines no wider than the page; a word is measured once, a space in the text font. */
  private wrap(text: string, width: number, style: Style): string[] {
    const space = this.width(' ', false, style)
    const lines: string[] = []
    let current = ''
    let used = 0
    for (const word of text.split(/\s+/).filter(Boolean)) {
      const wide = this.measure(word, style)
      if (current && used + space + wide > width) {
        lines.push(current)
        current = word
        used = wide
      } else {
        used += current ? space + wide : wide
        current = current ? `${current} ${word}` : word
      }
    }
    if (current) lines.push(current)
    return lines
  }

  private measure(line: string, style: Style): number {
    return scriptRuns(line).reduce((sum, run) => sum + this.width(run.text, run.arabic, style), 0)
  }

  private width(text: string, arabic: boolean, style: Style): number {
    this.font(arabic, style)
    return this.doc.widthOfString(text)
  }

  private font(arabic: boolean, style: Style): void {
    const name = arabic ? (style.bold ? 'arabicBold' : 'arabic') : style.bold ? 'sansBold' : 'sans'
    this.doc.font(name).fontSize(style.size)
  }

  /** Draws one line: runs in visual order, each shaped in its logical order by fontkit. */
  private draw(line: string, style: Style): void {
    const runs = visualRuns(line, this.rtl)
    const widths = runs.map((run) => this.width(run.text, run.arabic, style))
    const total = widths.reduce((sum, width) => sum + width, 0)
    const indent = style.indent ?? 0
    let x = this.rtl ? this.doc.page.width - MARGIN - indent - total : MARGIN + indent
    this.doc.fillColor(style.colour ?? '#111111')
    runs.forEach((run, index) => {
      this.font(run.arabic, style)
      this.doc.text(run.text, x, this.y, { lineBreak: false })
      x += widths[index] ?? 0
    })
  }
}

interface Run {
  text: string
  arabic: boolean
}

/** Maximal runs of Arabic letters and of everything else, in logical order. */
function scriptRuns(line: string): Run[] {
  const runs: Run[] = []
  for (const char of line) {
    const arabic = ARABIC.test(char)
    const last = runs.at(-1)
    if (last && last.arabic === arabic) last.text += char
    else runs.push({ text: char, arabic })
  }
  return runs
}

/**
 * The runs of a line in the order they are drawn, left to right. An Arabic run keeps its logical
 * order (fontkit shapes it and lays it right to left); any other run at a right-to-left level is
 * reversed here, its brackets mirrored.
 */
function visualRuns(line: string, rtl: boolean): Run[] {
  const chars = [...line]
  const text = chars.join('')
  const embedding = bidi.getEmbeddingLevels(text, rtl ? 'rtl' : 'ltr')
  const { levels } = embedding
  // bidi-js counts UTF-16 units; the receipt's scripts are all in the Basic Multilingual Plane.
  const order = chars.map((_, index) => index)
  for (const [start = 0, end = -1] of bidi.getReorderSegments(text, embedding)) {
    order.splice(start, end - start + 1, ...order.slice(start, end + 1).reverse())
  }
  const runs: (Run & { odd: boolean })[] = []
  let previous = -2
  for (const index of order) {
    const char = chars[index] ?? ''
    const arabic = ARABIC.test(char)
    const odd = ((levels[index] ?? 0) & 1) === 1
    const last = runs.at(-1)
    const step = odd ? -1 : 1
    if (last && last.arabic === arabic && last.odd === odd && index === previous + step) {
      last.text = odd && arabic ? char + last.text : last.text + char
    } else {
      runs.push({ text: char, arabic, odd })
    }
    previous = index
  }
  return runs.map(({ text: run, arabic, odd }) => ({
    arabic,
    text: odd && !arabic ? [...run].map((char) => bidi.getMirroredCharacter(char) ?? char).join('') : run,
  }))
}
