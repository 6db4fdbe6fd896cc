// trainPrm on the time-skipping test server with mocked activities: the labels exported on the cpu queue, that
// export trained on the gpu queue with the configured timeout, crashes retried up to maxAttempts, bad data not retried.
import { Context } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import type { RunPrmTrainingInput } from '../../activities/train-prm.js';
import { parseConfigText } from '../../core/parse-config.js';
import { trainPrmInputFromConfig, type PrmTrainingResult, type TrainPrmInput } from '../../core/prm-training.js';
import { recordHistory, timeSkippingEnv, workflowBundle } from '../helpers/temporal.js';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await timeSkippingEnv();
}, 120_000);
afterAll(async () => {
  await env?.teardown();
});

function testInput(prmTraining = '{ base: /ckpt/base, maxSteps: 5, maxAttempts: 3, timeoutHours: 2 }'): TrainPrmInput {
  const parsed = parseConfigText(
    `
name: prm-test
policy: { model: m, baseUrls: ["http://127.0.0.1:9/v1"] }
prompt: { preset: tinymath }
evaluation: { datasets: [{ name: test, source: tinymath, path: t.jsonl }] }
prmTraining: ${prmTraining}
temporal: { taskQueues: { cpu: prm-cpu, gpu: prm-gpu } }
`,
    'test.yaml',
  );
  if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
  return trainPrmInputFromConfig(parsed.config, '/store/runs/label-x', { labels: 'er', eta: 2 });
}

type TrainActivities = Pick<Activities, 'exportPrmTrainingData' | 'runPrmTraining'>;

interface Seen {
  calls: string[];
  /** Each training attempt: its queue, timeouts and input. */
  attempts: Array<{ queue: string; attempt: number; startToCloseMs: number; heartbeatMs: number | undefined; input: RunPrmTrainingInput }>;
}

function mockActivities(seen: Seen, train?: (input: RunPrmTrainingInput, attempt: number) => void): TrainActivities {
  return {
    async exportPrmTrainingData({ labelRunDir, train: labels }) {
      seen.calls.push(`export:${Context.current().info.taskQueue}:${labelRunDir}:${labels.labels}${labels.eta ?? ''}`);
      return { uri: `/store/cache/prm-data/${labels.labels}-${labels.eta}/train.jsonl`, count: 40, sha256: 'data-sha' };
    },
    async runPrmTraining(input): Promise<PrmTrainingResult> {
      const { info } = Context.current();
      seen.attempts.push({ queue: info.taskQueue, attempt: info.attempt, startToCloseMs: info.startToCloseTimeoutMs, heartbeatMs: info.heartbeatTimeoutMs, input });
      seen.calls.push(`train:${info.attempt}`);
      train?.(input, info.attempt);
      const provenance = { labelRunDir: input.labelRunDir, labels: input.train.labels, eta: input.train.eta ?? null, base: input.training.base, trainingData: input.data, job: {} };
      return { checkpoint: `/store/cache/prm/k${info.attempt}/checkpoint`, provenance, steps: input.training.maxSteps, lossFirst: 1, lossLast: 0.5, cached: false };
    },
  };
}

/** Runs the workflow to its end and reads its progress query once more (a query needs a worker running). */
async function run(activities: TrainActivities, input: TrainPrmInput, workflowId: string): Promise<PrmTrainingResult & { progress: unknown }> {
  const bundle = await workflowBundle();
  const workers = await Promise.all(
    [input.taskQueues.cpu, input.taskQueues.gpu].map((taskQueue) => Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: bundle, activities })),
  );
  const [cpu, gpu] = workers;
  const execution = (async () => {
    const handle = await env.client.workflow.start('trainPrm', { taskQueue: input.taskQueues.cpu, workflowId, args: [input] });
    const result = (await handle.result()) as PrmTrainingResult;
    return { ...result, progress: await handle.query('progress') };
  })();
  return cpu!.runUntil(gpu!.runUntil(execution));
}

function messages(err: unknown): string {
  const all: string[] = [];
  for (let e: unknown = err; e instanceof Error; e = e.cause) all.push(e.message);
  return all.join(' | ');
}

describe('trainPrm', () => {
  it('exports the chosen labels on the cpu queue, trains that export on the gpu queue, and resumes a crashed job', async () => {
    const seen: Seen = { calls: [], attempts: [] };
    const input = testInput();
    const result = await run(
      mockActivities(seen, (_i, attempt) => {
        if (attempt === 1) throw new Error('PRM training job exited 1; the next attempt resumes from its last checkpoint');
      }),
      input,
      'prm-train',
    );
    expect(seen.calls).toEqual(['export:prm-cpu:/store/runs/label-x:er2', 'train:1', 'train:2']);
    // Both attempts train exactly what the export produced, with the training settings minus serving, on the gpu queue.
    for (const a of seen.attempts) {
      expect(a.queue).toBe('prm-gpu');
      expect(a.input.data).toEqual({ uri: '/store/cache/prm-data/er-2/train.jsonl', count: 40, sha256: 'data-sha' });
      expect(a.input).toMatchObject({ labelRunDir: '/store/runs/label-x', train: { labels: 'er', eta: 2 }, training: { base: '/ckpt/base', maxSteps: 5 } });
      expect(a.input.training).not.toHaveProperty('serving');
      // timeoutHours: 2 bounds each attempt; a silent job is noticed in two minutes.
      expect(a.startToCloseMs).toBe(2 * 3600 * 1000);
      expect(a.heartbeatMs).toBe(120_000);
    }
    // The result is the second attempt's.
    expect(result.checkpoint).toBe('/store/cache/prm/k2/checkpoint');
    expect(result.provenance).toMatchObject({ labelRunDir: '/store/runs/label-x', labels: 'er', eta: 2, base: '/ckpt/base' });
    expect(result.progress).toEqual({ stage: 'done' });

    await recordHistory(env.client, 'prm-train');
  });

  it('gives up after maxAttempts crashes, with the job message', async () => {
    const seen: Seen = { calls: [], attempts: [] };
    const error = await run(
      mockActivities(seen, () => {
        throw new Error('PRM training job killed by signal 9');
      }),
      testInput('{ base: /ckpt/base, maxSteps: 5, maxAttempts: 2 }'),
      'prm-train-crashes',
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect(seen.attempts.map((a) => a.attempt)).toEqual([1, 2]);
    expect(messages(error)).toContain('killed by signal 9');
  });

  it('fails at once on bad training data, without retrying', async () => {
    const seen: Seen = { calls: [], attempts: [] };
    const error = await run(
      mockActivities(seen, () => {
        throw ApplicationFailure.nonRetryable('PRM training job rejected its config or data: line 3: labels out of [0, 1]', 'BadInput');
      }),
      testInput(),
      'prm-train-bad-data',
    ).catch((e: unknown) => e);
    expect(seen.attempts).toHaveLength(1);
    expect(messages(error)).toContain('labels out of [0, 1]');
  });
});
