// One RAFT iteration: sample N per prompt → PRM-score every step → keep the best → SFT → evaluate before and after.
// The baseline selection modes (oracle, random, majority) skip the reward model: no check, no scoring. PRL selection
// (prl) skips it too and scores every response's log-probs under the current policy and under π0 instead.
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  executeChild,
  patched,
  proxyActivities,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { EvaluatePolicyInput } from '../core/evaluation.js';
import type { ShardPlan } from '../core/evaluation.js';
import type { SampleShardInput } from '../activities/sample-shard.js';
import type { SelectResponsesInput } from '../activities/select-responses.js';
import { shardJobs } from './shard-plan.js';
import { shardActivityOptions } from './shard-options.js';
import { runDir as runDirOf } from '../core/layout.js';
import type { DatasetManifest } from '../core/manifests.js';
import type { EvaluationSummary } from '../core/manifests.js';
import { PRL_REQUIRED } from '../core/config.js';
import { isPrmToServe, PRM_REQUIRED, tunedModelName, type PrmEndpoint, type RaftIterationInput, type RaftIterationResult, type RaftProgress, type SampleShardResult, type ServedPolicy, type SftResult, smallerBatchSplit } from '../core/raft.js';
import { meanSelectedScore } from '../core/selection.js';
import { runSlidingWindow } from '../core/sliding-window.js';
import { evaluatePolicy } from './evaluate-policy.js';

export const raftProgressQuery = defineQuery<RaftProgress>('progress');

/** The patch that lets sampling lanes go on while their shards are scored (workflow versioning). */
export const SCORING_BESIDE_SAMPLING = 'scoring-beside-sampling';

/** The activity proxies of an iteration, with the timeouts and retries each kind of stage needs. */
export function raftProxies(input: Pick<RaftIterationInput, 'taskQueues' | 'sft'>) {
  const { cpu, gpu } = input.taskQueues;
  return {
    quick: proxyActivities<Activities>({
      taskQueue: cpu,
      startToCloseTimeout: '30 minutes',
      heartbeatTimeout: '5 minutes',
      // Bounded: an unreachable server should fail the run in minutes, not hang it for days.
      retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 5 },
    }),
    shards: proxyActivities<Activities>(shardActivityOptions(cpu, '12 hours')),
    serving: proxyActivities<Activities>({
      taskQueue: gpu,
      // Waiting for this worker's GPU counts here (a server elsewhere may hold it for a whole evaluation); the
      // start-up itself is bounded inside by serving.startupTimeoutSeconds.
      startToCloseTimeout: `${input.sft.timeoutHours} hours`,
      heartbeatTimeout: '1 minute',
      retry: { initialInterval: '10 seconds', backoffCoefficient: 2, maximumAttempts: 3 },
    }),
    training: proxyActivities<Activities>({
      taskQueue: gpu,
      startToCloseTimeout: `${input.sft.timeoutHours} hours`,
      heartbeatTimeout: '2 minutes',
      // Each attempt resumes from the job's last checkpoint; out-of-memory and bad config never come back here.
      retry: { initialInterval: '30 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes', maximumAttempts: input.sft.maxAttempts },
    }),
  };
}

/** Runs `use` with the input policy reachable: as configured, or served here from its checkpoint (`--policy`). */
export async function withInputPolicy<T>(
  input: Pick<RaftIterationInput, 'policy' | 'servePolicy' | 'serving' | 'python' | 'storeRoot'>,
  serving: Pick<Activities, 'startPolicyServer'>,
  use: (policy: RaftIterationInput['policy']) => Promise<T>,
): Promise<T> {
  const served = input.servePolicy
    ? await serving.startPolicyServer({ checkpoint: input.policy.checkpoint, model: input.policy.model, serving: input.serving, python: input.python, storeRoot: input.storeRoot })
    : null;
  try {
    return await use(served ? { ...input.policy, baseUrls: [served.baseUrl] } : input.policy);
  } finally {
    if (served) await stopServer(served);
  }
}

