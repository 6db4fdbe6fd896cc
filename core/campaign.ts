// A RAFT campaign: iteration after iteration, each from the policy the last one tuned and on prompts no earlier
// iteration saw, until a stop rule ends it. What crosses the workflow boundary, and the pure rules it follows.
import { z } from 'zod';
import { CampaignConfig, type Config, type EvalDatasetConfig } from './config.js';
import { RaftIterationInput, raftIterationInputFromConfig, tunedModelName, type RaftIterationResult } from './raft.js';
import { pairedChange } from './stats.js';

/** A policy as the campaign hands it on: its weights, and the name its server serves it under. */
export const CampaignPolicy = z.strictObject({ checkpoint: z.string(), model: z.string() });
export type CampaignPolicy = z.infer<typeof CampaignPolicy>;

/** One finished iteration, as the status table and the report show it. */
export const CampaignIterationRow = z.strictObject({
  iteration: z.number().int().positive(),
  workflowId: z.string(),
  runDir: z.string(),
  policyBefore: z.string(),
  policyAfter: z.string(),
  modelAfter: z.string(),
  prompts: z.number().int(),
  learningRate: z.number(),
  /** Kept responses that are right, over kept: what the selection fed SFT. */
  selectionPrecision: z.number().nullable(),
  sftLossFirst: z.number().nullable(),
  sftLossLast: z.number().nullable(),
  accuracy: z.array(
    z.strictObject({
      dataset: z.string(),
      total: z.number().int(),
      before: z.number(),
      after: z.number(),
      /** The paired standard error of after − before (question by question); null when unpaired. */
      changeStdErr: z.number().nullable(),
    }),
  ),
});
export type CampaignIterationRow = z.infer<typeof CampaignIterationRow>;

export const CampaignStatus = z.enum(['waiting', 'running', 'paused', 'failed', 'stopped']);
export type CampaignStatus = z.infer<typeof CampaignStatus>;

/** Everything a campaign carries from one run to the next across continue-as-new. */
export const CampaignState = z.strictObject({
  /** Iterations finished. */
  iterations: z.number().int().nonnegative(),
  initialPolicy: CampaignPolicy,
  policy: CampaignPolicy,
  /** Prompts dealt out so far: the next iteration's share starts here. */
  cursor: z.number().int().nonnegative(),
  /** Prompts in the whole pool (sampling.datasets after their skip and limit), per dataset in config order. */
  pool: z.array(z.strictObject({ name: z.string(), count: z.number().int() })),
  rows: z.array(CampaignIterationRow),
  /** The initial policy's accuracy (mean over datasets) counts as iteration 0. */
  initialAccuracy: z.number().nullable(),
  best: z.strictObject({ iteration: z.number().int().nonnegative(), accuracy: z.number(), policy: CampaignPolicy }).nullable(),
  status: CampaignStatus,
  /** Triggers accepted and not yet used. */
  triggers: z.number().int().nonnegative(),
  paused: z.boolean(),
  /** The last iteration's failure, until a trigger runs it again. */
  lastError: z.strictObject({ iteration: z.number().int(), message: z.string() }).nullable(),
  /** Why the campaign stopped. */
  stopReason: z.string().nullable(),
  /** Scheduled triggers that came while an iteration ran (overlap: skip). */
  skippedTriggers: z.number().int().nonnegative(),
});
export type CampaignState = z.infer<typeof CampaignState>;

export const RaftCampaignInput = z.strictObject({
  /** The first iteration's input; later ones change its policy, prompt slices and learning rate. */
  iteration: RaftIterationInput,
  campaign: CampaignConfig,
  /** Iterations back to back; otherwise each waits for a trigger. */
  auto: z.boolean(),
  /** Carried across continue-as-new; absent on the first run. */
  state: CampaignState.optional(),
});
export type RaftCampaignInput = z.infer<typeof RaftCampaignInput>;

/** What the `campaign` query answers, and what a finished campaign returns. */
export const CampaignView = CampaignState.extend({ name: z.string(), maxIterations: z.number().int(), auto: z.boolean(), promptsPerIteration: z.number().int() });
export type CampaignView = z.infer<typeof CampaignView>;

export function campaignInputFromConfig(config: Config, policyCheckpoint: string | undefined, auto: boolean): RaftCampaignInput {
  if (!config.campaign) throw new Error(`config "${config.name}" cannot run a campaign; it lacks: campaign (promptsPerIteration, maxIterations, …)`);
  return { iteration: raftIterationInputFromConfig(config, policyCheckpoint), campaign: config.campaign, auto };
}

export function initialCampaignState(input: RaftCampaignInput, pool: CampaignState['pool']): CampaignState {
  const policy = { checkpoint: input.iteration.policy.checkpoint, model: input.iteration.policy.model };
  return {
    iterations: 0,
    initialPolicy: policy,
    policy,
    cursor: 0,
    pool,
    rows: [],
    initialAccuracy: null,
    best: null,
    status: 'waiting',
    triggers: 0,
    paused: false,
    lastError: null,
    stopReason: null,
    skippedTriggers: 0,
  };
}

/**
 * The next iteration's share of each prompt set: positions [cursor, cursor + n) of the whole pool, dealt to each set
 * in proportion to its size (set d gets [⌊cursor·n_d/N⌋, ⌊(cursor+n)·n_d/N⌋) of its own seeded order), so shares
 * of successive iterations never overlap. Sets whose share is empty are left out.
 */
