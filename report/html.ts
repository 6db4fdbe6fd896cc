// One self-contained HTML page: inline CSS and SVG, no scripts, nothing fetched, so it opens offline.
import type { Grid } from './tables.js';

export interface ReportSection {
  heading: string;
  table?: Grid;
  /** SVG markup from renderSvg: trusted, inserted as is. */
  svg?: string;
  notes?: string[];
}

export interface ReportPage {
  title: string;
  sections: ReportSection[];
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

// The policy forbids every fetch and every script: a report that tried either would show it in the console.
const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

const CSS = `
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; max-width: 1100px; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: 1.5rem; }
h2 { font-size: 1.2rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .3rem; }
figure { margin: 1rem 0; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: 1rem 0; font-variant-numeric: tabular-nums; }
th, td { padding: .3rem .7rem; border-bottom: 1px solid #e3e3e3; text-align: left; vertical-align: top; }
th { border-bottom: 2px solid #bbb; font-weight: 600; }
.num { text-align: right; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafafa; }
ul.notes { color: #555; font-size: .92rem; padding-left: 1.2rem; }
`;

function tableHtml(grid: Grid): string {
  const cls = (i: number) => (grid.columns[i]?.align === 'right' ? ' class="num"' : '');
  const head = grid.columns.map((c, i) => `<th${cls(i)}>${escapeHtml(c.label)}</th>`).join('');
  const body = grid.rows.map((row) => `<tr>${row.map((cell, i) => `<td${cls(i)}>${escapeHtml(cell)}</td>`).join('')}</tr>`).join('\n');
  return `<table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

function sectionHtml(s: ReportSection): string {
  const parts = [`<h2>${escapeHtml(s.heading)}</h2>`];
  if (s.svg !== undefined) parts.push(`<figure>${s.svg}</figure>`);
  if (s.table !== undefined) parts.push(tableHtml(s.table));
  if (s.notes?.length) parts.push(`<ul class="notes">${s.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>`);
  return `<section>\n${parts.join('\n')}\n</section>`;
}

export function reportHtml(page: ReportPage): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(page.title)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>${escapeHtml(page.title)}</h1>
${page.sections.map(sectionHtml).join('\n')}
</body>
</html>
`;
}
