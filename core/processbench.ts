// ProcessBench (Zheng et al. 2024, arXiv 2412.06559): how well a PRM finds the first wrong step of a solution.
// The records, the step scores and the metric; no I/O.
import { z } from 'zod';
import { BadInputError } from './errors.js';

const fraction = z.number().min(0, { error: 'expected scores in [0, 1]' }).max(1, { error: 'expected scores in [0, 1]' });

/** The benchmarks `prm-raft prm eval` knows: ProcessBench, and tinymath's exact-label counterpart. */
export const BenchmarkName = z.enum(['processbench', 'tinymath']);
export type BenchmarkName = z.infer<typeof BenchmarkName>;

/** One solution with its human (or, for tinymath, exact) first-error label: ProcessBench's own JSON record. */
export const BenchmarkRecord = z
  .object({
    id: z.string().min(1),
    generator: z.string(),
    problem: z.string(),
    steps: z.array(z.string()).min(1),
    final_answer_correct: z.boolean(),
    /** The 0-based index of the earliest wrong step, or -1 when every step is right. */
    label: z.int().min(-1),
  })
  .refine((r) => r.label < r.steps.length, { error: 'label: expected -1 or the index of one of the steps', path: ['label'] });
export type BenchmarkRecord = z.infer<typeof BenchmarkRecord>;

/** One subset's records (ProcessBench: gsm8k, math, olympiadbench, omnimath; tinymath: one). */
export interface BenchmarkSubset {
  subset: string;
  records: BenchmarkRecord[];
}

/** A line of `prm-raft prm eval --scores FILE.jsonl`: a PRM's scores for one record, one per step. */
export const StepScoresLine = z.strictObject({
  subset: z.string().min(1),
  id: z.string().min(1),
  step_scores: z.array(fraction),
});
export type StepScoresLine = z.infer<typeof StepScoresLine>;

/** One subset's result; accuracies and F1 are fractions in [0, 1]. */
export const SubsetResult = z.strictObject({
  subset: z.string(),
  /** Share of the records with an error whose predicted first error is the labelled one. */
  error_accuracy: z.number().min(0).max(1),
  /** Share of the error-free records predicted error-free. */
  correct_accuracy: z.number().min(0).max(1),
  /** The harmonic mean of the two (0 when both are 0). */
  f1: z.number().min(0).max(1),
  n: z.int().nonnegative(),
});
export type SubsetResult = z.infer<typeof SubsetResult>;

/** What `prm-raft prm eval --json` prints: the metric at one threshold. */
export const PrmEvalOutput = z.strictObject({
  threshold: z.number(),
  subsets: z.array(SubsetResult),
  /** The benchmark's headline: the mean of the subsets' F1. */
  average_f1: z.number().min(0).max(1),
});
export type PrmEvalOutput = z.infer<typeof PrmEvalOutput>;

/** A record paired with the PRM's step scores. */
export interface ScoredRecord {
  label: number;
  scores: readonly number[];
}

export interface ScoredSubset {
  subset: string;
  records: ScoredRecord[];
}

/** Thresholds tried when none is given: 0.05, 0.10, …, 0.95. */
export const SWEEP = Array.from({ length: 19 }, (_, i) => (i + 1) / 20);

/** Mean F1 over the four subsets, as published (ProcessBench paper, Table 3; the Qwen PRM report). */
export const PUBLISHED: ReadonlyArray<{ model: string; averageF1: number; source: string }> = [
  { model: 'Math-Shepherd-PRM-7B', averageF1: 0.315, source: 'ProcessBench paper (arXiv 2412.06559), Table 3' },
  { model: 'RLHFlow-PRM-Mistral-8B', averageF1: 0.284, source: 'ProcessBench paper (arXiv 2412.06559), Table 3' },
  { model: 'Skywork-PRM-7B', averageF1: 0.421, source: 'ProcessBench paper (arXiv 2412.06559), Table 3' },
  { model: 'Qwen2.5-Math-7B-PRM800K', averageF1: 0.565, source: 'ProcessBench paper (arXiv 2412.06559), Table 3' },
  { model: 'Qwen2.5-Math-PRM-7B', averageF1: 0.735, source: 'The Lessons of Developing PRMs in Mathematical Reasoning (arXiv 2501.07301)' },
];

/** The PRM's predicted first wrong step: the first step scored below the threshold, or -1 when none is. */
export function predictedErrorStep(scores: readonly number[], threshold: number): number {
  return scores.findIndex((s) => s < threshold);
}

/** Harmonic mean of two accuracies; 0 when both are 0 (nothing found either way). */
export function harmonicMean(a: number, b: number): number {
  return a + b > 0 ? (2 * a * b) / (a + b) : 0;
}

