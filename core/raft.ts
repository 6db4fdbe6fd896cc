// What one RAFT iteration passes between its stages, and what it returns: manifests and stats, never records.
import { z } from 'zod';
import { EvaluationConfig, GraderConfig, PolicyConfig, PRL_REQUIRED, PrlConfig, PrmConfig, SamplingConfig, ServingConfig, SftConfig, resolvePrompt, type Config } from './config.js';
import { ArtifactManifest, DatasetChange, EvaluationSummary } from './manifests.js';
import { PromptTemplate } from './prompts.js';
import { LogprobShardResult, PrlSteps } from './prl.js';
import { SelectionConfig, SelectionMode, SelectionStats } from './selection.js';
import { StepSplitConfig } from './steps.js';

export const SampleShardResult = ArtifactManifest.extend({
  dataset: z.string(),
  shard: z.number().int(),
  prompts: z.number().int(),
  responses: z.number().int(),
  /** Responses cut at max_tokens. */
  truncated: z.number().int(),
  /** Prompts the server refused (recorded with the reason, no responses). */
  refused: z.number().int(),
  correct: z.number().int(),
  cached: z.boolean(),
});
export type SampleShardResult = z.infer<typeof SampleShardResult>;

/** A reward model as an iteration reaches it (the server `prm-raft dev up` may start for it is not the iteration's). */
export const PrmEndpoint = PrmConfig.omit({ localServer: true });
export type PrmEndpoint = z.infer<typeof PrmEndpoint>;

/** A reward model the iteration serves itself from a checkpoint, for its scoring stage only (one `compare` trained). */
export const PrmToServe = PrmEndpoint.omit({ baseUrls: true }).extend({ checkpoint: z.string(), serving: ServingConfig });
export type PrmToServe = z.infer<typeof PrmToServe>;

export const IterationPrm = z.union([PrmEndpoint, PrmToServe]);
export type IterationPrm = z.infer<typeof IterationPrm>;

export function isPrmToServe(prm: IterationPrm): prm is PrmToServe {
  return 'checkpoint' in prm;
}

/** Why an iteration in prm mode cannot run: the one message for the config check and the workflow's own guard. */
export const PRM_REQUIRED =
  'prm (the reward model that selection.mode prm ranks responses by — or set selection.mode to oracle, random or majority, which need none)';

/** PRL selection's settings as an iteration takes them: the config's `prl` with its steps resolved. */
export const PrlIterationSettings = PrlConfig.extend({ steps: PrlSteps });
export type PrlIterationSettings = z.infer<typeof PrlIterationSettings>;

/** A samples shard's log-prob files under the current policy and under π0 (none when π0 is the current policy). */
export const ShardLogprobs = z.strictObject({ current: LogprobShardResult, initial: LogprobShardResult.optional() });
export type ShardLogprobs = z.infer<typeof ShardLogprobs>;

export const RaftIterationInput = z.strictObject({
  name: z.string(),
  /** The policy to improve: served at `baseUrls` under `model`, with its weights at `checkpoint`. */
  policy: PolicyConfig.omit({ localServer: true }).extend({ checkpoint: z.string() }),
  /** Serve `policy.checkpoint` from the pipeline itself instead of using `baseUrls` (`iterate --policy PATH`). */
  servePolicy: z.boolean(),
  prompt: PromptTemplate,
  sampling: SamplingConfig,
  steps: StepSplitConfig,
  /** The reward model; given exactly when `selection.mode` is `prm` (see raftIterationInputFromConfig). */
  prm: IterationPrm.optional(),
  selection: SelectionConfig,
  /** PRL's settings; given exactly when `selection.mode` is `prl`. */
  prl: PrlIterationSettings.optional(),
  sft: SftConfig,
  serving: ServingConfig,
  evaluation: EvaluationConfig,
  grader: GraderConfig,
  python: z.string(),
  storeRoot: z.string(),
  taskQueues: z.strictObject({ cpu: z.string(), gpu: z.string() }),
  /** A comparison's shared stages: the samples and the input policy's evaluation, done once for every reward model. */
  reuse: z.strictObject({ samples: z.array(SampleShardResult), before: EvaluationSummary }).optional(),
});
export type RaftIterationInput = z.infer<typeof RaftIterationInput>;

/**
 * The iteration's input from a config, or a list of what the config lacks for it. Only `selection.mode: prm`
 * takes the config's prm section: the baselines rank without a reward model, so they neither check nor call one.
 */
export function raftIterationInputFromConfig(config: Config, policyCheckpoint?: string): RaftIterationInput {
  const needsPrm = config.selection.mode === 'prm';
  const needsPrl = config.selection.mode === 'prl';
  const missing = [...(needsPrm && !config.prm ? [PRM_REQUIRED] : []), ...(needsPrl && !config.prl ? [PRL_REQUIRED] : [])];
  const settings = iterationSettingsFromConfig(config, policyCheckpoint, 'a RAFT iteration', missing);
  if (needsPrl && config.prl) return { ...settings, prl: prlSettingsFromConfig(config.prl, config) };
  if (!needsPrm || !config.prm) return settings;
  const { localServer: _r, ...prm } = config.prm;
  return { ...settings, prm };
}

/** The config's `prl` as an iteration takes it: PRL's steps are the config's own unless it names others. */
export function prlSettingsFromConfig(prl: NonNullable<Config['prl']>, config: Pick<Config, 'steps'>): PrlIterationSettings {
  return { ...prl, steps: prl.steps ?? config.steps };
}

/**
 * Everything an iteration takes from a config but its reward model (a comparison brings its own), or an error
 * listing what the config lacks for `job`, `alsoMissing` included.
 */
