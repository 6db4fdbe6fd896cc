// Stage: the comparison's report — tables, plots and the selected-score histograms read from each iteration's picks.
import type { ComparisonTable } from '../core/comparison.js';
import type { ArtifactManifest } from '../core/manifests.js';
import { writeComparisonReport, type ComparisonReportFiles } from '../report/write-report.js';
import { readJsonlLines } from '../store/files.js';

export async function writeComparisonReportFiles(input: {
  runDir: string;
  table: ComparisonTable;
  selected: Record<string, ArtifactManifest>;
}): Promise<ComparisonReportFiles> {
  const scores: Record<string, number[]> = {};
  for (const [name, manifest] of Object.entries(input.selected)) {
    scores[name] = [];
    for await (const { text } of readJsonlLines(manifest.uri)) {
      const { score } = JSON.parse(text) as { score: number | null };
      if (score !== null) scores[name].push(score);
    }
  }
  return writeComparisonReport(input.runDir, input.table, scores);
}
