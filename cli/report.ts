// What a finished run prints: the accuracy table of an evaluation, the before → after of an iteration.
import type { CampaignView } from '../core/campaign.js';
import { campaignMarkdown } from '../report/campaign.js';
import type { BestOfNResult } from '../core/best-of-n.js';
import type { ComparisonResult } from '../core/comparison.js';
import { REFUSED_GROUP, refusedCount } from '../core/evaluation.js';
import type { DatasetAccuracy, EvaluationSummary } from '../core/manifests.js';
import type { LabelRunSummary } from '../core/labeling.js';
import type { PrmTrainingResult } from '../core/prm-training.js';
import type { RaftIterationResult } from '../core/raft.js';
import { accuracyStandardError, formatAccuracy, formatChange, pairedChange, percentText, signedPointsText, withinNoise } from '../core/stats.js';
import { bestOfNMarkdown, comparisonMarkdown } from '../report/markdown.js';

/** "41.2% ± 2.2": an accuracy on n questions with its standard error. */
const withStdErr = (p: number, n: number) => formatAccuracy(p, accuracyStandardError(p, n));

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')).join('\n');
}

export function formatAccuracyTable(summary: EvaluationSummary): string {
  // Refused questions count as wrong in the accuracy: the column says how many of the wrong answers they are.
  const rows = [['dataset', 'questions', 'correct', 'accuracy ± SE', 'truncated', 'refused']];
  for (const d of summary.datasets) {
    rows.push([d.dataset, String(d.total), String(d.correct), withStdErr(d.accuracy, d.total), String(d.truncated), String(refusedCount(d))]);
    const groups = Object.entries(d.groups).filter(([group]) => group !== REFUSED_GROUP);
    for (const [group, g] of groups.sort(([a], [b]) => a.localeCompare(b))) {
      rows.push([`  ${group}`, String(g.total), String(g.correct), withStdErr(g.accuracy, g.total), '']);
    }
  }
  return `policy ${summary.policy} (results in ${summary.runDir})\n${table(rows)}\n`;
}

/**
 * The selection line: right picks of the run's own mode against the baselines' on the same samples, and for a
 * reward model the share of the prompts it could have got right that it did.
 */
function selectionLine(s: RaftIterationResult['selection']): string {
  const baselines: Array<[string, string]> = [
    ['random', `random ${s.randomExpectedCorrect.toFixed(1)} (expected)`],
    ['majority', `majority ${s.majorityCorrect}`],
    ['oracle', `oracle ${s.promptsWithACorrectResponse} (prompts with a right response)`],
  ];
  // A mode's own count stands first; its baseline entry would repeat it, except random's expectation.
  const picks = [`${s.mode} ${s.selectedCorrect}`, ...baselines.filter(([mode]) => mode !== s.mode || mode === 'random').map(([, text]) => text)];
  const share =
    s.mode === 'prm' && s.promptsWithACorrectResponse > 0
      ? `; prm right on ${percentText(s.selectedCorrect / s.promptsWithACorrectResponse)}% of the ${s.promptsWithACorrectResponse} prompts with a right response`
      : '';
  const unscored = s.unscored ? `; ${s.unscored} responses unscored (refused by the PRM, never selected)` : '';
  const rejected = Object.keys(s.rejected).length ? `; rejected: ${Object.entries(s.rejected).map(([k, v]) => `${k} ${v}`).join(', ')}` : '';
  const scores = s.meanSelectedScore === null ? '' : `; selected score mean ${s.meanSelectedScore.toFixed(3)}, min ${s.minSelectedScore?.toFixed(3) ?? '-'}`;
  return `selected  ${s.kept}/${s.prompts} prompts kept a response (selection.mode ${s.mode})${scores}; right picks: ${picks.join(' · ')}${share}${unscored}${rejected}`;
}

