// evaluatePolicy on the time-skipping test server with mocked activities: order, retries, failures, fan-out bound.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvaluationActivities } from '../../activities/index.js';
import type { EvaluateShardInput } from '../../activities/evaluate-shard.js';
import { evaluatePolicyInputFromConfig, type EvaluatePolicyInput } from '../../core/evaluation.js';
import type { DatasetManifest, EvalShardResult, EvaluationSummary } from '../../core/manifests.js';
import { parseConfigText } from '../../core/parse-config.js';
import { recordHistory, timeSkippingEnv, waitFor, workflowBundle } from '../helpers/temporal.js';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await timeSkippingEnv();
}, 120_000);
afterAll(async () => {
  await env?.teardown();
});

function testInput(overrides: { shardSize?: number; maxShardsInFlight?: number } = {}): EvaluatePolicyInput {
  const parsed = parseConfigText(
    `
name: wf-test
policy: { model: m, baseUrls: ["http://127.0.0.1:9/v1"] }
prompt: { preset: tinymath }
evaluation:
  shardSize: ${overrides.shardSize ?? 10}
  maxShardsInFlight: ${overrides.maxShardsInFlight ?? 2}
  datasets:
    - { name: a, source: tinymath, path: a.jsonl }
    - { name: b, source: math500, path: b.jsonl }
`,
    'test.yaml',
  );
  if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
  return evaluatePolicyInputFromConfig(parsed.config);
}

const sizes: Record<string, number> = { a: 25, b: 10 };

/** Mocks that record the order of calls; each shard answers half of its questions right. */
function mockActivities(calls: string[], overrides: Partial<EvaluationActivities> = {}): EvaluationActivities {
  const base: EvaluationActivities = {
    async prepareDataset({ dataset }): Promise<DatasetManifest> {
      calls.push(`prepare:${dataset.name}`);
      return { name: dataset.name, source: dataset.source, uri: `/x/${dataset.name}`, count: sizes[dataset.name] ?? 0, sha256: 'h' };
    },
    async checkPolicy() {
      calls.push('checkPolicy');
      return { fingerprint: 'm@root' };
    },
    async evaluateShard(input: EvaluateShardInput): Promise<EvalShardResult> {
      calls.push(`shard:${input.dataset.name}:${input.shard.index}`);
      const total = input.shard.end - input.shard.start;
      const correct = Math.floor(total / 2);
      return {
        uri: `/x/${input.dataset.name}/${input.shard.index}`,
        count: total,
        sha256: 'h',
        dataset: input.dataset.name,
        shard: input.shard.index,
        tally: { total, correct },
        groups: input.dataset.source === 'math500' ? { 'level:3': { total, correct } } : {},
        truncated: 0,
        cached: false,
      };
    },
    async mergeShardResults({ dataset, shards }) {
      calls.push(`merge:${dataset}:${shards.map((s) => s.shard).join(',')}`);
      return { uri: `/run/${dataset}.jsonl`, count: shards.reduce((n, s) => n + s.count, 0), sha256: 'h' };
    },
    async writeRunSummary() {
      calls.push('summary');
      return '/run/summary.json';
    },
  };
  return { ...base, ...overrides };
}

async function run(activities: EvaluationActivities, input: EvaluatePolicyInput, workflowId: string): Promise<EvaluationSummary> {
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: input.taskQueues.cpu,
    workflowBundle: await workflowBundle(),
    activities,
  });
  return worker.runUntil(
    env.client.workflow.execute('evaluatePolicy', { taskQueue: input.taskQueues.cpu, workflowId, args: [input] }),
  );
}

