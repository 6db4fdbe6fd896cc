// raftCampaign on the Temporal dev server (the time-skipping test server delivers an update twice) with mocked activities: triggers, prompt slices, stop rules,
// failures that wait for the next trigger, and stop.
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunSftInput } from '../../activities/run-sft.js';
import { campaignInputFromConfig, CampaignView, type RaftCampaignInput } from '../../core/campaign.js';
import type { EvalDatasetConfig } from '../../core/config.js';
import { parseConfigText } from '../../core/parse-config.js';
import type { SftResult } from '../../core/raft.js';
import { nextIterationUpdate, stopSignal } from '../../workflows/raft-campaign.js';
import { mockActivities, STOP_QUEUE } from '../helpers/raft-mocks.js';
import { localEnv, recordHistory, runWorkers } from '../helpers/temporal.js';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await localEnv();
}, 120_000);
afterAll(async () => {
  await env?.teardown();
});

function campaignInput(campaign: string, auto = false): RaftCampaignInput {
  const parsed = parseConfigText(
    `
name: campaign-test
policy: { model: m, baseUrls: ["http://127.0.0.1:9/v1"], checkpoint: /ckpt/base }
prompt: { preset: tinymath }
evaluation: { datasets: [{ name: test, source: tinymath, path: t.jsonl }] }
sampling: { n: 4, shardSize: 10, datasets: [{ name: train, source: tinymath, path: tr.jsonl }, { name: extra, source: tinymath, path: x.jsonl }] }
selection: { mode: oracle }
sft: { learningRate: 0.0003, maxAttempts: 1 }
campaign: ${campaign}
temporal: { taskQueues: { cpu: camp-cpu, gpu: camp-gpu } }
`,
    'test.yaml',
  );
  if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
  return campaignInputFromConfig(parsed.config, undefined, auto);
}

interface Recorded {
  calls: string[];
  sft: RunSftInput[];
  prepared: EvalDatasetConfig[];
  views: CampaignView[];
}

/**
 * The RAFT mocks, with a pool of 30 `train` and 10 `extra` prompts, an SFT job whose checkpoint names its call, and
 * an evaluation whose accuracy is given per policy model (`accuracyOf`, default 1 of 2 right).
 */
function campaignActivities(rec: Recorded, opts: { sft?: (input: RunSftInput, call: number) => Promise<SftResult>; accuracyOf?: (model: string) => number } = {}) {
  const base = mockActivities(rec.calls);
  let sftCalls = 0;
  return {
    ...base,
    async prepareDataset(input: Parameters<typeof base.prepareDataset>[0]) {
      rec.prepared.push(input.dataset);
      const { slice, name } = input.dataset;
      const count = slice ? slice.end - slice.start : name === 'train' ? 30 : name === 'extra' ? 10 : 2;
      return { ...(await base.prepareDataset(input)), count };
    },
    async evaluateShard(input: Parameters<typeof base.evaluateShard>[0]) {
      const shard = await base.evaluateShard(input);
      const correct = opts.accuracyOf?.(input.policy.model) ?? 1;
      return { ...shard, tally: { total: 2, correct } };
    },
    async runSft(input: RunSftInput): Promise<SftResult> {
      sftCalls += 1;
      rec.sft.push(input);
      if (opts.sft) return opts.sft(input, sftCalls);
      return { checkpoint: `/cache/sft/call${sftCalls}aaaa/final`, steps: 10, lossFirst: 2 / sftCalls, lossLast: 1 / sftCalls, perDeviceBatchSize: 8, gradientAccumulationSteps: 1, cached: false };
    },
    async writeCampaignReport({ campaign }: { runDir: string; campaign: CampaignView }) {
      rec.views.push(campaign);
      return { html: '/r.html', markdown: '/t.md', json: '/c.json' };
    },
  };
}