export function iterationPromptSets(datasets: readonly EvalDatasetConfig[], pool: CampaignState['pool'], cursor: number, n: number, seed: number): EvalDatasetConfig[] {
  const total = pool.reduce((s, d) => s + d.count, 0);
  return datasets.flatMap((dataset, i) => {
    const count = pool[i]!.count;
    const start = Math.floor((cursor * count) / total);
    const end = Math.floor(((cursor + n) * count) / total);
    return end > start ? [{ ...dataset, slice: { seed, start, end } }] : [];
  });
}

/** Why the campaign should stop before starting another iteration, or null to go on. */
export function stopReason(state: CampaignState, campaign: CampaignConfig): string | null {
  if (state.iterations >= campaign.maxIterations) return `reached maxIterations (${campaign.maxIterations})`;
  const poolSize = state.pool.reduce((s, d) => s + d.count, 0);
  if (state.cursor + campaign.promptsPerIteration > poolSize) {
    return `prompts ran out: ${poolSize - state.cursor} of the ${poolSize} in sampling.datasets are left, and an iteration takes ${campaign.promptsPerIteration}`;
  }
  if (campaign.patience !== undefined && state.best && state.iterations - state.best.iteration >= campaign.patience) {
    const best = state.best.iteration === 0 ? 'the initial policy' : `iteration ${state.best.iteration}`;
    return `no new best accuracy in ${campaign.patience} iteration(s); the best policy is ${best} (${(state.best.accuracy * 100).toFixed(1)}%, ${state.best.policy.checkpoint})`;
  }
  return null;
}

/** Iteration t's (1-based) learning rate under the campaign's decay. */
export function iterationLearningRate(base: number, t: number, campaign: CampaignConfig): number {
  return campaign.learningRateDecay === 'linear' ? (base * (campaign.maxIterations - t + 1)) / campaign.maxIterations : base;
}

/**
 * Iteration t's input: from the current policy (served by the pipeline once it is a tuned checkpoint). PRL's π0 is
 * `prl.initialPolicy` when the config sets it, else the campaign's initial policy (so iteration 1's PRL is r).
 */
export function campaignIterationInput(input: RaftCampaignInput, state: CampaignState): RaftIterationInput {
  const base = input.iteration;
  const t = state.iterations + 1;
  const fromInitial = state.iterations === 0;
  return {
    ...base,
    ...(base.prl ? { prl: { ...base.prl, initialPolicy: base.prl.initialPolicy ?? state.initialPolicy.checkpoint } } : {}),
    policy: { ...base.policy, ...state.policy },
    servePolicy: fromInitial ? base.servePolicy : true,
    sampling: { ...base.sampling, datasets: iterationPromptSets(base.sampling.datasets, state.pool, state.cursor, input.campaign.promptsPerIteration, input.campaign.seed) },
    sft: { ...base.sft, learningRate: iterationLearningRate(base.sft.learningRate, t, input.campaign) },
  };
}

/** The mean accuracy over the evaluation datasets: what "best" and patience go by. */
export function meanAccuracy(summary: RaftIterationResult['after']): number {
  const d = summary.datasets;
  return d.length ? d.reduce((s, x) => s + x.accuracy, 0) / d.length : 0;
}

/** The state after iteration t finished with `result`. */
export function recordIteration(state: CampaignState, input: RaftCampaignInput, workflowId: string, result: RaftIterationResult): CampaignState {
  const t = state.iterations + 1;
  const row: CampaignIterationRow = {
    iteration: t,
    workflowId,
    runDir: result.runDir,
    policyBefore: result.policyBefore,
    policyAfter: result.policyAfter,
    modelAfter: tunedModelName(state.policy.model, result.policyAfter),
    prompts: result.sampling.prompts,
    learningRate: iterationLearningRate(input.iteration.sft.learningRate, t, input.campaign),
    selectionPrecision: result.selection.kept > 0 ? result.selection.selectedCorrect / result.selection.kept : null,
    sftLossFirst: result.sft.lossFirst,
    sftLossLast: result.sft.lossLast,
    accuracy: result.after.datasets.map((a) => {
      const b = result.before.datasets.find((x) => x.dataset === a.dataset);
      const c = result.change.find((x) => x.dataset === a.dataset);
      return {
        dataset: a.dataset,
        total: a.total,
        before: b?.accuracy ?? Number.NaN,
        after: a.accuracy,
        changeStdErr: c ? pairedChange(c.gained, c.lost, c.total).standardError : null,
      };
    }),
  };
  const policy = { checkpoint: row.policyAfter, model: row.modelAfter };
  const accuracy = meanAccuracy(result.after);
  const initialAccuracy = state.initialAccuracy ?? meanAccuracy(result.before);
  const best = state.best ?? { iteration: 0, accuracy: initialAccuracy, policy: state.initialPolicy };
  return {
    ...state,
    iterations: t,
    policy,
    cursor: state.cursor + input.campaign.promptsPerIteration,
    rows: [...state.rows, row],
    initialAccuracy,
    best: accuracy > best.accuracy ? { iteration: t, accuracy, policy } : best,
    lastError: null,
  };
}

/** Why a `next` trigger cannot be taken now, or null when it can. */
export function nextRejection(state: CampaignState, auto: boolean): string | null {
  if (state.status === 'stopped') return `the campaign has stopped: ${state.stopReason ?? 'stopped'}`;
  if (state.status === 'running') return `iteration ${state.iterations + 1} is running; trigger the next one when it has finished`;
  if (state.paused) return 'the campaign is paused; resume it first';
  if (state.triggers > 0) return `iteration ${state.iterations + 1} is already triggered and about to start`;
  if (auto && state.status !== 'failed') return 'the campaign runs its iterations back to back (--auto); there is nothing to trigger';
  return null;
}
