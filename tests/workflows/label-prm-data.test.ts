// labelPrmData on the time-skipping test server with mocked activities: both policies checked, the plan written
// before any shard, every shard labeled with both fingerprints, the totals and the progress added up from the shards.
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import type { LabelShardInput } from '../../activities/label-shard.js';
import { labelPrmDataInputFromConfig, type LabelPrmDataInput, type LabelProgress, type LabelRunSummary, type LabelShardResult } from '../../core/labeling.js';
import { parseConfigText } from '../../core/parse-config.js';
import { recordHistory, timeSkippingEnv, workflowBundle } from '../helpers/temporal.js';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await timeSkippingEnv();
}, 120_000);
afterAll(async () => {
  await env?.teardown();
});

function testInput(): LabelPrmDataInput {
  const parsed = parseConfigText(
    `
name: label-test
policy: { model: gen, baseUrls: ["http://127.0.0.1:9/v1"] }
prompt: { preset: tinymath }
evaluation: { datasets: [{ name: test, source: tinymath, path: t.jsonl }] }
labeling:
  solutions: 2
  completions: 4
  shardSize: 10
  maxShardsInFlight: 2
  completer: { model: comp, baseUrls: ["http://127.0.0.1:8/v1"] }
  datasets: [{ name: a, source: tinymath, path: a.jsonl }, { name: b, source: tinymath, path: b.jsonl }]
temporal: { taskQueues: { cpu: label-cpu, gpu: label-gpu } }
`,
    'test.yaml',
  );
  if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
  return labelPrmDataInputFromConfig(parsed.config);
}

type LabelActivities = Pick<Activities, 'prepareDataset' | 'checkPolicy' | 'writeLabelPlan' | 'labelShard' | 'writeRunSummary'>;

const sizes: Record<string, number> = { a: 25, b: 4 };

/**
 * Mocks that log every call. A shard of p problems labels 2 solutions each; solution j of problem i has i % 3 + 1
 * steps and is right when i + j is even; every step but the last gets 4 completions.
 */
function mockActivities(calls: string[], shardInputs: LabelShardInput[], overrides: Partial<LabelActivities> = {}): LabelActivities {
  return {
    async prepareDataset({ dataset }) {
      calls.push(`prepare:${dataset.name}`);
      return { name: dataset.name, source: dataset.source, uri: `/d/${dataset.name}`, count: sizes[dataset.name] ?? 0, sha256: `h-${dataset.name}` };
    },
    async checkPolicy({ policy }) {
      calls.push(`checkPolicy:${policy.model}`);
      return { fingerprint: `${policy.model}@fp` };
    },
    async writeLabelPlan({ runDir, datasets }) {
      calls.push(`plan:${datasets.map((d) => d.name).join(',')}`);
      return `${runDir}/plan.json`;
    },
    async labelShard(input): Promise<LabelShardResult> {
      calls.push(`label:${input.dataset.name}:${input.shard.index}`);
      shardInputs.push(input);
      let solutions = 0;
      let correctSolutions = 0;
      let steps = 0;
      let completions = 0;
      for (let i = input.shard.start; i < input.shard.end; i++) {
        for (let j = 0; j < 2; j++) {
          solutions += 1;
          if ((i + j) % 2 === 0) correctSolutions += 1;
          steps += (i % 3) + 1;
          completions += 4 * (i % 3);
        }
      }
      const problems = input.shard.end - input.shard.start;
      return {
        uri: `/l/${input.dataset.name}/${input.shard.index}`,
        count: solutions,
        sha256: 'l',
        dataset: input.dataset.name,
        shard: input.shard.index,
        start: input.shard.start,
        end: input.shard.end,
        problems,
        solutions,
        correctSolutions,
        steps,
        completions,
        incomplete: input.dataset.name === 'b' ? 1 : 0,
        cached: false,
      };
    },
    async writeRunSummary({ runDir }) {
      calls.push('summary');
      return `${runDir}/summary.json`;
    },
    ...overrides,
  };
}

async function run(activities: LabelActivities, workflowId: string): Promise<{ summary: LabelRunSummary; progress: LabelProgress }> {
  const input = testInput();
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue: input.taskQueues.cpu, workflowBundle: await workflowBundle(), activities });
  return worker.runUntil(async () => {
    const handle = await env.client.workflow.start('labelPrmData', { taskQueue: input.taskQueues.cpu, workflowId, args: [input] });
    const summary = (await handle.result()) as LabelRunSummary;
    return { summary, progress: (await handle.query('progress')) as LabelProgress };
  });
}