/** Only what sampling reads: the workflow's whole input in every shard's payload would bloat the history. */
export function sampleShardInput(
  input: Pick<RaftIterationInput, 'prompt' | 'sampling' | 'grader' | 'python' | 'storeRoot'>,
  policy: RaftIterationInput['policy'],
  policyFingerprint: string,
  job: { dataset: DatasetManifest; shard: ShardPlan },
): SampleShardInput {
  const { prompt, sampling, grader, python, storeRoot } = input;
  return { prompt, sampling, grader, python, storeRoot, policy, policyFingerprint, ...job };
}

export async function raftIteration(input: RaftIterationInput): Promise<RaftIterationResult> {
  const prm = input.selection.mode === 'prm' ? input.prm : undefined;
  if (input.selection.mode === 'prm' && !prm) throw ApplicationFailure.nonRetryable(`the iteration's input lacks ${PRM_REQUIRED}`, 'BadInput');
  const prl = input.selection.mode === 'prl' ? input.prl : undefined;
  if (input.selection.mode === 'prl' && !prl) throw ApplicationFailure.nonRetryable(`the iteration's input lacks ${PRL_REQUIRED}`, 'BadInput');
  const { quick, shards, serving, training } = raftProxies(input);
  const { workflowId } = workflowInfo();
  const runDir = runDirOf(input.storeRoot, workflowId);
  const progress: RaftProgress = { stage: 'preparing', shardsTotal: 0, shardsSampled: 0, scoring: prm !== undefined, shardsScored: 0, promptsTotal: 0 };
  setHandler(raftProgressQuery, () => progress);

  type Shard = SelectResponsesInput['shards'][number];
  /** Checks the reward model and returns what scores one samples shard, or null when there is none to call. */
  const checkScorer = async (endpoint: PrmEndpoint | undefined): Promise<((samples: SampleShardResult) => Promise<Shard>) | null> => {
    if (!endpoint) return null;
    const { fingerprint: prmFingerprint } = await quick.checkPrm({ prm: endpoint });
    return async (samples) => {
      const scores = await shards.scoreShard({ prm: endpoint, steps: input.steps, storeRoot: input.storeRoot, prmFingerprint, samples });
      progress.shardsScored += 1;
      return { samples, scores };
    };
  };
  // A reward model reached at its URLs scores each shard as it is sampled. One the iteration serves itself scores
  // after sampling, on a server of its own: on one GPU it cannot run beside the policy server.
  const reachable = prm && !isPrmToServe(prm) ? prm : undefined;
  let sampling: Shard[];
  let before: EvaluationSummary;
  if (input.reuse) {
    // A comparison sampled and evaluated the input policy once for every iteration: only scoring (prm mode) is ours.
    const { samples, before: reused } = input.reuse;
    progress.stage = 'sampling';
    progress.shardsTotal = samples.length;
    progress.shardsSampled = samples.length;
    progress.promptsTotal = samples.reduce((n, s) => n + s.prompts, 0);
    const score = await checkScorer(reachable);
    sampling = score ? await runSlidingWindow(samples, input.sampling.maxShardsInFlight, score) : samples.map((s) => ({ samples: s }));
    before = reused;
  } else {
    const datasets = await Promise.all(input.sampling.datasets.map((dataset) => quick.prepareDataset({ dataset, storeRoot: input.storeRoot })));
    [sampling, before] = await withInputPolicy(input, serving, async (policy) => {
      const [{ fingerprint }, score] = await Promise.all([quick.checkPolicy({ policy, maxTokens: input.sampling.maxTokens }), checkScorer(reachable)]);
      const evaluationBefore = await startChild(evaluatePolicy, { workflowId: `${workflowId}-before`, args: [evaluationInput(input, policy)] });
      const jobs = shardJobs(datasets, input.sampling.shardSize, 'sampling.shardSize');
      progress.stage = 'sampling';
      progress.shardsTotal = jobs.length;
      progress.promptsTotal = datasets.reduce((n, d) => n + d.count, 0);
      // A lane that waited for its shard's scoring before sampling the next one made the lanes move in step: all
      // sampling (the PRM idle), then all scoring (the policy idle) — bench-paper measured the policy GPUs ~40% idle
      // on 4 GPUs. Now a lane samples its next shard at once; the scoring runs beside it, and a failed scoring stops
      // the lanes at their next shard. Shards waiting for scoring need no bound of their own: they wait on the
      // server's task queue (worker memory is bounded by its activity slots, history by the shard count). A bound of
      // maxShardsInFlight brought the lock-step back where the PRM is the slower side — scorings sharing the PRM
      // finish together, then it waits for the next shards (bench-paper, 8 GPUs: sample + score 1:08 against 0:59).
      // (Patched: a run started before keeps its own order when replayed.)
      const scoringBeside = patched(SCORING_BESIDE_SAMPLING);
      const scoring: Array<Promise<Shard>> = [];
      let scoringFailed: { error: unknown } | null = null;
      const sampled = await runSlidingWindow(jobs, input.sampling.maxShardsInFlight, async (job, index): Promise<Shard> => {
        if (scoringFailed) throw scoringFailed.error;
        const samples = await shards.sampleShard(sampleShardInput(input, policy, fingerprint, job));
        progress.shardsSampled += 1;
        if (!score) return { samples };
        if (!scoringBeside) return score(samples);
        const scored = score(samples);
        scored.catch((error: unknown) => {
          scoringFailed ??= { error };
        });
        scoring[index] = scored;
        return { samples };
      });
      const all = scoringBeside && score ? await Promise.all(sampled.map((_, i) => scoring[i] as Promise<Shard>)) : sampled;
      return [all, await evaluationBefore.result()] as const;
    });
  }
  if (prm && isPrmToServe(prm)) {
    const { checkpoint, serving: prmServing, ...endpoint } = prm;
    const served = await serving.startPrmServer({ checkpoint, model: prm.model, serving: prmServing, python: input.python, storeRoot: input.storeRoot });
    try {
      const score = await checkScorer({ ...endpoint, baseUrls: [served.baseUrl] });
      if (score) sampling = await runSlidingWindow(sampling, input.sampling.maxShardsInFlight, (shard) => score(shard.samples));
    } finally {
      await stopServer(served);
    }
  }

  progress.stage = 'selecting';
  if (prl) {
    // Each response's token log-probs under the policy that sampled it and under π0, by the forward-pass job on the
    // gpu queue (content-addressed: π0's files of a shard are computed once). π0 = the current policy: PRL = r.
    const initialPolicy = prl.initialPolicy ?? input.policy.checkpoint;
    const same = initialPolicy.replace(/\/+$/, '') === input.policy.checkpoint.replace(/\/+$/, '');
    const job = { kind: 'samples' as const, prompt: input.prompt, logprobs: prl.logprobs, python: input.python, storeRoot: input.storeRoot };
    sampling = await runSlidingWindow(sampling, input.sampling.maxShardsInFlight, async (shard): Promise<Shard> => {
      const current = await training.logprobShard({ ...job, shard: shard.samples, checkpoint: input.policy.checkpoint });
      if (same) return { ...shard, logprobs: { current } };
      const initial = await training.logprobShard({ ...job, shard: shard.samples, checkpoint: initialPolicy });
      return { ...shard, logprobs: { current, initial } };
    });
  }
  const selection = await quick.selectResponses({
    selection: input.selection,
    prompt: input.prompt,
    storeRoot: input.storeRoot,
    aggregation: prm?.aggregation,
    ...(prl ? { prl } : {}),
    shards: sampling,
  });
  if (selection.sftData.count === 0) {
    throw ApplicationFailure.nonRetryable(
      `no prompt kept a response (${JSON.stringify(selection.stats.rejected)}); nothing to fine-tune on. Check the policy's outputs in the samples, or relax selection.dropNoAnswer / dropTruncated`,
      'NothingSelected',
    );
  }

  progress.stage = 'training';
  const sft = await trainWithBatchHalving(input, selection.sftData, training);

  progress.stage = 'evaluating';
  const newModel = tunedModelName(input.policy.model, sft.checkpoint);
  const servedNew = await serving.startPolicyServer({ checkpoint: sft.checkpoint, model: newModel, serving: input.serving, python: input.python, storeRoot: input.storeRoot });
  let after;
  try {
    after = await executeChild(evaluatePolicy, {
      workflowId: `${workflowId}-after`,
      args: [evaluationInput(input, { ...input.policy, model: newModel, baseUrls: [servedNew.baseUrl] })],
    });
  } finally {
    await stopServer(servedNew);
  }
  // Both evaluations graded the same questions: paired, the change's standard error is the one that fits.
  const change = await Promise.all(
    before.datasets.flatMap((b) => {
      const a = after.datasets.find((d) => d.dataset === b.dataset);
      return a ? [quick.compareEvaluations({ dataset: b.dataset, before: b.results, after: a.results })] : [];
    }),
  );

  const all = sampling.map((s) => s.samples);
  const result: RaftIterationResult = {
    runDir,
    policyBefore: input.policy.checkpoint,
    policyAfter: sft.checkpoint,
    sampling: {
      prompts: all.reduce((n, s) => n + s.prompts, 0),
      responses: all.reduce((n, s) => n + s.responses, 0),
      truncated: all.reduce((n, s) => n + s.truncated, 0),
      refused: all.reduce((n, s) => n + s.refused, 0),
      correct: all.reduce((n, s) => n + s.correct, 0),
    },
    selection: {
      ...selection.stats,
      mode: input.selection.mode,
      meanSelectedScore: meanSelectedScore(selection.stats),
      unscored: sampling.reduce((n, s) => n + (s.scores?.unscored ?? 0), 0),
    },
    selected: selection.selected,
    sft,
    before,
    after,
    change,
  };
  await quick.writeRunSummary({ runDir, summary: result });
  progress.stage = 'done';
  return result;
}