/** An SFT job that finishes only when released: an iteration that stays running while the test acts. */
function heldSft(): { sft: (input: RunSftInput, call: number) => Promise<SftResult>; release: () => void } {
  let release: () => void = () => {};
  const released = new Promise<void>((r) => (release = r));
  const sft = async (_input: RunSftInput, call: number): Promise<SftResult> => {
    await released;
    return { checkpoint: `/cache/sft/call${call}held/final`, steps: 1, lossFirst: 1, lossLast: 1, perDeviceBatchSize: 8, gradientAccumulationSteps: 1, cached: false };
  };
  return { sft, release };
}

function recorder(): Recorded {
  return { calls: [], sft: [], prepared: [], views: [] };
}

/** Runs `drive` against a started campaign with workers for every queue the campaign and its iterations use. */
async function withCampaign<T>(activities: ReturnType<typeof campaignActivities>, input: RaftCampaignInput, workflowId: string, drive: (h: WorkflowHandle) => Promise<T>): Promise<T> {
  return runWorkers(env, ['camp-cpu', 'camp-gpu', STOP_QUEUE], activities, async () =>
    drive(await env.client.workflow.start('raftCampaign', { taskQueue: 'camp-cpu', workflowId, args: [input] })),
  );
}

async function view(h: WorkflowHandle): Promise<CampaignView> {
  return CampaignView.parse(await h.query('campaign'));
}

