// Comparing policies tuned with different reward models: the paper's Table 1.
import { z } from 'zod';
import type { Config } from './config.js';
import { ArtifactManifest, type EvaluationSummary } from './manifests.js';
import { iterationSettingsFromConfig, RaftIterationInput, type RaftIterationResult } from './raft.js';

/** One row: the untuned baseline, or the policy after a RAFT iteration with one reward model. */
export const ComparisonRow = z.strictObject({
  name: z.string(),
  kind: z.enum(['baseline', 'prm', 'orm', 'oracle']),
  /** Accuracy per evaluation dataset, as a fraction in [0, 1]; null when that run did not finish. */
  accuracy: z.record(z.string(), z.number().nullable()),
  /** Change against the baseline, per dataset, in accuracy points (fractions); null for the baseline itself. */
  delta: z.record(z.string(), z.number().nullable()),
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

/** The comparison's input: an iteration's settings, with the list of reward models in place of one PRM. */
export const ComparePrmsInput = RaftIterationInput.omit({ prm: true, reuse: true }).extend({
  rewardModels: z.array(RaftIterationInput.shape.prm.extend({ name: z.string() })).min(1),
});
export type ComparePrmsInput = z.infer<typeof ComparePrmsInput>;

export function comparePrmsInputFromConfig(config: Config, policyCheckpoint?: string): ComparePrmsInput {
  const models = config.rewardModels;
  const settings = iterationSettingsFromConfig(config, policyCheckpoint, 'a comparison', models ? [] : ['rewardModels (the reward models to compare)']);
  return { ...settings, rewardModels: (models ?? []).map(({ localServer: _l, ...rm }) => rm) };
}

/** How each reward model's iteration ended: its result, or why it failed. */
export type ComparisonOutcome = { name: string; kind: 'prm' | 'orm'; result: RaftIterationResult } | { name: string; kind: 'prm' | 'orm'; error: string };

/** Table 1: the untuned baseline, then one row per reward model, with the change against the baseline. */
export function comparisonTable(name: string, baseline: EvaluationSummary, outcomes: readonly ComparisonOutcome[]): ComparisonTable {
  const datasets = baseline.datasets.map((d) => d.dataset);
  const accuracyOf = (s: EvaluationSummary) => Object.fromEntries(datasets.map((d) => [d, s.datasets.find((x) => x.dataset === d)?.accuracy ?? null]));
  const base = accuracyOf(baseline);
  const none = Object.fromEntries(datasets.map((d) => [d, null]));
  const rows: ComparisonRow[] = [
    { name: 'baseline', kind: 'baseline', accuracy: base, delta: none, selectionPrecision: null, meanSelectedScore: null, error: null, runDir: baseline.runDir },
  ];
  for (const o of outcomes) {
    if ('error' in o) {
      rows.push({ name: o.name, kind: o.kind, accuracy: none, delta: none, selectionPrecision: null, meanSelectedScore: null, error: o.error, runDir: null });
      continue;
    }
    const accuracy = accuracyOf(o.result.after);
    const s = o.result.selection;
    rows.push({
      name: o.name,
      kind: o.kind,
      accuracy,
      delta: Object.fromEntries(datasets.map((d) => [d, accuracy[d] != null && base[d] != null ? (accuracy[d] as number) - (base[d] as number) : null])),
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
  /** Reward models whose iteration finished, and failed. */
  finished: z.number().int(),
  failed: z.number().int(),
  rewardModels: z.number().int(),
});
export type CompareProgress = z.infer<typeof CompareProgress>;