export function formatIteration(r: RaftIterationResult): string {
  const lines = [
    `RAFT iteration (${r.runDir})`,
    `sampled   ${r.sampling.responses} responses for ${r.sampling.prompts} prompts (${r.sampling.correct} correct, ${r.sampling.truncated} cut at max_tokens, ${r.sampling.refused} prompts refused)`,
    selectionLine(r.selection),
    `SFT       ${r.sft.steps} steps, loss ${r.sft.lossFirst?.toFixed(3) ?? '?'} → ${r.sft.lossLast?.toFixed(3) ?? '?'} (batch ${r.sft.perDeviceBatchSize}×${r.sft.gradientAccumulationSteps})${r.sft.cached ? ', reused' : ''}`,
    `policy    ${r.policyBefore} → ${r.policyAfter}`,
    '',
  ];
  const rows = [['dataset', 'before', 'after', 'change']];
  for (const b of r.before.datasets) {
    const a: DatasetAccuracy | undefined = r.after.datasets.find((d) => d.dataset === b.dataset);
    const cell = (d: DatasetAccuracy) => `${withStdErr(d.accuracy, d.total)} (${d.correct}/${d.total}${refusedCount(d) > 0 ? `, ${refusedCount(d)} refused` : ''})`;
    // A result from before the evaluations were paired has no counts: its change is printed bare.
    const paired = r.change?.find((c) => c.dataset === b.dataset && c.total > 0);
    let change = '';
    if (a) {
      const delta = a.accuracy - b.accuracy;
      change = signedPointsText(delta);
      if (paired) {
        const { standardError: se } = pairedChange(paired.gained, paired.lost, paired.total);
        change = `${formatChange(delta, se, 'paired')}${withinNoise(delta, se) ? ' (within 2 SE: noise)' : ''}; gained ${paired.gained}, lost ${paired.lost}`;
      }
    }
    rows.push([b.dataset, cell(b), a ? cell(a) : '-', change]);
  }
  return `${lines.join('\n')}${table(rows)}\n`;
}

export function formatLabeling(s: LabelRunSummary): string {
  const run = s.runDir.split('/').at(-1) ?? s.runDir;
  return (
    `labeled ${s.steps} steps of ${s.solutions - s.incomplete} solutions to ${s.problems} problems (${s.correctSolutions} solutions correct) ` +
    `with ${s.completions} completions; generator ${s.generator}, completer ${s.completer}` +
    `${s.incomplete > 0 ? `; ${s.incomplete} solutions left out (a prefix was refused)` : ''}\n` +
    `counts in ${s.runDir}; export a training set with: prm-raft label export --run ${run} --kind er --eta 2 --format jsonl\n`
  );
}

/** The report's Markdown tables (failed reward models included), then the sampling and where the report is. */
export function formatBestOfN(r: BestOfNResult): string {
  const s = r.sampling;
  return (
    `${bestOfNMarkdown(r.report)}\n` +
    `sampled ${s.responses} responses for ${s.prompts} problems (${s.correct} correct, ${s.truncated} cut at max_tokens, ${s.refused} problems refused)\n` +
    `report ${r.files.html}\n`
  );
}

export function formatComparison(r: ComparisonResult): string {
  return `${comparisonMarkdown(r.table)}\nreport ${r.report.html}\n`;
}

/** The right report for whichever workflow finished. */
function formatPrmTraining(r: PrmTrainingResult): string {
  const p = r.provenance;
  const labels = p.labels === 'er' ? `ER(η = ${p.eta})` : p.labels;
  const loss = r.lossFirst !== null && r.lossLast !== null ? `, loss ${r.lossFirst.toFixed(3)} → ${r.lossLast.toFixed(3)}` : '';
  return (
    `PRM      ${r.checkpoint}${r.cached ? ' (trained before: reused)' : ''}\n` +
    `from     ${labels} labels of ${p.trainingData.count} solutions (${p.labelRunDir}), fine-tuned from ${p.base}\n` +
    `training ${r.steps} steps${loss}; provenance.json beside the weights\n`
  );
}

export function formatResult(type: string, result: unknown): string {
  if (type === 'raftIteration') return formatIteration(result as RaftIterationResult);
  if (type === 'comparePrms') return formatComparison(result as ComparisonResult);
  if (type === 'labelPrmData') return formatLabeling(result as LabelRunSummary);
  if (type === 'bestOfN') return formatBestOfN(result as BestOfNResult);
  if (type === 'trainPrm') return formatPrmTraining(result as PrmTrainingResult);
  if (type === 'raftCampaign') return campaignMarkdown(result as CampaignView);
  return formatAccuracyTable(result as EvaluationSummary);
}
