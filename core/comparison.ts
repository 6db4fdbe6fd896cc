// Comparing policies tuned with different reward models: the paper's Table 1.
import { z } from 'zod';
import { isTrainedRewardModel, PrmTrainingConfig, TrainedRewardModelConfig, type Config } from './config.js';
import { LabelPrmDataInput, labelPrmDataInputFromConfig } from './labeling.js';
import { ArtifactManifest, type DatasetChange, type EvaluationSummary } from './manifests.js';
import { iterationSettingsFromConfig, PrmEndpoint, prlSettingsFromConfig, RaftIterationInput, type RaftIterationResult } from './raft.js';
import { accuracyStandardError, pairedChange } from './stats.js';

/**
 * One row: the untuned baseline, or the policy after a RAFT iteration that selected with one reward model
 * (`prm`, `orm`), with a selection baseline that needs none (`oracle`, `random`, `majority`), or with PRL
 * (`prl`, when the config has a prl section: the policy's own log-ratios, no reward model either).
 */
export const ComparisonRow = z.strictObject({
  name: z.string(),
  kind: z.enum(['baseline', 'prm', 'orm', 'oracle', 'random', 'majority', 'prl']),
  /** Accuracy per evaluation dataset, as a fraction in [0, 1]; null when that run did not finish. */
  accuracy: z.record(z.string(), z.number().nullable()),
  /**
   * Standard error of each accuracy, √(p(1−p)/n) over the dataset's questions, and of each change against the
   * baseline (in the form the table's `deltaStdErrForm` names). Summaries written before they were recorded have none.
   */
  accuracyStdErr: z.record(z.string(), z.number().nullable()).default({}),
  /** Change against the baseline, per dataset, in accuracy points (fractions); null for the baseline itself. */
  delta: z.record(z.string(), z.number().nullable()),
  deltaStdErr: z.record(z.string(), z.number().nullable()).default({}),
  /**
   * Questions this policy got right that the baseline got wrong, and the reverse, per dataset: what the paired
   * standard error is taken from. Null for the baseline; summaries written before they were recorded have none.
   */
  gained: z.record(z.string(), z.number().int().nullable()).default({}),
  lost: z.record(z.string(), z.number().int().nullable()).default({}),
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
  /**
   * How `deltaStdErr` was taken: paired, question by question against the baseline's evaluation of the same test
   * set; or, in tables written before that, √(SE₁² + SE₂²), the independent-samples form.
   */
  deltaStdErrForm: z.enum(['paired', 'independent']).default('independent'),
});
export type ComparisonTable = z.infer<typeof ComparisonTable>;

/**
 * The comparison's input: an iteration's settings, with the list of reward models in place of one PRM. The
 * selection baselines (oracle, random, majority) are always run beside them, with `selection`'s other settings.
 */
export const ComparePrmsInput = RaftIterationInput.omit({ prm: true, reuse: true }).extend({
  rewardModels: z.array(z.union([PrmEndpoint.extend({ name: z.string() }), TrainedRewardModelConfig])).min(1),
  /**
   * Given when some reward models are trained here: the labeling run they all learn from (a finished one at
   * `labelRunDir`, or else `labeling`'s, run first) and how each is trained and served.
   */
  training: z
    .strictObject({ labeling: LabelPrmDataInput.optional(), labelRunDir: z.string().optional(), prmTraining: PrmTrainingConfig })
    .optional(),
});
export type ComparePrmsInput = z.infer<typeof ComparePrmsInput>;

/** The comparison's input from a config; `labelRunDir` is a finished labeling run for the reward models it trains. */
export function comparePrmsInputFromConfig(config: Config, policyCheckpoint?: string, labelRunDir?: string): ComparePrmsInput {
  const models = config.rewardModels ?? [];
  const trains = models.some(isTrainedRewardModel);
  const missing = models.length ? [] : ['rewardModels (the reward models to compare)'];
  if (trains && !config.prmTraining) missing.push('prmTraining (how the reward models with `train` are trained and served)');
  if (trains && !config.labeling && !labelRunDir) missing.push('labeling (the run the reward models with `train` learn from), or --labels RUN');
  const base = iterationSettingsFromConfig(config, policyCheckpoint, 'a comparison', missing);
  // With a prl section the comparison has a prl row too, ranked by PRL beside the reward models.
  const settings = config.prl ? { ...base, prl: prlSettingsFromConfig(config.prl, config) } : base;
  const rewardModels = models.map((m) => {
    if (isTrainedRewardModel(m)) return m;
    const { localServer: _l, ...rm } = m;
    return rm;
  });
  if (!trains || !config.prmTraining) return { ...settings, rewardModels };
  const source = labelRunDir ? { labelRunDir } : { labeling: labelPrmDataInputFromConfig(config) };
  return { ...settings, rewardModels, training: { ...source, prmTraining: config.prmTraining } };
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
  const accuracyColumns = (m: ReturnType<typeof measured>) => ({ accuracy: perDataset((d) => m[d]?.p ?? null), accuracyStdErr: perDataset((d) => m[d]?.se ?? null) });
  const noChange = { delta: none, deltaStdErr: none, gained: none, lost: none };
  const rows: ComparisonRow[] = [
    { name: 'baseline', kind: 'baseline', ...accuracyColumns(base), ...noChange, selectionPrecision: null, meanSelectedScore: null, error: null, runDir: baseline.runDir },
  ];
  for (const o of outcomes) {
    if ('error' in o) {
      rows.push({ name: o.name, kind: o.kind, accuracy: none, accuracyStdErr: none, ...noChange, selectionPrecision: null, meanSelectedScore: null, error: o.error, runDir: null });
      continue;
    }
    // Every iteration's `before` is the baseline's evaluation (the comparison shares it), so its paired counts
    // are against the baseline. An iteration that finished before they were recorded has none.
    const m = measured(o.result.after);
    const paired = (d: string): DatasetChange | undefined => o.result.change?.find((c) => c.dataset === d && c.total > 0);
    const s = o.result.selection;
    rows.push({
      name: o.name,
      kind: o.kind,
      ...accuracyColumns(m),
      delta: perDataset((d) => {
        const [a, b] = [m[d], base[d]];
        return a && b ? a.p - b.p : null;
      }),
      deltaStdErr: perDataset((d) => {
        const c = paired(d);
        return c ? pairedChange(c.gained, c.lost, c.total).standardError : null;
      }),
      gained: perDataset((d) => paired(d)?.gained ?? null),
      lost: perDataset((d) => paired(d)?.lost ?? null),
      selectionPrecision: s.kept > 0 ? s.selectedCorrect / s.kept : null,
      meanSelectedScore: s.meanSelectedScore,
      error: null,
      runDir: o.result.runDir,
    });
  }
  return { name, datasets, rows, deltaStdErrForm: 'paired' };
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