export function evaluationInput(input: Pick<RaftIterationInput, 'prompt' | 'evaluation' | 'grader' | 'python' | 'storeRoot' | 'taskQueues'>, policy: RaftIterationInput['policy']): EvaluatePolicyInput {
  const { checkpoint: _c, ...endpoint } = policy;
  return {
    policy: endpoint,
    prompt: input.prompt,
    evaluation: input.evaluation,
    grader: input.grader,
    python: input.python,
    storeRoot: input.storeRoot,
    taskQueues: input.taskQueues,
  };
}

/** Out of GPU memory: a smaller per-device batch and more accumulation (the same effective batch), if allowed. */
async function trainWithBatchHalving(
  input: RaftIterationInput,
  sftData: { uri: string; count: number; sha256: string },
  training: Pick<Activities, 'runSft'>,
): Promise<SftResult> {
  let perDeviceBatchSize = input.sft.perDeviceBatchSize;
  let gradientAccumulationSteps = input.sft.gradientAccumulationSteps;
  for (;;) {
    try {
      return await training.runSft({
        base: input.policy.checkpoint,
        sftData,
        sft: input.sft,
        perDeviceBatchSize,
        gradientAccumulationSteps,
        python: input.python,
        storeRoot: input.storeRoot,
      });
    } catch (err) {
      const oom = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === 'OutOfMemory';
      const smaller = smallerBatchSplit(perDeviceBatchSize, gradientAccumulationSteps);
      if (!oom || !input.sft.allowBatchHalving || !smaller) throw err;
      ({ perDeviceBatchSize, gradientAccumulationSteps } = smaller);
    }
  }
}

/** Stops a server on the worker that started it, even when the run is being cancelled. */
export async function stopServer(served: ServedPolicy): Promise<void> {
  const onItsWorker = proxyActivities<Activities>({ taskQueue: served.stopQueue, scheduleToCloseTimeout: '2 minutes' });
  await CancellationScope.nonCancellable(async () => {
    try {
      await onItsWorker.stopPolicyServer({ pid: served.pid });
    } catch {
      // No worker serves the machine's stop queue: the reaper stops the server once the run has ended.
    }
  });
}