/** ProcessBench's score of one subset. A subset without both kinds of record has no F1: that is bad input. */
export function subsetResult(subset: ScoredSubset, threshold: number): SubsetResult {
  const withError = subset.records.filter((r) => r.label !== -1);
  const errorFree = subset.records.filter((r) => r.label === -1);
  if (withError.length === 0 || errorFree.length === 0) {
    const missing = withError.length === 0 ? 'with an error' : 'error-free';
    throw new BadInputError(`subset "${subset.subset}" has no records ${missing}: its F1 needs both kinds`);
  }
  const right = (records: ScoredRecord[]) => records.filter((r) => predictedErrorStep(r.scores, threshold) === r.label).length;
  const error_accuracy = right(withError) / withError.length;
  const correct_accuracy = right(errorFree) / errorFree.length;
  return { subset: subset.subset, error_accuracy, correct_accuracy, f1: harmonicMean(error_accuracy, correct_accuracy), n: subset.records.length };
}

/** Every subset at one threshold, with the mean F1. */
export function evaluateAt(subsets: readonly ScoredSubset[], threshold: number): PrmEvalOutput {
  const results = subsets.map((s) => subsetResult(s, threshold));
  return { threshold, subsets: results, average_f1: results.reduce((sum, r) => sum + r.f1, 0) / results.length };
}

/**
 * The subset the threshold is tuned on: GSM8K when there is one, as the ProcessBench authors chose thresholds for
 * PRMs that output scores (QwenLM/ProcessBench issue 3), else the first subset. With one subset the threshold is
 * tuned on the records it is scored on, which flatters the PRM: the report says so.
 */
export function tuningSubset(subsets: readonly ScoredSubset[]): string {
  return (subsets.find((s) => s.subset === 'gsm8k') ?? subsets[0])?.subset ?? '';
}

export interface Sweep {
  /** The metric at every threshold of the sweep (and at a fixed threshold), ascending. */
  rows: PrmEvalOutput[];
  /** The fixed threshold's row, or else the row with the best F1 on `tunedOn` (the lowest threshold on a tie). */
  chosen: PrmEvalOutput;
  tunedOn: string;
  fixed: boolean;
}

/** The metric over the sweep; the threshold used is `fixed` when given, else tuned on `tuningSubset`. */
export function sweepThresholds(subsets: readonly ScoredSubset[], fixed?: number): Sweep {
  if (subsets.length === 0) throw new BadInputError('no subsets to evaluate');
  const tunedOn = tuningSubset(subsets);
  const thresholds = [...new Set([...SWEEP, ...(fixed === undefined ? [] : [fixed])])].sort((a, b) => a - b);
  const rows = thresholds.map((t) => evaluateAt(subsets, t));
  const f1On = (row: PrmEvalOutput) => row.subsets.find((s) => s.subset === tunedOn)?.f1 ?? 0;
  const chosen = fixed === undefined ? rows.reduce((best, row) => (f1On(row) > f1On(best) ? row : best)) : (rows.find((r) => r.threshold === fixed) as PrmEvalOutput);
  return { rows, chosen, tunedOn, fixed: fixed !== undefined };
}

/**
 * Pairs each benchmark record with its score line. Every record needs exactly one line with one score per step;
 * a line for no record, a second line for a record, or a wrong count is an error naming `where(line)` or the record.
 */
export function joinScores(
  benchmark: readonly BenchmarkSubset[],
  lines: ReadonlyArray<{ line: number; value: StepScoresLine }>,
  where: (line: number) => string,
): ScoredSubset[] {
  const key = (subset: string, id: string) => JSON.stringify([subset, id]);
  const steps = new Map(benchmark.flatMap((s) => s.records.map((r) => [key(s.subset, r.id), r.steps.length] as const)));
  const scores = new Map<string, { line: number; scores: number[] }>();
  for (const { line, value } of lines) {
    const k = key(value.subset, value.id);
    const expected = steps.get(k);
    if (expected === undefined) throw new BadInputError(`${where(line)}: no record "${value.id}" in subset "${value.subset}" of the benchmark`);
    const earlier = scores.get(k);
    if (earlier) throw new BadInputError(`${where(line)}: record ${value.subset}/${value.id} is scored again (first at ${where(earlier.line)})`);
    if (value.step_scores.length !== expected) {
      throw new BadInputError(`${where(line)}: record ${value.subset}/${value.id} has ${expected} steps but ${value.step_scores.length} scores`);
    }
    scores.set(k, { line, scores: value.step_scores });
  }
  const missing = benchmark.flatMap((s) => s.records.filter((r) => !scores.has(key(s.subset, r.id))).map((r) => `${s.subset}/${r.id}`));
  if (missing.length > 0) {
    const more = missing.length > 3 ? ` and ${missing.length - 3} more` : '';
    throw new BadInputError(`no score line for record ${missing.slice(0, 3).join(', ')}${more}: every record of the benchmark needs one`);
  }
  return benchmark.map((s) => ({
    subset: s.subset,
    records: s.records.map((r) => ({ label: r.label, scores: (scores.get(key(s.subset, r.id)) as { scores: number[] }).scores })),
  }));
}
