// Comparing reward models by what they do to a policy: sample once, then one RAFT iteration per reward model.
import { ChildWorkflowFailure, defineQuery, setHandler, startChild, workflowInfo } from '@temporalio/workflow';
import { comparisonTable, type CompareProgress, type ComparePrmsInput, type ComparisonOutcome, type ComparisonResult } from '../core/comparison.js';
import { runDir as runDirOf } from '../core/layout.js';
import type { ArtifactManifest } from '../core/manifests.js';
import { runSlidingWindow } from '../core/sliding-window.js';
import { evaluatePolicy } from './evaluate-policy.js';
import { evaluationInput, raftIteration, raftProxies, sampleShardInput, withInputPolicy } from './raft-iteration.js';
import { shardJobs } from './shard-plan.js';

export const compareProgressQuery = defineQuery<CompareProgress>('progress');

export async function comparePrms(input: ComparePrmsInput): Promise<ComparisonResult> {
  const { rewardModels, ...iteration } = input;
  const { quick, shards, serving } = raftProxies({ ...input, prmTimeoutSeconds: Math.max(...rewardModels.map((r) => r.requestTimeoutSeconds)) });
  const { workflowId } = workflowInfo();
  const runDir = runDirOf(input.storeRoot, workflowId);
  const progress: CompareProgress = { stage: 'preparing', shardsTotal: 0, shardsSampled: 0, finished: 0, failed: 0, rewardModels: rewardModels.length };
  setHandler(compareProgressQuery, () => progress);

  // The shared stages, once: the samples every reward model ranks, and the untuned baseline's evaluation.
  const datasets = await Promise.all(input.sampling.datasets.map((dataset) => quick.prepareDataset({ dataset, storeRoot: input.storeRoot })));
  const [samples, before] = await withInputPolicy(input, serving, async (policy) => {
    const { fingerprint } = await quick.checkPolicy({ policy, maxTokens: input.sampling.maxTokens });
    const baseline = await startChild(evaluatePolicy, { workflowId: `${workflowId}-baseline`, args: [evaluationInput(input, policy)] });
    const jobs = shardJobs(datasets, input.sampling.shardSize, 'sampling.shardSize');
    progress.stage = 'sampling';
    progress.shardsTotal = jobs.length;
    const sampled = await runSlidingWindow(jobs, input.sampling.maxShardsInFlight, async (job) => {
      const result = await shards.sampleShard(sampleShardInput(input, policy, fingerprint, job));
      progress.shardsSampled += 1;
      return result;
    });
    return [sampled, await baseline.result()] as const;
  });

  // One iteration per reward model, side by side; a failed one becomes a row with its error, not a lost comparison.
  progress.stage = 'iterating';
  const outcomes: ComparisonOutcome[] = await Promise.all(
    rewardModels.map(async ({ name, ...prm }): Promise<ComparisonOutcome> => {
      try {
        const child = await startChild(raftIteration, {
          workflowId: `${workflowId}-${name}`,
          args: [{ ...iteration, name: `${input.name}-${name}`, prm, servePolicy: false, reuse: { samples, before } }],
        });
        const result = await child.result();
        progress.finished += 1;
        return { name, kind: prm.kind, result };
      } catch (err) {
        if (!(err instanceof ChildWorkflowFailure)) throw err;
        progress.failed += 1;
        return { name, kind: prm.kind, error: failureMessage(err) };
      }
    }),
  );

  progress.stage = 'reporting';
  const table = comparisonTable(input.name, before, outcomes);
  const selected: Record<string, ArtifactManifest> = {};
  for (const o of outcomes) if ('result' in o) selected[o.name] = o.result.selected;
  const report = await quick.writeComparisonReportFiles({ runDir, table, selected });
  const result: ComparisonResult = { kind: 'comparison', runDir, table, selected, report };
  await quick.writeRunSummary({ runDir, summary: result });
  progress.stage = 'done';
  return result;
}

/** The innermost cause says what went wrong ("SFT job exited 2: …"); the outer layers only say where. */
function failureMessage(err: Error): string {
  let e: Error = err;
  while (e.cause instanceof Error) e = e.cause;
  return e.message;
}
