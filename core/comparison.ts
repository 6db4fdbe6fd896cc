// Comparing policies tuned with different reward models: the paper's Table 1.
import { z } from 'zod';
import type { Config } from './config.js';
import { ArtifactManifest, type EvaluationSummary } from './manifests.js';
import { iterationSettingsFromConfig, PrmEndpoint, RaftIterationInput, type RaftIterationResult } from './raft.js';
import { accuracyStandardError, differenceStandardError } from './stats.js';

/**
 * One row: the untuned baseline, or the policy after a RAFT iteration that selected with one reward model
 * (`prm`, `orm`) or with a selection baseline that needs none (`oracle`, `random`, `majority`).
 */
export const ComparisonRow = z.strictObject({
  name: z.string(),
  kind: z.enum(['baseline', 'prm', 'orm', 'oracle', 'random', 'majority']),
  /** Accuracy per evaluation dataset, as a fraction in [0, 1]; null when that run did not finish. */
  accuracy: z.record(z.string(), z.number().nullable()),
  /**
   * Standard error of each accuracy, √(p(1−p)/n) over the dataset's questions, and of each change against the
   * baseline (independent-samples form, conservative for one test set evaluated twice). Summaries written before
   * they were recorded have none.
   */
  accuracyStdErr: z.record(z.string(), z.number().nullable()).default({}),
  /** Change against the baseline, per dataset, in accuracy points (fractions); null for the baseline itself. */
  delta: z.record(z.string(), z.number().nullable()),
  deltaStdErr: z.record(z.string(), z.number().nullable()).default({}),
  /** Share of selected responses that are correct (a diagnostic); null for the baseline. */
  selectionPrecision: z.number().nullable(),
  meanSelectedScore: z.number().nullable(),
  /** Why this row has no numbers (its iteration failed), or null. */
  error: z.string().nullable(),
  runDir: z.string().nullable(),
});
export type ComparisonRow = z.infer<typeof ComparisonRow>;

export const ComparisonTable = z.strictObject({
  name: z.string(),
  /** Evaluation dataset names, in column order. */
  datasets: z.array(z.string()),
  rows: z.array(ComparisonRow),
});
export type ComparisonTable = z.infer<typeof ComparisonTable>;

/**
 * The comparison's input: an iteration's settings, with the list of reward models in place of one PRM. The
 * selection baselines (oracle, random, majority) are always run beside them, with `selection`'s other settings.
 */
export const ComparePrmsInput = RaftIterationInput.omit({ prm: true, reuse: true }).extend({
  rewardModels: z.array(PrmEndpoint.extend({ name: z.string() })).min(1),
});
export type ComparePrmsInput = z.infer<typeof ComparePrmsInput>;

export function comparePrmsInputFromConfig(config: Config, policyCheckpoint?: string): ComparePrmsInput {
  const models = config.rewardModels;
  const settings = iterationSettingsFromConfig(config, policyCheckpoint, 'a comparison', models ? [] : ['rewardModels (the reward models to compare)']);
  return { ...settings, rewardModels: (models ?? []).map(({ localServer: _l, ...rm }) => rm) };
}

/** How each tuned policy's iteration ended (one per reward model and selection baseline): its result, or why it failed. */
export type ComparisonOutcome = { name: string; kind: Exclude<ComparisonRow['kind'], 'baseline'> } & ({ result: RaftIterationResult } | { error: string });

/** Table 1: the untuned baseline, then one row per tuned policy, with the change against the baseline. */
export function comparisonTable(name: string, baseline: EvaluationSummary, outcomes: readonly ComparisonOutcome[]): ComparisonTable {
  const datasets = baseline.datasets.map((d) => d.dataset);
  const perDataset = <T>(f: (d: string) => T): Record<string, T> => Object.fromEntries(datasets.map((d) => [d, f(d)]));
  const none = perDataset(() => null);
  /** Each dataset's accuracy and its standard error in one evaluation; null for a dataset it lacks. */
  const measured = (s: EvaluationSummary) =>
    perDataset((d) => {
      const a = s.datasets.find((x) => x.dataset === d);
      return a ? { p: a.accuracy, se: a.total > 0 ? accuracyStandardError(a.accuracy, a.total) : null } : null;
    });
  const base = measured(baseline);
  const columns = (m: ReturnType<typeof measured>, against: ReturnType<typeof measured> | null) => ({
    accuracy: perDataset((d) => m[d]?.p ?? null),
    accuracyStdErr: perDataset((d) => m[d]?.se ?? null),
    delta: perDataset((d) => {
      const [a, b] = [m[d], against?.[d]];
      return a && b ? a.p - b.p : null;
    }),
    deltaStdErr: perDataset((d) => {
      const [a, b] = [m[d]?.se, against?.[d]?.se];
      return a != null && b != null ? differenceStandardError(a, b) : null;
    }),
  });
  const rows: ComparisonRow[] = [
    { name: 'baseline', kind: 'baseline', ...columns(base, null), selectionPrecision: null, meanSelectedScore: null, error: null, runDir: baseline.runDir },
  ];
  for (const o of outcomes) {
    if ('error' in o) {
      rows.push({ name: o.name, kind: o.kind, accuracy: none, accuracyStdErr: none, delta: none, deltaStdErr: none, selectionPrecision: null, meanSelectedScore: null, error: o.error, runDir: null });
      continue;
    }
    const s = o.result.selection;
    rows.push({
      name: o.name,
      kind: o.kind,
      ...columns(measured(o.result.after), base),
      selectionPrecision: s.kept > 0 ? s.selectedCorrect / s.kept : null,
      meanSelectedScore: s.meanSelectedScore,
      error: null,
      runDir: o.result.runDir,
    });
  }
  return { name, datasets, rows };
}

export const ComparisonResult = z.strictObject({
  kind: z.literal('comparison'),
  runDir: z.string(),
  table: ComparisonTable,
  /** Each finished reward model's selected-responses file, for the score histogram of the report. */
  selected: z.record(z.string(), ArtifactManifest),
  report: z.strictObject({ html: z.string(), markdown: z.string(), csv: z.string(), json: z.string() }),
});
export type ComparisonResult = z.infer<typeof ComparisonResult>;

export const CompareProgress = z.strictObject({
  stage: z.enum(['preparing', 'sampling', 'iterating', 'reporting', 'done']),
  shardsTotal: z.number().int(),
  shardsSampled: z.number().int(),
  /** Iterations (one per reward model and selection baseline) that finished, failed, and in all. */
  finished: z.number().int(),
  failed: z.number().int(),
  iterations: z.number().int(),
});
export type CompareProgress = z.infer<typeof CompareProgress>;
