// Comparing reward models by what they do to a policy: sample once, then one RAFT iteration per reward model and
// one per selection baseline (oracle, random, majority) on the same samples, to read the reward models against.
import { ChildWorkflowFailure, defineQuery, setHandler, startChild, workflowInfo } from '@temporalio/workflow';
import { comparisonTable, type CompareProgress, type ComparePrmsInput, type ComparisonOutcome, type ComparisonResult } from '../core/comparison.js';
import { runDir as runDirOf } from '../core/layout.js';
import type { ArtifactManifest } from '../core/manifests.js';
import type { RaftIterationInput } from '../core/raft.js';
import { SELECTION_BASELINES } from '../core/selection.js';
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
  const progress: CompareProgress = { stage: 'preparing', shardsTotal: 0, shardsSampled: 0, finished: 0, failed: 0, iterations: rewardModels.length + SELECTION_BASELINES.length };
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

  // One iteration per reward model and per selection baseline, side by side; a failed one becomes a row with its
  // error, not a lost comparison. Reward models always rank (mode prm); the baselines have no reward model.
  progress.stage = 'iterating';
  const runs: Array<{ name: string; kind: ComparisonOutcome['kind']; selection: RaftIterationInput['selection']; prm?: RaftIterationInput['prm'] }> = [
    ...rewardModels.map(({ name, ...prm }) => ({ name, kind: prm.kind, selection: { ...input.selection, mode: 'prm' as const }, prm })),
    ...SELECTION_BASELINES.map((mode) => ({ name: mode, kind: mode, selection: { ...input.selection, mode } })),
  ];
  const outcomes: ComparisonOutcome[] = await Promise.all(
    runs.map(async ({ name, kind, selection, prm }): Promise<ComparisonOutcome> => {
      try {
        const child = await startChild(raftIteration, {
          workflowId: `${workflowId}-${name}`,
          args: [{ ...iteration, name: `${input.name}-${name}`, selection, prm, servePolicy: false, reuse: { samples, before } }],
        });
        const result = await child.result();
        progress.finished += 1;
        return { name, kind, result };
      } catch (err) {
        if (!(err instanceof ChildWorkflowFailure)) throw err;
        progress.failed += 1;
        return { name, kind, error: failureMessage(err) };
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
