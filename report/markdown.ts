// Markdown and CSV renderings of the report tables, for table.md / table.csv and the README.
import type { BonReport } from '../core/best-of-n.js';
import type { ComparisonTable } from '../core/comparison.js';
import { bestOfNGrid, bestOfNHeading, bestOfNSummary, comparisonGrid, comparisonUnits, failedRewardModelLines, rewardHackingLine, type Grid } from './tables.js';

/** A pipe or a line break inside a cell would end the cell or the row; a '<' could open an HTML tag. */
function mdCell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/\s*[\r\n]+\s*/g, ' ');
}

export function markdownTable(grid: Grid): string {
  const line = (cells: string[]) => `| ${cells.map(mdCell).join(' | ')} |`;
  const rule = grid.columns.map((c) => (c.align === 'right' ? '---:' : '---'));
  return [line(grid.columns.map((c) => c.label)), `|${rule.join('|')}|`, ...grid.rows.map(line)].join('\n') + '\n';
}

export function comparisonMarkdown(table: ComparisonTable): string {
  return `## ${mdCell(table.name)}\n\n${comparisonUnits(table)}\n\n${markdownTable(comparisonGrid(table))}`;
}

export function bestOfNMarkdown(report: BonReport): string {
  const parts = [`## ${mdCell(report.name)}\n\n${bestOfNSummary(report)}\n`];
  for (const model of report.rewardModels) {
    for (const table of model.tables) {
      const notes = [rewardHackingLine(table), ...table.notes].map((n) => `- ${mdCell(n)}`).join('\n');
      parts.push(`### ${mdCell(bestOfNHeading(model, table))}\n\n${markdownTable(bestOfNGrid(table))}\n${notes}\n`);
    }
  }
  const failed = failedRewardModelLines(report);
  if (failed.length > 0) parts.push(`### Failed reward models\n\n${failed.map((f) => `- ${mdCell(f)}`).join('\n')}\n`);
  return parts.join('\n');
}

/** RFC 4180: quote a field that holds a comma, a quote or a line break. */
function csvField(value: string | number | null | undefined): string {
  const s = value == null ? '' : String(value);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Machine-readable: fractions at full precision, empty fields for missing numbers. */
export function comparisonCsv(table: ComparisonTable): string {
  const header = [
    'policy',
    'kind',
    ...table.datasets.flatMap((d) => [`${d}_accuracy`, `${d}_accuracy_se`, `${d}_delta`, `${d}_delta_se`, `${d}_gained`, `${d}_lost`]),
    'selection_precision',
    'mean_selected_score',
    'error',
  ];
  const rows = table.rows.map((r) => [
    r.name,
    r.kind,
    ...table.datasets.flatMap((d) => [r.accuracy[d], r.accuracyStdErr[d], r.delta[d], r.deltaStdErr[d], r.gained[d], r.lost[d]]),
    r.selectionPrecision,
    r.meanSelectedScore,
    r.error,
  ]);
  return [header, ...rows].map((cells) => cells.map(csvField).join(',')).join('\n') + '\n';
}
