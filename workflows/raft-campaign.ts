// A RAFT campaign: iteration after iteration as child raftIterations, each from the policy the last one tuned and
// on its own slice of the prompts, triggered by `next` (or back to back with auto) until a stop rule ends it. It
// continues as new after every iteration, so its history stays small however many iterations it runs.
import {
  allHandlersFinished,
  CancellationScope,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  executeChild,
  isCancellation,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import {
  campaignIterationInput,
  initialCampaignState,
  nextRejection,
  recordIteration,
  stopReason,
  type CampaignState,
  type CampaignView,
  type RaftCampaignInput,
} from '../core/campaign.js';
import { runDir as runDirOf } from '../core/layout.js';
import { raftIteration } from './raft-iteration.js';

export const campaignQuery = defineQuery<CampaignView>('campaign');
/** Run the next iteration: rejected, with the reason, while one runs, when paused or after the campaign stopped. */
export const nextIterationUpdate = defineUpdate<{ iteration: number }>('next');
/** A Schedule's trigger: taken like `next` when the campaign is idle, else counted as skipped (overlap: skip). */
export const scheduledTriggerSignal = defineSignal('scheduledTrigger');
export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');
/** Stop: cancel the running iteration (its SFT job and servers are stopped), or let it finish first. */
export const stopSignal = defineSignal<[{ finishIteration: boolean }]>('stop');

export async function raftCampaign(input: RaftCampaignInput): Promise<CampaignView> {
  const { workflowId } = workflowInfo();
  const runDir = runDirOf(input.iteration.storeRoot, workflowId);
  const quick = proxyActivities<Activities>({
    taskQueue: input.iteration.taskQueues.cpu,
    startToCloseTimeout: '10 minutes',
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 5 },
  });

  // Handlers are set before the first await: a `next` that started this campaign arrives with its first task.
  let state: CampaignState = input.state ?? initialCampaignState(input, []);
  let stopRequest: { finishIteration: boolean } | null = null;
  let iterationScope: CancellationScope | null = null;
  const view = (): CampaignView => ({
    ...state,
    name: input.iteration.name,
    maxIterations: input.campaign.maxIterations,
    auto: input.auto,
    promptsPerIteration: input.campaign.promptsPerIteration,
  });

  setHandler(campaignQuery, view);
  setHandler(
    nextIterationUpdate,
    () => {
      state.triggers += 1;
      return { iteration: state.iterations + 1 };
    },
    {
      validator: () => {
        const reason = stopRequest ? 'the campaign is stopping' : nextRejection(state, input.auto);
        if (reason) throw new Error(reason);
      },
    },
  );
  setHandler(scheduledTriggerSignal, () => {
    if (!stopRequest && nextRejection(state, input.auto) === null) state.triggers += 1;
    else state.skippedTriggers += 1;
  });
  setHandler(pauseSignal, () => {
    state.paused = true;
  });
  setHandler(resumeSignal, () => {
    state.paused = false;
  });
  setHandler(stopSignal, (request) => {
    stopRequest = request;
    if (!request.finishIteration) iterationScope?.cancel();
  });

  const finish = async (reason: string): Promise<CampaignView> => {
    state = { ...state, status: 'stopped', stopReason: reason };
    await quick.writeCampaignReport({ runDir, campaign: view() });
    await condition(allHandlersFinished);
    return view();
  };

  if (!input.state) state.pool = await countPool(input, quick);
  for (;;) {
    const rule = stopReason(state, input.campaign);
    if (rule) return finish(rule);
    const triggered = () => !state.paused && (state.triggers > 0 || (input.auto && state.status !== 'failed'));
    // A long wait for triggers still grows the history (signals, updates): hand it over before it gets large.
    await condition(() => stopRequest !== null || triggered() || workflowInfo().continueAsNewSuggested);
    if (stopRequest) return finish(`stopped on request after ${state.iterations} iteration(s)`);
    if (!triggered()) return continueAsNew<typeof raftCampaign>({ ...input, state });

    state.triggers = Math.max(0, state.triggers - 1);
    state.status = 'running';
    const t = state.iterations + 1;
    // The same id for every attempt at iteration t: a retry after a failure finds its finished stages in the cache.
    const childId = `${workflowId}-iteration-${t}`;
    try {
      const result = await new CancellationScope().run(() => {
        iterationScope = CancellationScope.current();
        return executeChild(raftIteration, { workflowId: childId, args: [campaignIterationInput(input, state)] });
      });
      state = { ...recordIteration(state, input, childId, result), status: 'waiting' };
    } catch (err) {
      if (stopRequest && isCancellation(err)) return finish(`stopped on request during iteration ${t}: it was cancelled, its SFT job and servers stopped`);
      state = { ...state, status: 'failed', lastError: { iteration: t, message: rootMessage(err) } };
    } finally {
      iterationScope = null;
    }
    // Whether this iteration was the last is decided before anyone can see its row: never "waiting" for a stop.
    if (state.status !== 'failed') {
      const after = stopRequest ? `stopped on request after iteration ${t}` : stopReason(state, input.campaign);
      if (after) return finish(after);
    }
    await quick.writeCampaignReport({ runDir, campaign: view() });
    if (state.status === 'failed') continue;
    await condition(allHandlersFinished);
    return continueAsNew<typeof raftCampaign>({ ...input, state });
  }
}

/** The pool's size per prompt set (after skip and limit), from the prepared datasets. */
async function countPool(input: RaftCampaignInput, quick: Pick<Activities, 'prepareDataset'>): Promise<CampaignState['pool']> {
  const prepared = await Promise.all(input.iteration.sampling.datasets.map((dataset) => quick.prepareDataset({ dataset, storeRoot: input.iteration.storeRoot })));
  return prepared.map((d) => ({ name: d.name, count: d.count }));
}

/** A failure's root message: the stage that failed and why, not the child-workflow wrappers around it. */
function rootMessage(err: unknown): string {
  let e = err as { message?: string; cause?: unknown };
  while (e.cause && typeof e.cause === 'object') e = e.cause as typeof e;
  return e.message ?? String(err);
}
