// ER-PRM labeling: K solutions per problem, M completions per step prefix, per-step counts stored shard by shard.
import { defineQuery, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { LabelShardCommon } from '../activities/label-shard.js';
import { summarizeLabelShards, type LabelPrmDataInput, type LabelProgress, type LabelRunSummary } from '../core/labeling.js';
import { runDir as runDirOf } from '../core/layout.js';
import { runSlidingWindow } from '../core/sliding-window.js';
import { shardJobs } from './shard-plan.js';
import { shardActivityOptions } from './shard-options.js';

export const labelProgressQuery = defineQuery<LabelProgress>('progress');

export async function labelPrmData(input: LabelPrmDataInput): Promise<LabelRunSummary> {
  const quick = proxyActivities<Activities>({
    taskQueue: input.taskQueues.cpu,
    startToCloseTimeout: '10 minutes',
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 5 },
  });
  const shards = proxyActivities<Activities>(shardActivityOptions(input.taskQueues.cpu, '24 hours'));

  const runDir = runDirOf(input.storeRoot, workflowInfo().workflowId);
  const progress: LabelProgress = { stage: 'preparing', shardsTotal: 0, shardsDone: 0, problemsTotal: 0, problemsDone: 0, completions: 0 };
  setHandler(labelProgressQuery, () => progress);

  const datasets = await Promise.all(input.labeling.datasets.map((dataset) => quick.prepareDataset({ dataset, storeRoot: input.storeRoot })));
  const [generator, completer] = await Promise.all([
    quick.checkPolicy({ policy: input.generator, maxTokens: input.labeling.maxTokens }),
    quick.checkPolicy({ policy: input.completer, maxTokens: input.labeling.maxTokens }),
  ]);
  const common: LabelShardCommon = {
    generator: input.generator,
    completer: input.completer,
    prompt: input.prompt,
    labeling: input.labeling,
    steps: input.steps,
    grader: input.grader,
    python: input.python,
    storeRoot: input.storeRoot,
    generatorFingerprint: generator.fingerprint,
    completerFingerprint: completer.fingerprint,
  };
  const jobs = shardJobs(datasets, input.labeling.shardSize, 'labeling.shardSize');
  // Before any shard runs: an export of an unfinished run can then name the shards it lacks.
  await quick.writeLabelPlan({ runDir, common, datasets });

  progress.stage = 'labeling';
  progress.shardsTotal = jobs.length;
  progress.problemsTotal = datasets.reduce((n, d) => n + d.count, 0);
  const results = await runSlidingWindow(jobs, input.labeling.maxShardsInFlight, async ({ dataset, shard }) => {
    const result = await shards.labelShard({ ...common, dataset, shard });
    progress.shardsDone += 1;
    progress.problemsDone += result.problems;
    progress.completions += result.completions;
    return result;
  });

  const summary = summarizeLabelShards(runDir, input, results);
  await quick.writeRunSummary({ runDir, summary });
  progress.stage = 'done';
  return summary;
}
