// The report tables as cells of text: Markdown and HTML both render these, so they always show the same numbers.
import type { BonReport, BonTable } from '../core/best-of-n.js';
import type { ComparisonTable } from '../core/comparison.js';
import { percentText, signedPointsText } from '../core/stats.js';

export interface Column {
  label: string;
  align: 'left' | 'right';
}

export interface Grid {
  columns: Column[];
  rows: string[][];
}

/** What a cell shows for a number that is not there (a failed run, or the baseline's own change). */
export const MISSING = '—';

/** A fraction in [0, 1] as percent with one decimal: 0.7791 → "77.9". */
export function percent(x: number | null | undefined): string {
  return x == null ? MISSING : percentText(x);
}

/** A change in accuracy (a fraction) as signed percentage points: 0.016 → "+1.6". */
export function signedPoints(x: number | null | undefined): string {
  return x == null ? MISSING : signedPointsText(x);
}

function score(x: number | null): string {
  return x === null ? MISSING : x.toFixed(3);
}

/** The paper's Table 1: baseline and each reward model, accuracy and change per dataset, selection diagnostics. */
export function comparisonGrid(table: ComparisonTable): Grid {
  const failed = table.rows.some((r) => r.error !== null);
  // Tables written before the evaluations were paired have no counts: no column for them.
  const counted = table.rows.some((r) => table.datasets.some((d) => r.gained[d] != null));
  const columns: Column[] = [
    { label: 'Policy', align: 'left' },
    ...table.datasets.flatMap((d): Column[] => [
      { label: `${d} (%)`, align: 'right' },
      { label: `± SE`, align: 'right' },
      { label: `Δ ${d}`, align: 'right' },
      { label: `± SE`, align: 'right' },
      ...(counted ? [{ label: 'Gained/lost', align: 'right' } as const] : []),
    ]),
    { label: 'Selection precision (%)', align: 'right' },
    { label: 'Mean selected score', align: 'right' },
    // Only a table with a failed row needs the column; the others stay narrow.
    ...(failed ? [{ label: 'Error', align: 'left' } as const] : []),
  ];
  const rows = table.rows.map((r) => [
    r.name,
    ...table.datasets.flatMap((d) => [
      percent(r.accuracy[d]),
      percent(r.accuracyStdErr[d]),
      signedPoints(r.delta[d]),
      percent(r.deltaStdErr[d]),
      ...(counted ? [gainedLost(r.gained[d], r.lost[d])] : []),
    ]),
    percent(r.selectionPrecision),
    score(r.meanSelectedScore),
    ...(failed ? [r.error ?? ''] : []),
  ]);
  return { columns, rows };
}

/** "136/49": questions gained and lost against the baseline. */
function gainedLost(gained: number | null | undefined, lost: number | null | undefined): string {
  return gained == null || lost == null ? MISSING : `${gained}/${lost}`;
}

/** One reward model's best-of-N curve: N, best-of-N ± spread, the votes, and the pass@N ceiling. */
export function bestOfNGrid(table: BonTable): Grid {
  const short = table.results.some((r) => r.problems_short > 0);
  const columns: Column[] = [
    { label: 'N', align: 'right' },
    { label: 'Best-of-N (%)', align: 'right' },
    { label: 'Majority (%)', align: 'right' },
    { label: 'Weighted (%)', align: 'right' },
    { label: 'Pass@N (%)', align: 'right' },
    ...(short ? [{ label: 'Problems with fewer than N responses', align: 'right' } as const] : []),
  ];
  const rows = table.results.map((r) => [
    String(r.n),
    `${percent(r.best_of_n)} ± ${percent(r.spread)}`,
    percent(r.majority),
    percent(r.weighted),
    percent(r.pass_at_n),
    ...(short ? [String(r.problems_short)] : []),
  ]);
  return { columns, rows };
}

/** The heading of one reward model's table: which model, which aggregation, how the spread was measured. */
export function bestOfNHeading(model: BonReport['rewardModels'][number], table: BonTable): string {
  // An ORM gives one score per response: there is nothing to aggregate.
  const scoring = model.kind === 'orm' ? 'one score per response' : `${table.aggregate} of step scores`;
  return `${model.name} (${model.kind.toUpperCase()}, ${scoring}, ${table.draws} draws, seed ${table.seed})`;
}

/** The reward-hacking flag as a sentence, said either way so a reader knows it was checked. */
export function rewardHackingLine(table: BonTable): string {
  const h = table.reward_hacking;
  if (h === null) return 'Reward hacking: no (best-of-N does not fall past its peak).';
  return `Reward hacking: yes. Best-of-N peaks at ${percent(h.peak)}% (N = ${h.peak_n}) and falls to ${percent(h.last)}% at N = ${h.last_n}.`;
}

export function bestOfNSummary(report: BonReport): string {
  return `${report.problems} problems, ${report.samplesPerProblem} responses sampled per problem. Accuracy in percent; best-of-N is the mean over random N-subsets ± their standard deviation.`;
}

/** What the comparison table's numbers mean, its change's standard error in the form the table was written with. */
export function comparisonUnits(table: ComparisonTable): string {
  const deltaSe =
    table.deltaStdErrForm === 'paired'
      ? 'and for Δ the paired √((g + l)/n − Δ²)/√n over the g questions gained and l lost against the baseline ' +
        '(both evaluations grade the same questions, so only those that changed add noise)'
      : 'and √(SE₁² + SE₂²) for Δ (conservative: both evaluations use one test set)';
  return (
    'Accuracy in percent; Δ in percentage points against the baseline. ± SE: one standard error, √(p(1−p)/n) over n questions, ' +
    `${deltaSe}; a Δ within 2 SE is noise. ` +
    'The oracle, random and majority rows select without a reward model: a right response, a random one, one with the most common answer.'
  );
}

/** One line per reward model that has no table because it failed, so a reader knows it was tried. */
export function failedRewardModelLines(report: BonReport): string[] {
  return (report.failed ?? []).map((f) => `${f.name} (${f.kind.toUpperCase()}) has no table: ${f.error}`);
}