export function iterationSettingsFromConfig(
  config: Config,
  policyCheckpoint: string | undefined,
  job: string,
  alsoMissing: string[],
): Omit<RaftIterationInput, 'prm' | 'prl' | 'reuse'> {
  const missing: string[] = [];
  if (!config.sampling) missing.push('sampling (the training prompt sets and N)');
  missing.push(...alsoMissing);
  const checkpoint = policyCheckpoint ?? config.policy.checkpoint;
  if (!checkpoint) missing.push('policy.checkpoint (the weights SFT starts from), or --policy PATH');
  if (missing.length > 0 || !config.sampling || !checkpoint) {
    throw new Error(`config "${config.name}" cannot run ${job}; it lacks: ${missing.join('; ')}`);
  }
  const { localServer: _p, ...policy } = config.policy;
  return {
    name: config.name,
    policy: { ...policy, checkpoint },
    servePolicy: policyCheckpoint !== undefined,
    prompt: resolvePrompt(config.prompt),
    sampling: config.sampling,
    steps: config.steps,
    selection: config.selection,
    sft: config.sft,
    serving: config.serving,
    evaluation: config.evaluation,
    grader: config.grader,
    python: config.python,
    storeRoot: config.store.root,
    taskQueues: config.temporal.taskQueues,
  };
}


export const ScoreShardResult = ArtifactManifest.extend({
  dataset: z.string(),
  shard: z.number().int(),
  /** Responses scored, and responses with no steps to score. */
  scored: z.number().int(),
  empty: z.number().int(),
  /** Responses the PRM refused (over its context, say): recorded unscored with the reason. Absent in older results. */
  unscored: z.number().int().optional(),
  cached: z.boolean(),
});
export type ScoreShardResult = z.infer<typeof ScoreShardResult>;

export const SelectionResult = z.strictObject({
  /** prompt/completion pairs for the SFT job. */
  sftData: ArtifactManifest,
  /** Which response each prompt kept, with its score and grade. */
  selected: ArtifactManifest,
  stats: SelectionStats,
  cached: z.boolean(),
});
export type SelectionResult = z.infer<typeof SelectionResult>;

export const SftResult = z.strictObject({
  checkpoint: z.string(),
  steps: z.number().int(),
  lossFirst: z.number().nullable(),
  lossLast: z.number().nullable(),
  perDeviceBatchSize: z.number().int(),
  gradientAccumulationSteps: z.number().int(),
  cached: z.boolean(),
});
export type SftResult = z.infer<typeof SftResult>;

/**
 * The next split of the effective batch after an out-of-memory: the largest per-device batch that divides the
 * effective batch and is at most half the current one, accumulation making up the rest. The effective batch stays
 * exact, so the SFT job keeps its identity and resumes its own checkpoints: 8×1 → 4×2, and an odd 7×1 → 1×7 (half of
 * 7 would be 3×2 = 6, a different job). Null when the per-device batch is already 1.
 */
export function smallerBatchSplit(perDeviceBatchSize: number, gradientAccumulationSteps: number): { perDeviceBatchSize: number; gradientAccumulationSteps: number } | null {
  const effective = perDeviceBatchSize * gradientAccumulationSteps;
  for (let p = Math.floor(perDeviceBatchSize / 2); p >= 1; p -= 1) {
    if (effective % p === 0) return { perDeviceBatchSize: p, gradientAccumulationSteps: effective / p };
  }
  return null;
}

/** The name a tuned policy is served under: its base's, tagged with its content-addressed SFT output folder. */
export function tunedModelName(model: string, checkpoint: string): string {
  const parts = checkpoint.split('/').filter(Boolean);
  return `${model}+raft-${(parts.at(-2) ?? parts.at(-1) ?? 'new').slice(0, 8)}`;
}

export const ServedPolicy = z.strictObject({
  model: z.string(),
  baseUrl: z.string(),
  pid: z.number().int(),
  /** The queue of the worker that runs the server: only it can stop it. */
  stopQueue: z.string(),
});
export type ServedPolicy = z.infer<typeof ServedPolicy>;

export const RaftIterationResult = z.strictObject({
  runDir: z.string(),
  policyBefore: z.string(),
  policyAfter: z.string(),
  sampling: z.strictObject({ prompts: z.number().int(), responses: z.number().int(), truncated: z.number().int(), refused: z.number().int(), correct: z.number().int() }),
  selection: SelectionStats.extend({
    mode: SelectionMode,
    meanSelectedScore: z.number().nullable(),
    /** Responses the PRM refused to score (the scores shards' `unscored`): never selected. Absent in older results. */
    unscored: z.number().int().optional(),
  }),
  /** Which response each prompt kept, with its score and grade. */
  selected: ArtifactManifest,
  sft: SftResult,
  before: EvaluationSummary,
  after: EvaluationSummary,
  /**
   * Each dataset evaluated both before and after, paired question by question: the questions gained and lost, from
   * which the change's paired standard error follows. Results written before it was recorded have none.
   */
  change: z.array(DatasetChange).default([]),
});
export type RaftIterationResult = z.infer<typeof RaftIterationResult>;

/**
 * What the progress query answers. A training stage's step and loss are in the SFT activity's heartbeats, which the
 * CLI reads (a workflow never sees them). Not strict: workers built before carry a field `sft` that was always null.
 */
export const RaftProgress = z.object({
  stage: z.enum(['preparing', 'sampling', 'selecting', 'training', 'evaluating', 'done']),
  shardsTotal: z.number().int(),
  shardsSampled: z.number().int(),
  /** Whether shards are scored at all: only prm mode has a reward model. */
  scoring: z.boolean(),
  shardsScored: z.number().int(),
  promptsTotal: z.number().int(),
});
export type RaftProgress = z.infer<typeof RaftProgress>;
