// Comparing reward models by what they do to a policy: sample once, then one RAFT iteration per reward model and
// one per selection baseline (oracle, random, majority) on the same samples, to read the reward models against.
// Reward models with `train` are made here first: one labeling run, one PRM per label kind (the paper's chain).
import { ApplicationFailure, ChildWorkflowFailure, defineQuery, executeChild, setHandler, startChild, workflowInfo } from '@temporalio/workflow';
import { isTrainedRewardModel } from '../core/config.js';
import { labelsTag } from '../core/prm-training.js';
import { comparisonTable, type CompareProgress, type ComparePrmsInput, type ComparisonOutcome, type ComparisonResult } from '../core/comparison.js';
import { runDir as runDirOf } from '../core/layout.js';
import type { ArtifactManifest } from '../core/manifests.js';
import type { IterationPrm, RaftIterationInput } from '../core/raft.js';
import { SELECTION_BASELINES } from '../core/selection.js';
import { runSlidingWindow } from '../core/sliding-window.js';
import { evaluatePolicy } from './evaluate-policy.js';
import { labelPrmData } from './label-prm-data.js';
import { trainPrm } from './train-prm.js';
import { evaluationInput, raftIteration, raftProxies, sampleShardInput, withInputPolicy } from './raft-iteration.js';
import { shardJobs } from './shard-plan.js';

export const compareProgressQuery = defineQuery<CompareProgress>('progress');

export async function comparePrms(input: ComparePrmsInput): Promise<ComparisonResult> {
  const { rewardModels, prl, ...iteration } = input;
  const { quick, shards, serving } = raftProxies(input);
  const { workflowId } = workflowInfo();
  const runDir = runDirOf(input.storeRoot, workflowId);
  const progress: CompareProgress = { stage: 'preparing', shardsTotal: 0, shardsSampled: 0, finished: 0, failed: 0, iterations: rewardModels.length + SELECTION_BASELINES.length + (prl ? 1 : 0) };
  setHandler(compareProgressQuery, () => progress);
  // Started before sampling, so labeling and training overlap with it; settled, so a failure becomes that row's error.
  const prms = rewardModelsToRank(input, workflowId);

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
  const runs: Array<{ name: string; kind: ComparisonOutcome['kind']; selection: RaftIterationInput['selection']; prm?: Promise<Ranked> }> = [
    ...rewardModels.map((m) => ({ name: m.name, kind: isTrainedRewardModel(m) ? ('prm' as const) : m.kind, selection: { ...input.selection, mode: 'prm' as const }, prm: prms.get(m.name) })),
    ...SELECTION_BASELINES.map((mode) => ({ name: mode, kind: mode, selection: { ...input.selection, mode } })),
    ...(prl ? [{ name: 'prl', kind: 'prl' as const, selection: { ...input.selection, mode: 'prl' as const } }] : []),
  ];
  const outcomes: ComparisonOutcome[] = await Promise.all(
    runs.map(async ({ name, kind, selection, prm: ranked }): Promise<ComparisonOutcome> => {
      const resolved = ranked ? await ranked : undefined;
      if (resolved && 'error' in resolved) {
        progress.failed += 1;
        return { name, kind, error: resolved.error };
      }
      const prm = resolved?.prm;
      try {
        const child = await startChild(raftIteration, {
          workflowId: `${workflowId}-${name}`,
          args: [{ ...iteration, name: `${input.name}-${name}`, selection, prm, ...(selection.mode === 'prl' ? { prl } : {}), servePolicy: false, reuse: { samples, before } }],
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

type Ranked = { prm: IterationPrm } | { error: string };

/**
 * What each reward model's iteration ranks with: one reached at its URLs as it is; one with `train` once it is
 * trained (after the one labeling run they share), served by its iteration from the checkpoint.
 */
function rewardModelsToRank(input: ComparePrmsInput, workflowId: string): Map<string, Promise<Ranked>> {
  let labelRun: Promise<string> | undefined;
  const labelRunDir = (): Promise<string> => {
    const training = input.training;
    if (!training) return Promise.reject(ApplicationFailure.nonRetryable('reward models with `train` need the comparison input\'s training section', 'BadInput'));
    if (training.labelRunDir !== undefined) return Promise.resolve(training.labelRunDir);
    const labeling = training.labeling;
    if (!labeling) return Promise.reject(ApplicationFailure.nonRetryable('training needs labeling or labelRunDir', 'BadInput'));
    labelRun ??= executeChild(labelPrmData, { workflowId: `${workflowId}-labeling`, args: [labeling] }).then((s) => s.runDir);
    return labelRun;
  };
  return new Map(
    input.rewardModels.map((m) => {
      if (!isTrainedRewardModel(m)) {
        const { name: _n, ...prm } = m;
        return [m.name, Promise.resolve<Ranked>({ prm })];
      }
      const { name, train, ...endpoint } = m;
      const ranked = (async (): Promise<Ranked> => {
        const dir = await labelRunDir();
        const { serving, ...training } = input.training!.prmTraining;
        const trained = await executeChild(trainPrm, {
          workflowId: `${workflowId}-train-${name}`,
          args: [{ name: `${input.name}-${labelsTag(train)}`, labelRunDir: dir, train, training, python: input.python, storeRoot: input.storeRoot, taskQueues: input.taskQueues }],
        });
        return { prm: { ...endpoint, model: name, kind: 'prm', checkpoint: trained.checkpoint, serving } };
      })().catch((err: unknown) => {
        if (!(err instanceof ChildWorkflowFailure) && !(err instanceof ApplicationFailure)) throw err;
        return { error: `training ${name}: ${failureMessage(err)}` };
      });
      return [name, ranked];
    }),
  );
}

/** The innermost cause says what went wrong ("SFT job exited 2: …"); the outer layers only say where. */
function failureMessage(err: Error): string {
  let e: Error = err;
  while (e.cause instanceof Error) e = e.cause;
  return e.message;
}
