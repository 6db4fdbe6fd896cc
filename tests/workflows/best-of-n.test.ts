// bestOfN on the time-skipping test server with mocked activities: one sampling pass, every reward model scores
// every shard, and one reward model failing leaves the others' tables.
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import type { BestOfNTablesInput } from '../../activities/best-of-n-tables.js';
import { bestOfNInputFromConfig, samplingTotals, type BestOfNInput, type BestOfNProgress, type BestOfNResult } from '../../core/best-of-n.js';
import { parseConfigText } from '../../core/parse-config.js';
import { recordHistory, timeSkippingEnv, workflowBundle } from '../helpers/temporal.js';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await timeSkippingEnv();
}, 120_000);
afterAll(async () => {
  await env?.teardown();
});

const CONFIG = `
name: bon-test
policy: { model: m, baseUrls: ["http://127.0.0.1:9/v1"] }
prompt: { preset: tinymath }
evaluation: { datasets: [{ name: test, source: tinymath, path: t.jsonl }] }
rewardModels:
  - { name: hard, model: hard-prm, baseUrls: ["http://127.0.0.1:9"], localServer: { checkpoint: /ckpt/hard, port: 9 } }
  - { name: soft, model: soft-prm, baseUrls: ["http://127.0.0.1:9"] }
  - { name: outcome, model: orm, kind: orm, baseUrls: ["http://127.0.0.1:9"] }
bestOfN:
  sampling: { n: 4, shardSize: 10, maxShardsInFlight: 2, datasets: [{ name: test, source: tinymath, path: t.jsonl }] }
  ns: [1, 2, 4]
  draws: 3
temporal: { taskQueues: { cpu: bon-cpu, gpu: bon-gpu } }
`;

function parse(text: string) {
  const parsed = parseConfigText(text, 'test.yaml');
  if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
  return parsed.config;
}

const testInput = (): BestOfNInput => bestOfNInputFromConfig(parse(CONFIG));

type BonActivities = Pick<Activities, 'prepareDataset' | 'checkPolicy' | 'checkPrm' | 'sampleShard' | 'scoreShard' | 'bestOfNTables'>;

/**
 * Mocks that log every call: 25 test problems (three shards), four responses each; shard i has i truncated
 * responses, i refused prompts and 2·prompts − i right responses, so the totals tell the shards apart.
 */
function mockActivities(calls: string[], tables: BestOfNTablesInput[], overrides: Partial<BonActivities> = {}): BonActivities {
  return {
    async prepareDataset({ dataset }) {
      calls.push(`prepare:${dataset.name}`);
      return { name: dataset.name, source: dataset.source, uri: `/d/${dataset.name}`, count: 25, sha256: 'd' };
    },
    async checkPolicy() {
      calls.push('checkPolicy');
      return { fingerprint: 'm@x' };
    },
    async checkPrm({ prm }) {
      calls.push(`checkPrm:${prm.model}`);
      return { fingerprint: `${prm.model}@x` };
    },
    async sampleShard({ shard }) {
      calls.push(`sample:${shard.index}`);
      const prompts = shard.end - shard.start;
      const i = shard.index;
      return { uri: `/s/${i}`, count: prompts, sha256: `s${i}`, dataset: 'test', shard: i, prompts, responses: 4 * (prompts - i), truncated: i, refused: i, correct: 2 * prompts - i, cached: false };
    },
    async scoreShard({ prm, prmFingerprint, samples }) {
      calls.push(`score:${prm.model}:${samples.shard}`);
      return { uri: `/p/${prmFingerprint}/${samples.shard}`, count: samples.prompts, sha256: 'p', dataset: 'test', shard: samples.shard, scored: samples.responses, empty: 0, cached: false };
    },
    async bestOfNTables(input) {
      calls.push('tables');
      tables.push(input);
      const report = { name: input.name, problems: 25, samplesPerProblem: input.samplesPerProblem, rewardModels: input.rewardModels.map((m) => ({ name: m.name, kind: m.kind, tables: [] })), failed: input.failed };
      const files = { summary: `${input.runDir}/summary.json`, html: `${input.runDir}/report.html`, markdown: `${input.runDir}/table.md` };
      return { runDir: input.runDir, report, sampling: samplingTotals(input.samples), files };
    },
    ...overrides,
  };
}

