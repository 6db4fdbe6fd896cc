// Zero-shot CoT evaluation of a policy: prepare the sets, run shards in a sliding window, add them up.
import { defineQuery, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import { combineShards, type EvaluatePolicyInput, type EvaluationProgress } from '../core/evaluation.js';
import type { DatasetAccuracy, EvaluationSummary } from '../core/manifests.js';
import { runSlidingWindow } from '../core/sliding-window.js';
import { shardJobs } from './shard-plan.js';
import { shardActivityOptions } from './shard-options.js';
import { runDir as runDirOf } from '../core/layout.js';
import type { EvaluationActivities } from '../activities/index.js';

export const evaluationProgressQuery = defineQuery<EvaluationProgress>('progress');

export async function evaluatePolicy(input: EvaluatePolicyInput): Promise<EvaluationSummary> {
  const quick = proxyActivities<EvaluationActivities>({
    taskQueue: input.taskQueues.cpu,
    startToCloseTimeout: '10 minutes',
    // Bounded: an unreachable policy server should fail the run in minutes, not hang it for days.
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 5 },
  });
  const shards = proxyActivities<EvaluationActivities>(shardActivityOptions(input.taskQueues.cpu, `${evaluationShardTimeoutSeconds(input)} seconds`));

  const progress: EvaluationProgress = { stage: 'preparing', datasets: [] };
  setHandler(evaluationProgressQuery, () => progress);

  const runDir = runDirOf(input.storeRoot, workflowInfo().workflowId);
  const datasets = await Promise.all(
    input.evaluation.datasets.map((dataset) => quick.prepareDataset({ dataset, storeRoot: input.storeRoot })),
  );
  const { fingerprint } = await quick.checkPolicy({ policy: input.policy, maxTokens: input.evaluation.maxTokens });

  const jobs = shardJobs(datasets, input.evaluation.shardSize, 'evaluation.shardSize');
  for (const dataset of datasets) {
    const shardsTotal = jobs.filter((j) => j.dataset === dataset).length;
    progress.datasets.push({ name: dataset.name, total: dataset.count, shardsTotal, shardsDone: 0, questionsDone: 0, correct: 0 });
  }

  progress.stage = 'sampling';
  const results = await runSlidingWindow(jobs, input.evaluation.maxShardsInFlight, async ({ dataset, shard }) => {
    const result = await shards.evaluateShard({ ...input, dataset, shard, policyFingerprint: fingerprint });
    const p = progress.datasets.find((d) => d.name === dataset.name);
    if (p) {
      p.shardsDone += 1;
      p.questionsDone += result.tally.total;
      p.correct += result.tally.correct;
    }
    return result;
  });

  progress.stage = 'summarizing';
  const accuracies: DatasetAccuracy[] = [];
  for (const dataset of datasets) {
    const mine = results.filter((r) => r.dataset === dataset.name).sort((a, b) => a.shard - b.shard);
    const merged = await quick.mergeShardResults({ runDir, dataset: dataset.name, shards: mine });
    accuracies.push({ dataset: dataset.name, source: dataset.source, ...combineShards(mine), results: merged });
  }
  const summary: EvaluationSummary = {
    runDir,
    policy: input.policy.model,
    datasets: accuracies,
    shardsCached: results.filter((r) => r.cached).length,
    shardsRun: results.filter((r) => !r.cached).length,
  };
  await quick.writeRunSummary({ runDir, summary });
  progress.stage = 'done';
  return summary;
}

/**
 * The longest a live evaluation shard may take: every round of requests (promptsPerRequest prompts to a request,
 * maxConcurrency requests at a time) timing out on every attempt of the client, and half an hour for the grader.
 * A dead worker is noticed by the heartbeat long before.
 */
export function evaluationShardTimeoutSeconds(input: Pick<EvaluatePolicyInput, 'policy' | 'evaluation'>): number {
  const { policy, evaluation } = input;
  const rounds = Math.ceil(evaluation.shardSize / (policy.promptsPerRequest * policy.maxConcurrency));
  return rounds * policy.requestTimeoutSeconds * (policy.maxRetries + 1) + 30 * 60;
}
