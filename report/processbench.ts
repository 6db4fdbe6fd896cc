// `prm-raft prm eval`'s tables: the metric at the chosen threshold and the threshold sweep, as Markdown and as a page.
import { PUBLISHED, type Sweep } from '../core/processbench.js';
import { reportHtml } from './html.js';
import { markdownTable } from './markdown.js';
import { percent, type Grid } from './tables.js';

/** How the threshold was chosen, in words. */
function thresholdLine(benchmark: string, sweep: Sweep): string {
  const how = sweep.fixed
    ? 'given by --threshold'
    : `best F1 on ${sweep.tunedOn} in the sweep${sweep.chosen.subsets.length === 1 ? ', tuned on the records it scores: an upper bound' : ''}`;
  return `${benchmark}: the predicted error is the first step scored below ${sweep.chosen.threshold} (${how}). Accuracy and F1 in %.`;
}

export function resultsGrid(sweep: Sweep): Grid {
  const { chosen } = sweep;
  return {
    columns: [
      { label: 'subset', align: 'left' },
      { label: 'n', align: 'right' },
      { label: 'error accuracy', align: 'right' },
      { label: 'error-free accuracy', align: 'right' },
      { label: 'F1', align: 'right' },
    ],
    rows: [
      ...chosen.subsets.map((s) => [s.subset, String(s.n), percent(s.error_accuracy), percent(s.correct_accuracy), percent(s.f1)]),
      ['average F1', '', '', '', percent(chosen.average_f1)],
    ],
  };
}

/** F1 per subset and on average at every threshold; the one used is marked. */
export function sweepGrid(sweep: Sweep): Grid {
  const names = sweep.chosen.subsets.map((s) => s.subset);
  return {
    columns: [{ label: 'threshold', align: 'right' }, ...names.map((label) => ({ label, align: 'right' as const })), { label: 'average F1', align: 'right' }],
    rows: sweep.rows.map((row) => [
      `${row.threshold.toFixed(2)}${row.threshold === sweep.chosen.threshold ? ' ←' : ''}`,
      ...row.subsets.map((s) => percent(s.f1)),
      percent(row.average_f1),
    ]),
  };
}

/** The published mean F1 figures, for ProcessBench only (tinymath is this project's own). */
function publishedLines(benchmark: string): string[] {
  return benchmark === 'processbench' ? PUBLISHED.map((p) => `${p.model}: ${percent(p.averageF1)} (${p.source})`) : [];
}

export function prmEvalMarkdown(benchmark: string, sweep: Sweep): string {
  const published = publishedLines(benchmark);
  return [
    `${thresholdLine(benchmark, sweep)}\n`,
    markdownTable(resultsGrid(sweep)),
    ...(published.length > 0 ? ['Published average F1 on ProcessBench, for comparison:\n', `${published.map((p) => `- ${p}`).join('\n')}\n`] : []),
    'Threshold sweep (F1 in %; ← the threshold used above):\n',
    markdownTable(sweepGrid(sweep)),
  ].join('\n');
}

export function prmEvalPage(benchmark: string, sweep: Sweep): string {
  const published = publishedLines(benchmark);
  return reportHtml({
    title: `PRM evaluation on ${benchmark}`,
    sections: [
      { heading: 'First-error accuracy and F1', table: resultsGrid(sweep), notes: [thresholdLine(benchmark, sweep)] },
      ...(published.length > 0 ? [{ heading: 'Published average F1 on ProcessBench', notes: published }] : []),
      { heading: 'Threshold sweep (F1 in %)', table: sweepGrid(sweep), notes: ['←: the threshold used above.'] },
    ],
  });
}