describe('evaluatePolicy', () => {
  it('prepares, checks the policy, runs every shard, merges in shard order and sums the accuracy', async () => {
    const calls: string[] = [];
    const summary = await run(mockActivities(calls), testInput(), 'order');
    expect(calls.slice(0, 3).sort()).toEqual(['checkPolicy', 'prepare:a', 'prepare:b'].sort());
    expect(calls.indexOf('checkPolicy')).toBeGreaterThan(Math.max(calls.indexOf('prepare:a'), calls.indexOf('prepare:b')));
    expect(calls.filter((c) => c.startsWith('shard:')).sort()).toEqual(['shard:a:0', 'shard:a:1', 'shard:a:2', 'shard:b:0']);
    expect(calls).toContain('merge:a:0,1,2');
    expect(calls.at(-1)).toBe('summary');
    const a = summary.datasets.find((d) => d.dataset === 'a');
    expect(a).toMatchObject({ total: 25, correct: 5 + 5 + 2 });
    expect(a?.accuracy).toBeCloseTo(12 / 25);
    expect(summary.datasets.find((d) => d.dataset === 'b')?.groups['level:3']).toEqual({ total: 10, correct: 5, accuracy: 0.5 });
    expect(summary.runDir).toBe('runs/runs/order');
    expect(summary.shardsRun).toBe(4);
    // The history replay.test.ts checks new workflow code against.
    await recordHistory(env.client, 'order');
  });

  it('bounds a shard by every request timing out on every attempt, and notices a silent one in 2 minutes', async () => {
    const calls: string[] = [];
    const base = mockActivities(calls);
    const timeouts: Array<{ startToClose: number; heartbeat: number | undefined }> = [];
    const input = testInput({ shardSize: 10 });
    // 10 questions, 2 to a request, 2 requests at a time: 3 rounds of requests, each up to 4 attempts of 600 s.
    const policy = { ...input.policy, promptsPerRequest: 2, maxConcurrency: 2, requestTimeoutSeconds: 600, maxRetries: 3 };
    await run(
      mockActivities(calls, {
        async evaluateShard(i) {
          const { info } = Context.current();
          timeouts.push({ startToClose: info.startToCloseTimeoutMs, heartbeat: info.heartbeatTimeoutMs });
          return base.evaluateShard(i);
        },
      }),
      { ...input, policy },
      'timeouts',
    );
    expect(new Set(timeouts.map((t) => JSON.stringify(t)))).toEqual(new Set([JSON.stringify({ startToClose: (3 * 4 * 600 + 1800) * 1000, heartbeat: 120_000 })]));
  });

  it('retries a shard that failed transiently and keeps the other shards', async () => {
    const calls: string[] = [];
    let failures = 0;
    const base = mockActivities(calls);
    const summary = await run(
      mockActivities(calls, {
        async evaluateShard(input) {
          if (input.dataset.name === 'a' && input.shard.index === 1 && failures === 0) {
            failures += 1;
            throw new Error('policy server http://127.0.0.1:9/v1 unreachable');
          }
          return base.evaluateShard(input);
        },
      }),
      testInput(),
      'retry',
    );
    expect(failures).toBe(1);
    expect(calls.filter((c) => c === 'shard:a:1')).toHaveLength(1);
    expect(summary.datasets.find((d) => d.dataset === 'a')?.total).toBe(25);
  });

  it('fails at once, with the message, on bad input, and samples nothing', async () => {
    const calls: string[] = [];
    let attempts = 0;
    const failing = mockActivities(calls, {
      async prepareDataset() {
        attempts += 1;
        throw ApplicationFailure.nonRetryable('a.jsonl:3: \'answer\' must end with "#### N"', 'BadInput');
      },
    });
    const error = await run(failing, testInput(), 'bad-input').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    const chain: string[] = [];
    for (let e: unknown = error; e instanceof Error; e = e.cause) chain.push(e.message);
    expect(chain.join(' | ')).toContain('a.jsonl:3');
    expect(attempts).toBe(2); // one attempt per dataset, none retried
    expect(calls.some((c) => c.startsWith('shard:'))).toBe(false);
  });

  it('fills the window of maxShardsInFlight shards and never exceeds it', async () => {
    const calls: string[] = [];
    let inFlight = 0;
    let peak = 0;
    let filled = false;
    const base = mockActivities(calls);
    await run(
      mockActivities(calls, {
        async evaluateShard(input) {
          inFlight += 1;
          peak = Math.max(peak, inFlight);
          try {
            // The first shards hold on until the window is full (bounded: a window that never fills fails the run
            // with this message); a fourth one starting meanwhile would show in the peak.
            if (!filled) {
              await waitFor(() => filled || inFlight >= 3, { timeoutMs: 30_000, what: () => `3 shards in flight at once (${inFlight} are)` }).catch((e: unknown) => {
                throw ApplicationFailure.nonRetryable(String(e), 'WindowNeverFilled');
              });
              filled = true;
            }
            return await base.evaluateShard(input);
          } finally {
            inFlight -= 1;
          }
        },
      }),
      testInput({ shardSize: 2, maxShardsInFlight: 3 }),
      'window',
    );
    expect(calls.filter((c) => c.startsWith('shard:'))).toHaveLength(13 + 5);
    expect(peak).toBe(3);
  });
});