/** Runs the workflow to its end, then reads its progress query once more. */
async function run(activities: BonActivities, workflowId: string): Promise<{ result: BestOfNResult; progress: BestOfNProgress }> {
  const input = testInput();
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue: input.taskQueues.cpu, workflowBundle: await workflowBundle(), activities });
  return worker.runUntil(async () => {
    const handle = await env.client.workflow.start('bestOfN', { taskQueue: input.taskQueues.cpu, workflowId, args: [input] });
    const result = (await handle.result()) as BestOfNResult;
    return { result, progress: (await handle.query('progress')) as BestOfNProgress };
  });
}

const count = (calls: string[], prefix: string) => calls.filter((c) => c.startsWith(prefix)).length;

describe('bestOfN', () => {
  it('samples every shard once, has every reward model score every shard, then makes the tables from all of it', async () => {
    const calls: string[] = [];
    const tables: BestOfNTablesInput[] = [];
    const { result, progress } = await run(mockActivities(calls, tables), 'bon-order');

    expect(calls.filter((c) => c.startsWith('sample:')).sort()).toEqual(['sample:0', 'sample:1', 'sample:2']);
    for (const model of ['hard-prm', 'soft-prm', 'orm']) {
      for (const shard of [0, 1, 2]) expect(calls.indexOf(`score:${model}:${shard}`)).toBeGreaterThan(calls.indexOf(`sample:${shard}`));
    }
    expect(count(calls, 'score:')).toBe(9);
    expect(calls.at(-1)).toBe('tables');

    const [t] = tables;
    expect(t?.samples.map((s) => s.uri)).toEqual(['/s/0', '/s/1', '/s/2']);
    // Each model's scores, in shard order, cached under its own fingerprint.
    expect(t?.rewardModels.map((m) => [m.name, m.kind, m.scores.map((s) => s.uri)])).toEqual([
      ['hard', 'prm', ['/p/hard-prm@x/0', '/p/hard-prm@x/1', '/p/hard-prm@x/2']],
      ['soft', 'prm', ['/p/soft-prm@x/0', '/p/soft-prm@x/1', '/p/soft-prm@x/2']],
      ['outcome', 'orm', ['/p/orm@x/0', '/p/orm@x/1', '/p/orm@x/2']],
    ]);
    expect(t).toMatchObject({ name: 'bon-test', samplesPerProblem: 4, failed: [], tables: { ns: [1, 2, 4], draws: 3, seed: 0 } });
    expect(t?.runDir.endsWith('/runs/bon-order')).toBe(true);

    // The tables got every shard's samples: the totals over shards 0, 1 and 2 (10, 10 and 5 prompts), by hand.
    expect(samplingTotals(t!.samples)).toEqual({ prompts: 25, responses: 4 * (10 + 9 + 3), truncated: 3, refused: 3, correct: 50 - 3 });
    expect(result.sampling).toEqual(samplingTotals(t!.samples));
    expect(progress).toEqual({
      stage: 'done',
      shardsTotal: 3,
      shardsSampled: 3,
      promptsTotal: 25,
      rewardModels: [
        { name: 'hard', shardsScored: 3, error: null },
        { name: 'soft', shardsScored: 3, error: null },
        { name: 'outcome', shardsScored: 3, error: null },
      ],
    });
  });

  it('keeps the other tables when one reward model fails for good, and records why it has none', async () => {
    const calls: string[] = [];
    const tables: BestOfNTablesInput[] = [];
    const base = mockActivities(calls, tables);
    let softAttempts = 0;
    const { result, progress } = await run(
      mockActivities(calls, tables, {
        async scoreShard(input) {
          if (input.prm.model !== 'soft-prm' || input.samples.shard !== 1) return base.scoreShard(input);
          softAttempts += 1;
          throw ApplicationFailure.nonRetryable('PRM server http://127.0.0.1:9/v1/score answered 400: item too long', 'BadInput');
        },
      }),
      'bon-one-fails',
    );
    expect(softAttempts).toBe(1);
    expect(count(calls, 'sample:')).toBe(3);
    for (const model of ['hard-prm', 'orm']) expect(count(calls, `score:${model}:`)).toBe(3);
    expect(tables[0]?.rewardModels.map((m) => m.name)).toEqual(['hard', 'outcome']);
    const failed = [{ name: 'soft', kind: 'prm', error: 'PRM server http://127.0.0.1:9/v1/score answered 400: item too long' }];
    expect(tables[0]?.failed).toEqual(failed);
    expect(result.report.rewardModels.map((m) => m.name)).toEqual(['hard', 'outcome']);
    expect(result.report.failed).toEqual(failed);
    expect(progress.rewardModels[1]?.error).toContain('item too long');
    expect(progress.rewardModels.map((m) => m.shardsScored)).toEqual([3, expect.any(Number), 3]);
    expect(progress.rewardModels[1]?.shardsScored).toBeLessThan(3); // shard 1 is never counted as scored

    // The representative best-of-N history: every reward model scoring, one dropping out on a failure.
    await recordHistory(env.client, 'bon-one-fails');
  });

  it('never asks a reward model to score when its check fails; a transient scoring error is only retried', async () => {
    const calls: string[] = [];
    const tables: BestOfNTablesInput[] = [];
    const base = mockActivities(calls, tables);
    let flaky = 0;
    await run(
      mockActivities(calls, tables, {
        async checkPrm(input) {
          if (input.prm.model === 'orm') throw ApplicationFailure.nonRetryable('PRM server http://127.0.0.1:9 does not serve "orm"', 'BadInput');
          return base.checkPrm(input);
        },
        async scoreShard(input) {
          if (input.prm.model === 'hard-prm' && input.samples.shard === 0 && flaky++ === 0) throw new Error('PRM server answered 503');
          return base.scoreShard(input);
        },
      }),
      'bon-check-fails',
    );
    expect(count(calls, 'score:orm:')).toBe(0);
    expect(flaky).toBe(2);
    expect(tables[0]?.rewardModels.map((m) => m.name)).toEqual(['hard', 'soft']);
    expect(tables[0]?.failed).toEqual([{ name: 'outcome', kind: 'orm', error: 'PRM server http://127.0.0.1:9 does not serve "orm"' }]);
  });

  it('fails, naming every reason, when no reward model is left', async () => {
    const calls: string[] = [];
    const error = await run(
      mockActivities(calls, [], {
        async scoreShard({ prm }) {
          throw ApplicationFailure.nonRetryable(`${prm.model} is broken`, 'BadInput');
        },
      }),
      'bon-all-fail',
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    const messages = String((error as WorkflowFailedError).cause?.message);
    expect(messages).toContain('every reward model failed');
    for (const m of ['hard: hard-prm is broken', 'soft: soft-prm is broken', 'outcome: orm is broken']) expect(messages).toContain(m);
    expect(calls).not.toContain('tables');
  });
});

describe('bestOfNInputFromConfig', () => {
  it('takes the test sampling, the table settings and the reward models without their local servers', () => {
    const input = testInput();
    expect(input.sampling.n).toBe(4);
    expect(input.tables).toEqual({ ns: [1, 2, 4], draws: 3, seed: 0, aggregations: ['min', 'last', 'mean', 'prod'] });
    expect(input.rewardModels.map((m) => m.name)).toEqual(['hard', 'soft', 'outcome']);
    expect(input.rewardModels[0]).not.toHaveProperty('localServer');
    expect(input.policy).not.toHaveProperty('localServer');
  });

  it('lists every section the config lacks', () => {
    const bare = parse(CONFIG.replace(/rewardModels:[\s\S]*temporal:/, 'temporal:'));
    expect(() => bestOfNInputFromConfig(bare)).toThrow(
      'config "bon-test" cannot run best-of-N; it lacks: bestOfN (the test problems, responses per problem and the Ns); rewardModels (the reward models to evaluate)',
    );
  });
});