/** The mock's counts for problems [start, end), worked out independently of it. */
function expectedCounts(start: number, end: number) {
  const ids = Array.from({ length: end - start }, (_, k) => start + k);
  return {
    solutions: 2 * ids.length,
    correctSolutions: ids.length, // of (i, i+1) exactly one is even
    steps: ids.reduce((n, i) => n + 2 * ((i % 3) + 1), 0),
    completions: ids.reduce((n, i) => n + 8 * (i % 3), 0),
  };
}

describe('labelPrmData', () => {
  it('checks both policies, writes the plan before any shard, labels every shard once, and adds up the counts', async () => {
    const calls: string[] = [];
    const inputs: LabelShardInput[] = [];
    const { summary, progress } = await run(mockActivities(calls, inputs), 'label-order');

    expect(calls.filter((c) => c.startsWith('checkPolicy:')).sort()).toEqual(['checkPolicy:comp', 'checkPolicy:gen']);
    const plan = calls.indexOf('plan:a,b');
    expect(plan).toBeGreaterThan(Math.max(calls.indexOf('checkPolicy:comp'), calls.indexOf('checkPolicy:gen')));
    const labeled = calls.filter((c) => c.startsWith('label:'));
    expect([...labeled].sort()).toEqual(['label:a:0', 'label:a:1', 'label:a:2', 'label:b:0']);
    for (const c of labeled) expect(calls.indexOf(c)).toBeGreaterThan(plan);
    expect(calls.at(-1)).toBe('summary');

    // Shards of at most 10 problems, per dataset; each carries both endpoints and both fingerprints.
    expect(inputs.map((i) => [i.dataset.name, i.shard.start, i.shard.end]).sort()).toEqual([
      ['a', 0, 10],
      ['a', 10, 20],
      ['a', 20, 25],
      ['b', 0, 4],
    ]);
    for (const i of inputs) {
      expect(i).toMatchObject({ generatorFingerprint: 'gen@fp', completerFingerprint: 'comp@fp', generator: { model: 'gen' }, completer: { model: 'comp' } });
      expect(i.labeling).toMatchObject({ solutions: 2, completions: 4 });
    }

    // The run's totals are the sums over its shards, in plan order.
    const a = expectedCounts(0, 25);
    const b = expectedCounts(0, 4);
    expect(summary).toMatchObject({
      kind: 'labels',
      generator: 'gen',
      completer: 'comp',
      problems: 29,
      solutions: a.solutions + b.solutions,
      correctSolutions: a.correctSolutions + b.correctSolutions,
      steps: a.steps + b.steps,
      completions: a.completions + b.completions,
      incomplete: 1,
    });
    expect(summary.solutions).toBe(58);
    expect(summary.completions).toBe(8 * (8 * 1 + 8 * 2) + 8 * (1 + 2)); // a: i % 3 is 1 eight times and 2 eight times
    expect(summary.shards.map((s) => s.uri)).toEqual(['/l/a/0', '/l/a/1', '/l/a/2', '/l/b/0']);
    expect(summary.runDir.endsWith('/runs/label-order')).toBe(true);
    expect(progress).toEqual({ stage: 'done', shardsTotal: 4, shardsDone: 4, problemsTotal: 29, problemsDone: 29, completions: summary.completions });

    await recordHistory(env.client, 'label-order');
  });

  it('retries a shard that failed transiently, keeping the others', async () => {
    const calls: string[] = [];
    const inputs: LabelShardInput[] = [];
    const base = mockActivities(calls, inputs);
    let failures = 0;
    const { summary } = await run(
      mockActivities(calls, inputs, {
        async labelShard(input) {
          if (input.dataset.name === 'a' && input.shard.index === 1 && failures++ === 0) throw new Error('completer http://127.0.0.1:8/v1 unreachable');
          return base.labelShard(input);
        },
      }),
      'label-retry',
    );
    expect(failures).toBe(2);
    expect(calls.filter((c) => c === 'label:a:1')).toHaveLength(1);
    expect(calls.filter((c) => c === 'label:a:0')).toHaveLength(1);
    expect(summary.problems).toBe(29);
  });

  it('fails at once, with the message, when the completer is not served, and labels nothing', async () => {
    const calls: string[] = [];
    let attempts = 0;
    const base = mockActivities(calls, []);
    const error = await run(
      mockActivities(calls, [], {
        async checkPolicy(input) {
          if (input.policy.model !== 'comp') return base.checkPolicy(input);
          attempts += 1;
          throw ApplicationFailure.nonRetryable('http://127.0.0.1:8/v1 does not serve "comp"', 'BadInput');
        },
      }),
      'label-bad-completer',
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    const chain: string[] = [];
    for (let e: unknown = error; e instanceof Error; e = e.cause) chain.push(e.message);
    expect(chain.join(' | ')).toContain('does not serve "comp"');
    expect(attempts).toBe(1);
    expect(calls.some((c) => c.startsWith('plan:') || c.startsWith('label:'))).toBe(false);
  });
});
