// labelLogprobs on the time-skipping test server with a mocked log-prob stage: every labels shard under π and π0 on
// the gpu queue, in shard order, π0 skipped when it is π, a crashed job retried, bad input not.
import { Context } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import type { LogprobShardInput } from '../../activities/logprob-shard.js';
import { labelLogprobsInput } from '../../cli/label.js';
import { parseConfigText } from '../../core/parse-config.js';
import type { LabelLogprobsInput, LabelLogprobsResult } from '../../core/prl-export.js';
import { recordHistory, timeSkippingEnv, workflowBundle } from '../helpers/temporal.js';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await timeSkippingEnv();
}, 120_000);
afterAll(async () => {
  await env?.teardown();
});

const shards = [0, 1].map((i) => ({ uri: `/store/cache/labels/k${i}/labels.jsonl`, count: 3, sha256: `sha-${i}`, dataset: 'train', shard: i }));

function testInput(initialPolicy = '/ckpt/pi0'): LabelLogprobsInput {
  const parsed = parseConfigText(
    `
name: lp-test
policy: { model: m, baseUrls: ["http://127.0.0.1:9/v1"] }
prompt: { preset: tinymath }
evaluation: { datasets: [{ name: test, source: tinymath, path: t.jsonl }] }
sft: { maxAttempts: 2, timeoutHours: 3 }
prl: { eta: 2, logprobs: { device: cpu } }
temporal: { taskQueues: { cpu: lp-cpu, gpu: lp-gpu } }
`,
    'test.yaml',
  );
  if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
  return labelLogprobsInput(parsed.config, shards, { policy: '/ckpt/pi', initialPolicy });
}

async function run(logprobShard: (input: LogprobShardInput) => Promise<unknown>, input: LabelLogprobsInput, workflowId: string): Promise<LabelLogprobsResult> {
  const bundle = await workflowBundle();
  const activities = { logprobShard } as unknown as Pick<Activities, 'logprobShard'>;
  const workers = await Promise.all([input.taskQueues.cpu, input.taskQueues.gpu].map((taskQueue) => Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: bundle, activities })));
  const execution = env.client.workflow.execute('labelLogprobs', { taskQueue: input.taskQueues.cpu, workflowId, args: [input] });
  const [cpu, gpu] = workers;
  return cpu!.runUntil(gpu!.runUntil(execution)) as Promise<LabelLogprobsResult>;
}

const result = (input: LogprobShardInput) => ({ uri: `/lp/${input.shard.shard}${input.checkpoint}`, count: 3, sha256: 'x', dataset: 'train', shard: input.shard.shard, checkpoint: input.checkpoint, responses: 3, tokens: 30, cached: false });

describe('labelLogprobs', () => {
  it('scores every labels shard under π and π0 on the gpu queue, with the config job settings, and retries a crash', async () => {
    const calls: string[] = [];
    const seen: LogprobShardInput[] = [];
    const out = await run(
      async (input) => {
        const { info } = Context.current();
        calls.push(`${info.taskQueue}:${input.shard.shard}:${input.checkpoint}:${info.attempt}:${info.startToCloseTimeoutMs}`);
        seen.push(input);
        if (input.shard.shard === 1 && input.checkpoint === '/ckpt/pi0' && info.attempt === 1) throw new Error('job crashed');
        return result(input);
      },
      testInput(),
      'label-logprobs-order',
    );
    const h = 3 * 3600 * 1000;
    expect(calls).toEqual([`lp-gpu:0:/ckpt/pi:1:${h}`, `lp-gpu:0:/ckpt/pi0:1:${h}`, `lp-gpu:1:/ckpt/pi:1:${h}`, `lp-gpu:1:/ckpt/pi0:1:${h}`, `lp-gpu:1:/ckpt/pi0:2:${h}`]);
    expect(seen[0]).toMatchObject({ kind: 'labels', logprobs: { device: 'cpu', bf16: false }, prompt: { template: 'Question: {question}\nAnswer:\n' } });
    expect(out.shards.map((s) => [s.current.uri, s.initial?.uri])).toEqual([
      ['/lp/0/ckpt/pi', '/lp/0/ckpt/pi0'],
      ['/lp/1/ckpt/pi', '/lp/1/ckpt/pi0'],
    ]);
    await recordHistory(env.client, 'label-logprobs-order');
  });

  it('computes one file per shard when π0 is π, and fails at once on bad input', async () => {
    const calls: string[] = [];
    const out = await run(async (input) => (calls.push(input.checkpoint), result(input)), testInput('/ckpt/pi/'), 'label-logprobs-same');
    expect(calls).toEqual(['/ckpt/pi', '/ckpt/pi']);
    expect(out.shards.map((s) => s.initial)).toEqual([null, null]);

    let attempts = 0;
    const error = await run(
      async () => {
        attempts += 1;
        throw ApplicationFailure.nonRetryable('/ckpt/pi must be a local transformers checkpoint', 'BadInput');
      },
      testInput(),
      'label-logprobs-bad',
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect(attempts).toBe(1);
  });
});