/** Polls the campaign's query until `ok` holds; fails with the last view after 30 s. */
async function until(h: WorkflowHandle, ok: (v: CampaignView) => boolean): Promise<CampaignView> {
  const deadline = Date.now() + 30_000;
  let last: CampaignView | null = null;
  while (Date.now() < deadline) {
    last = await view(h).catch(() => null);
    if (last && ok(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`campaign never reached the expected state; last: ${JSON.stringify(last)}`);
}

const sliceOf = (d: EvalDatasetConfig) => (d.slice ? `${d.name}[${d.slice.start},${d.slice.end})` : d.name);

describe('raftCampaign', () => {
  it('runs one iteration per trigger, each from the last tuned policy on its own prompts, until the prompts run out', async () => {
    const rec = recorder();
    const input = campaignInput('{ promptsPerIteration: 16, maxIterations: 5, learningRateDecay: linear, seed: 7 }');
    let firstRunId = '';
    const result = await withCampaign(campaignActivities(rec), input, 'camp-slices', async (h) => {
      firstRunId = (await h.describe()).runId;
      // Nothing runs before a trigger.
      expect((await until(h, (v) => v.status === 'waiting')).iterations).toBe(0);
      expect(rec.sft).toHaveLength(0);
      for (const t of [1, 2]) {
        expect(await h.executeUpdate(nextIterationUpdate)).toEqual({ iteration: t });
        await until(h, (v) => v.iterations === t);
      }
      return h.result();
    });
    const v = CampaignView.parse(result);
    // 40 prompts, 16 per iteration: a third iteration would need 48.
    expect(v.status).toBe('stopped');
    expect(v.stopReason).toBe('prompts ran out: 8 of the 40 in sampling.datasets are left, and an iteration takes 16');
    // The pool is counted once, then each iteration takes its share of each set, in proportion (30:10), disjoint.
    expect(rec.prepared.filter((d) => d.name !== 'test').map(sliceOf)).toEqual(['train', 'extra', 'train[0,12)', 'extra[0,4)', 'train[12,24)', 'extra[4,8)']);
    expect(rec.prepared.filter((d) => d.slice).every((d) => d.slice?.seed === 7)).toBe(true);
    // Iteration 2 starts from iteration 1's checkpoint, served by the pipeline under the name iteration 1 evaluated it.
    expect(rec.sft.map((s) => s.base)).toEqual(['/ckpt/base', '/cache/sft/call1aaaa/final']);
    expect(rec.calls).toContain('serve:m+raft-call1aaa');
    // Linear decay over maxIterations = 5: 5/5, then 4/5 of the learning rate.
    expect(rec.sft.map((s) => s.sft.learningRate)).toEqual([0.0003, 0.0003 * (4 / 5)]);
    expect(v.rows.map((r) => [r.iteration, r.prompts, r.policyAfter, r.sftLossLast])).toEqual([
      [1, 16, '/cache/sft/call1aaaa/final', 1],
      [2, 16, '/cache/sft/call2aaaa/final', 0.5],
    ]);
    expect(v.rows.map((r) => r.workflowId)).toEqual(['camp-slices-iteration-1', 'camp-slices-iteration-2']);
    expect(v.policy).toEqual({ checkpoint: '/cache/sft/call2aaaa/final', model: 'm+raft-call1aaa+raft-call2aaa' });
    expect(v.initialPolicy).toEqual({ checkpoint: '/ckpt/base', model: 'm' });
    // A report after each iteration; the last one's is the stop's (no moment where it looked like waiting).
    expect(rec.views.map((x) => [x.iterations, x.status])).toEqual([
      [1, 'waiting'],
      [2, 'stopped'],
    ]);
    // It continued as new after each iteration: its first run handed over, and the last one is another run.
    const first = env.client.workflow.getHandle('camp-slices', firstRunId);
    expect((await first.describe()).status.name).toBe('CONTINUED_AS_NEW');
    expect((await env.client.workflow.getHandle('camp-slices').describe()).runId).not.toBe(firstRunId);
  });

  it('rejects `next` while an iteration runs, and says why', async () => {
    const rec = recorder();
    const { sft, release } = heldSft();
    const activities = campaignActivities(rec, { sft });
    await withCampaign(activities, campaignInput('{ promptsPerIteration: 10, maxIterations: 1 }'), 'camp-reject', async (h) => {
      await h.executeUpdate(nextIterationUpdate);
      await until(h, (v) => v.status === 'running');
      const rejected = await h.executeUpdate(nextIterationUpdate).catch((e: unknown) => e);
      expect(rejected).toBeInstanceOf(WorkflowUpdateFailedError);
      expect((rejected as WorkflowUpdateFailedError).cause?.message).toBe('iteration 1 is running; trigger the next one when it has finished');
      release();
      const done = CampaignView.parse(await h.result());
      expect(done.stopReason).toBe('reached maxIterations (1)');
      // After the stop, a trigger is refused with the reason too (on the closed run it cannot even be delivered).
      expect(await h.executeUpdate(nextIterationUpdate).catch((e: unknown) => e)).toBeInstanceOf(Error);
    });
  });

  it("takes a Schedule's trigger like `next` when idle, and counts one that comes while an iteration runs as skipped", async () => {
    const rec = recorder();
    const { sft, release } = heldSft();
    const activities = campaignActivities(rec, { sft });
    const trigger = (n: number) => env.client.workflow.execute('triggerCampaign', { taskQueue: 'camp-cpu', workflowId: `camp-sched-trigger-${n}`, args: [{ campaignId: 'camp-sched' }] });
    const done = await withCampaign(activities, campaignInput('{ promptsPerIteration: 10, maxIterations: 1 }'), 'camp-sched', async (h) => {
      await until(h, (v) => v.status === 'waiting');
      await trigger(1);
      await until(h, (v) => v.status === 'running');
      await trigger(2);
      expect((await until(h, (v) => v.skippedTriggers === 1)).triggers).toBe(0);
      release();
      return h.result();
    });
    const v = CampaignView.parse(done);
    expect(v.iterations).toBe(1);
    expect(v.skippedTriggers).toBe(1);
    await recordHistory(env.client, 'camp-sched-trigger-1');
  });

  it('waits after a failed iteration with the error visible, and the next trigger runs that same iteration again', async () => {
    const rec = recorder();
    let broken = true;
    const activities = campaignActivities(rec, {
      sft: async (_input, call) => {
        if (call === 2 && broken) throw ApplicationFailure.nonRetryable('SFT job exited 1 (fake crash)', 'SftFailed');
        return { checkpoint: `/cache/sft/call${call}cccc/final`, steps: 1, lossFirst: 1, lossLast: 1, perDeviceBatchSize: 8, gradientAccumulationSteps: 1, cached: false };
      },
    });
    // --auto: iterations back to back, but a failure still waits for a trigger.
    await withCampaign(activities, campaignInput('{ promptsPerIteration: 10, maxIterations: 2 }', true), 'camp-fail', async (h) => {
      const failed = await until(h, (v) => v.status === 'failed');
      expect(failed.iterations).toBe(1);
      expect(failed.lastError).toEqual({ iteration: 2, message: 'SFT job exited 1 (fake crash)' });
      // The cursor did not move: the retry gets the same prompts.
      expect(failed.cursor).toBe(10);
      broken = false;
      expect(await h.executeUpdate(nextIterationUpdate)).toEqual({ iteration: 2 });
      const done = CampaignView.parse(await h.result());
      expect(done.rows.map((r) => r.workflowId)).toEqual(['camp-fail-iteration-1', 'camp-fail-iteration-2']);
      expect(done.lastError).toBeNull();
      expect(done.stopReason).toBe('reached maxIterations (2)');
    });
    // The representative run for replay: a child failure caught, an update, a child rerun, a stop.
    await recordHistory(env.client, 'camp-fail');
    // Iteration 2 ran twice on the same slice of prompts, from the same policy.
    const slices = rec.prepared.filter((d) => d.slice).map(sliceOf);
    expect(slices).toEqual(['train[0,7)', 'extra[0,2)', 'train[7,15)', 'extra[2,5)', 'train[7,15)', 'extra[2,5)']);
    expect(rec.sft.map((s) => s.base)).toEqual(['/ckpt/base', '/cache/sft/call1cccc/final', '/cache/sft/call1cccc/final']);
  });

  it('stops when accuracy has not improved for `patience` iterations, and names the best policy', async () => {
    const rec = recorder();
    // The initial policy gets 1 of 2 right; iteration 1's policy 2 of 2; iteration 2's 0 of 2.
    const accuracyOf = (model: string) => (model === 'm' ? 1 : model.split('+raft-').length === 2 ? 2 : 0);
    const done = await withCampaign(campaignActivities(rec, { accuracyOf }), campaignInput('{ promptsPerIteration: 5, maxIterations: 5, patience: 1 }', true), 'camp-patience', (h) => h.result());
    const v = CampaignView.parse(done);
    expect(v.iterations).toBe(2);
    expect(v.best).toMatchObject({ iteration: 1, accuracy: 1, policy: { checkpoint: '/cache/sft/call1aaaa/final' } });
    expect(v.stopReason).toBe('no new best accuracy in 1 iteration(s); the best policy is iteration 1 (100.0%, /cache/sft/call1aaaa/final)');
    expect(v.rows.map((r) => r.accuracy[0]?.after)).toEqual([1, 0]);
    expect(v.rows[0]?.accuracy[0]?.before).toBe(0.5);
    expect(v.initialAccuracy).toBe(0.5);
  });

  it('stop cancels the running iteration (its SFT job sees the cancellation) and ends the campaign', async () => {
    const rec = recorder();
    let sftCancelled = false;
    const activities = campaignActivities(rec, {
      sft: async () => {
        // As the real job does: heartbeat while training, so a cancellation reaches it.
        for (;;) {
          try {
            Context.current().heartbeat({ step: 1 });
            await Context.current().sleep(200);
          } catch (err) {
            if (err instanceof CancelledFailure) sftCancelled = true;
            throw err;
          }
        }
      },
    });
    const done = await withCampaign(activities, campaignInput('{ promptsPerIteration: 10, maxIterations: 3 }', true), 'camp-stop', async (h) => {
      await until(h, (v) => v.status === 'running' && rec.sft.length === 1);
      await h.signal(stopSignal, { finishIteration: false });
      return h.result();
    });
    const v = CampaignView.parse(done);
    expect(v.status).toBe('stopped');
    expect(v.stopReason).toBe('stopped on request during iteration 1: it was cancelled, its SFT job and servers stopped');
    expect(v.iterations).toBe(0);
    expect(sftCancelled).toBe(true);
  });
});
