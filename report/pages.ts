// The two report pages, assembled from tables and rendered plots (no file I/O).
import type { BonReport } from '../core/best-of-n.js';
import type { ComparisonTable } from '../core/comparison.js';
import { reportHtml, type ReportSection } from './html.js';
import { accuracyVsNSpec, beforeAfterSpec, plottedRows, selectedScoresSpec, tunedColours } from './plots.js';
import { renderSvg } from './render-svg.js';
import { bestOfNGrid, bestOfNHeading, bestOfNSummary, comparisonGrid, comparisonUnits, failedRewardModelLines, rewardHackingLine } from './tables.js';

/** Table 1 with its bars, and the selected-score histograms when there are scores to show. */
export async function comparisonPage(table: ComparisonTable, selectedScores: Record<string, number[]>): Promise<string> {
  const plotted = new Set(plottedRows(table));
  const unplotted = table.rows.filter((r) => !plotted.has(r)).map((r) => `${r.name}: no accuracy, so not in the plot.`);
  const sections: ReportSection[] = [
    { heading: 'Accuracy after one RAFT iteration', svg: await renderSvg(beforeAfterSpec(table)), table: comparisonGrid(table), notes: [comparisonUnits(table), 'Whiskers on the bars: ± one standard error.', ...unplotted] },
  ];
  const withScores = Object.fromEntries(Object.entries(selectedScores).filter(([, s]) => s.length > 0));
  if (Object.keys(withScores).length > 0) {
    sections.push({
      heading: 'Scores of the selected responses',
      svg: await renderSvg(selectedScoresSpec(withScores, tunedColours(table))),
      notes: ['One selected response per prompt: the one each reward model ranked highest.'],
    });
  }
  return reportHtml({ title: `PRM comparison: ${table.name}`, sections });
}

/** The accuracy-against-N plot, then one table per reward model and aggregation with its reward-hacking flag. */
export async function bestOfNPage(report: BonReport): Promise<string> {
  const sections: ReportSection[] = [
    {
      heading: 'Accuracy against N',
      svg: await renderSvg(accuracyVsNSpec(report)),
      notes: [bestOfNSummary(report), 'Shaded: best-of-N ± its standard deviation. Dashed: majority vote. Dotted: pass@N, the ceiling.'],
    },
    ...report.rewardModels.flatMap((model) =>
      model.tables.map((table) => ({ heading: bestOfNHeading(model, table), table: bestOfNGrid(table), notes: [rewardHackingLine(table), ...table.notes] })),
    ),
  ];
  const failed = failedRewardModelLines(report);
  if (failed.length > 0) sections.push({ heading: 'Failed reward models', notes: failed });
  return reportHtml({ title: `Best-of-N: ${report.name}`, sections });
}
