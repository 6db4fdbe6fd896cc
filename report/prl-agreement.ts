// The PRL-vs-ER agreement table (core/prl-agreement.ts) as Markdown, for table.md and the README.
import type { AgreementTable } from '../core/prl-agreement.js';
import { markdownTable } from './markdown.js';
import { MISSING, type Grid } from './tables.js';

function fixed(x: number | null, digits = 3): string {
  return x === null ? MISSING : x.toFixed(digits);
}

export function agreementGrid(table: AgreementTable): Grid {
  return {
    columns: [
      { label: 'Step', align: 'left' },
      { label: 'n', align: 'right' },
      { label: 'Pearson r', align: 'right' },
      { label: 'Mean |PRL − ER|', align: 'right' },
      { label: 'Mean PRL', align: 'right' },
      { label: 'Mean ER', align: 'right' },
    ],
    rows: table.rows.map((r) => [r.position, String(r.n), fixed(r.pearson), fixed(r.meanAbsDiff), fixed(r.meanPrl), fixed(r.meanEr)]),
  };
}

/** A heading line, what the pairs are, and the table; `eta` is the η both label kinds were computed at. */
export function agreementMarkdown(table: AgreementTable, eta: number, title = 'PRL vs ER labels'): string {
  const last = table.lastStep === 'exclude' ? "each solution's last step left out (both labels are its outcome there)" : 'last steps included';
  const note = `η = ${eta}; ${table.overall.n} steps of ${table.solutions} solutions, ${last}; positions from ${table.maxPosition} on pooled.`;
  return `## ${title}\n\n${note}\n\n${markdownTable(agreementGrid(table))}`;
}
