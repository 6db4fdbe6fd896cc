// Best-of-N evaluation of reward models: sample the test problems once, score the samples with every reward
// model, then one table per reward model and aggregation (the paper's Tables 2–10 and figures).
import { ActivityFailure, ApplicationFailure, defineQuery, isCancellation, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { BestOfNInput, BestOfNProgress, BestOfNResult, FailedRewardModel } from '../core/best-of-n.js';
import { runDir as runDirOf } from '../core/layout.js';
import type { ScoreShardResult } from '../core/raft.js';
import { runSlidingWindow } from '../core/sliding-window.js';
import { shardJobs } from './shard-plan.js';
import { shardActivityOptions } from './shard-options.js';

export const bestOfNProgressQuery = defineQuery<BestOfNProgress>('progress');

export async function bestOfN(input: BestOfNInput): Promise<BestOfNResult> {
  const quick = proxyActivities<Activities>({
    taskQueue: input.taskQueues.cpu,
    startToCloseTimeout: '30 minutes',
    // Bounded: an unreachable server should fail the run in minutes, not hang it for days.
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 5 },
  });
  const shards = proxyActivities<Activities>(shardActivityOptions(input.taskQueues.cpu, '12 hours'));

  const runDir = runDirOf(input.storeRoot, workflowInfo().workflowId);
  // A reward model's progress entry is also its state: one whose error is set has dropped out of the run.
  const models = input.rewardModels.map((config) => ({ config, fingerprint: '', status: { name: config.name, shardsScored: 0, error: null as string | null } }));
  const progress: BestOfNProgress = { stage: 'preparing', shardsTotal: 0, shardsSampled: 0, promptsTotal: 0, rewardModels: models.map((m) => m.status) };
  setHandler(bestOfNProgressQuery, () => progress);

  // A reward model that fails for good (a non-retryable error, or retries used up) leaves the others going.
  const forModel = async <T>(model: (typeof models)[number], work: () => Promise<T>): Promise<T | null> => {
    if (model.status.error !== null) return null;
    try {
      return await work();
    } catch (err) {
      if (!(err instanceof ActivityFailure) || isCancellation(err)) throw err;
      model.status.error ??= innermostMessage(err);
      return null;
    }
  };

  const datasets = await Promise.all(input.sampling.datasets.map((dataset) => quick.prepareDataset({ dataset, storeRoot: input.storeRoot })));
  const [{ fingerprint }] = await Promise.all([
    quick.checkPolicy({ policy: input.policy, maxTokens: input.sampling.maxTokens }),
    ...models.map((m) =>
      forModel(m, async () => {
        m.fingerprint = (await quick.checkPrm({ prm: m.config })).fingerprint;
      }),
    ),
  ]);

  const jobs = shardJobs(datasets, input.sampling.shardSize, 'bestOfN.sampling.shardSize');
  progress.stage = 'sampling';
  progress.shardsTotal = jobs.length;
  progress.promptsTotal = datasets.reduce((n, d) => n + d.count, 0);
  const sampled = await runSlidingWindow(jobs, input.sampling.maxShardsInFlight, async ({ dataset, shard }) => {
    const samples = await shards.sampleShard({
      prompt: input.prompt,
      sampling: input.sampling,
      grader: input.grader,
      python: input.python,
      storeRoot: input.storeRoot,
      // sampleShard's input type carries a checkpoint it never reads; best-of-N needs none.
      policy: { ...input.policy, checkpoint: input.policy.checkpoint ?? '' },
      policyFingerprint: fingerprint,
      dataset,
      shard,
    });
    progress.shardsSampled += 1;
    // Every reward model scores the same samples; each one's scores are cached under its own fingerprint.
    const scores = await Promise.all(
      models.map((m) =>
        forModel(m, async () => {
          const s = await shards.scoreShard({ prm: m.config, steps: input.steps, storeRoot: input.storeRoot, prmFingerprint: m.fingerprint, samples });
          m.status.shardsScored += 1;
          return s;
        }),
      ),
    );
    return { samples, scores };
  });

  const kept = models.flatMap(({ config, status }, i) =>
    status.error === null ? [{ name: config.name, kind: config.kind, scores: sampled.map((s) => s.scores[i] as ScoreShardResult) }] : [],
  );
  const failed: FailedRewardModel[] = models.flatMap(({ config, status }) => (status.error === null ? [] : [{ name: config.name, kind: config.kind, error: status.error }]));
  if (kept.length === 0) {
    throw ApplicationFailure.nonRetryable(`every reward model failed, so there is no table: ${failed.map((f) => `${f.name}: ${f.error}`).join('; ')}`, 'NoRewardModel');
  }

  progress.stage = 'tables';
  const result = await quick.bestOfNTables({
    name: input.name,
    runDir,
    samplesPerProblem: input.sampling.n,
    tables: input.tables,
    samples: sampled.map((s) => s.samples),
    rewardModels: kept,
    failed,
  });
  progress.stage = 'done';
  return result;
}

/** The activity's own message (e.g. the PRM server's answer), not "Activity task failed". */
function innermostMessage(err: Error): string {
  let message = err.message;
  for (let e: unknown = err.cause; e instanceof Error; e = e.cause) if (e.message) message = e.message;
  return message;
}
