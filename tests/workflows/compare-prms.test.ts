// comparePrms on the time-skipping test server with mocked activities: one sampling stage, one iteration per
// reward model and per selection baseline, and a failed iteration that leaves the others' rows.
import { Context } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { comparePrmsInputFromConfig, type ComparisonResult, type ComparisonTable } from '../../core/comparison.js';
import { parseConfigText } from '../../core/parse-config.js';
import { manifest, mockActivities, STOP_QUEUE } from '../helpers/raft-mocks.js';
import { recordHistory, runWorkers, timeSkippingEnv } from '../helpers/temporal.js';
import { pairedEvaluations } from './paired-evaluations.js';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await timeSkippingEnv();
}, 120_000);
afterAll(async () => {
  await env?.teardown();
});

const parsed = parseConfigText(
  `
name: cmp
policy: { model: m, baseUrls: ["http://127.0.0.1:9/v1"], checkpoint: /ckpt/base }
prompt: { preset: tinymath }
evaluation: { datasets: [{ name: test, source: tinymath, path: t.jsonl }] }
sampling: { n: 4, shardSize: 10, maxShardsInFlight: 2, datasets: [{ name: train, source: tinymath, path: tr.jsonl }] }
rewardModels:
  - { name: er-2, model: er, baseUrls: ["http://127.0.0.1:9"] }
  - { name: broken, model: bad, baseUrls: ["http://127.0.0.1:9"] }
  - { name: orm, model: o, kind: orm, baseUrls: ["http://127.0.0.1:9"] }
temporal: { taskQueues: { cpu: cmp-cpu, gpu: cmp-gpu } }
`,
  'test.yaml',
);

describe('comparePrms', () => {
  it('samples once for every reward model, and a failed iteration becomes a row with its error', async () => {
    if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
    const input = comparePrmsInputFromConfig(parsed.config);
    const calls: string[] = [];
    const base = mockActivities(calls);
    const reported: Array<{ table: ComparisonTable; selected: string[] }> = [];
    const selections: Array<{ mode: string; scored: boolean; aggregation: string | undefined }> = [];
    // The baseline answers the first of two questions. Tuned with er-2 the policy answers both (+1/2), with the ORM
    // neither (−1/2), with oracle the other one (a gain and a loss, no change); random and majority change nothing.
    const answers: Record<string, boolean[]> = {
      'cmp-1-er-2-after': [true, true],
      'cmp-1-orm-after': [false, false],
      'cmp-1-oracle-after': [false, true],
    };
    const evaluations = pairedEvaluations(calls, (wid) => answers[wid] ?? [true, false]);
    const activities = {
      ...base,
      ...evaluations,
      async scoreShard(i: Parameters<typeof base.scoreShard>[0]) {
        calls.push(`score:${i.prm.model}:${i.samples.shard}`);
        return base.scoreShard(i);
      },
      async runSft(i: Parameters<typeof base.runSft>[0]) {
        // The broken reward model's picks make a training set the job rejects.
        if (i.sftData.uri.includes('bad')) throw ApplicationFailure.nonRetryable('SFT job rejected its data: train_file line 1: empty completion', 'BadInput');
        return base.runSft(i);
      },
      async selectResponses(i: Parameters<typeof base.selectResponses>[0]) {
        const r = await base.selectResponses(i);
        selections.push({ mode: i.selection.mode, scored: i.shards.every((s) => s.scores !== undefined), aggregation: i.aggregation });
        const model = i.shards[0]?.scores?.uri.includes('bad') ? 'bad' : 'ok';
        return { ...r, sftData: { ...r.sftData, uri: `/sft-${model}.jsonl` }, selected: { ...r.selected, uri: `/selected-${model}.jsonl` } };
      },
      async writeComparisonReportFiles({ table, selected }: { runDir: string; table: ComparisonTable; selected: Record<string, { uri: string }> }) {
        reported.push({ table, selected: Object.keys(selected) });
        return { html: '/r.html', markdown: '/r.md', csv: '/r.csv', json: '/r.json' };
      },
    };
    // Scores carry their model in the path, so selection (and SFT) can tell the broken one.
    const scoreShard = activities.scoreShard;
    activities.scoreShard = async (i) => ({ ...(await scoreShard(i)), uri: `/p/${i.prm.model}/${i.samples.shard}` });

    const result = await runWorkers(env, [input.taskQueues.cpu, input.taskQueues.gpu, STOP_QUEUE], activities, () =>
      env.client.workflow.execute<(i: typeof input) => Promise<ComparisonResult>>('comparePrms', { taskQueue: input.taskQueues.cpu, workflowId: 'cmp-1', args: [input] }),
    );

    // Three shards of 25 prompts, sampled once, scored by each of the three reward models.
    expect(calls.filter((c) => c.startsWith('sample:')).sort()).toEqual(['sample:0', 'sample:1', 'sample:2']);
    for (const model of ['er', 'bad', 'o']) expect(calls.filter((c) => c.startsWith(`score:${model}:`))).toHaveLength(3);
    // The baseline is evaluated once, by the comparison itself, not once per reward model.
    expect(calls.filter((c) => c === 'evaluate:m')).toHaveLength(1);
    // Only the reward models are checked and score; the selection baselines rank the same samples without one.
    expect(calls.filter((c) => c === 'checkPrm')).toHaveLength(3);
    expect(calls.filter((c) => /^score:\w+:\d+$/.test(c))).toHaveLength(9);
    expect(selections.map((s) => [s.mode, s.scored, s.aggregation ?? null]).sort()).toEqual([
      ['majority', false, null],
      ['oracle', false, null],
      ['prm', true, 'min'],
      ['prm', true, 'min'],
      ['prm', true, 'min'],
      ['random', false, null],
    ]);
    // Every tuned policy, baselines included, is trained (all but the broken one's job, which fails).
    expect(calls.filter((c) => c.startsWith('sft:'))).toHaveLength(5);

    expect(result.table.rows.map((r) => [r.name, r.kind, r.error === null])).toEqual([
      ['baseline', 'baseline', true],
      ['er-2', 'prm', true],
      ['broken', 'prm', false],
      ['orm', 'orm', true],
      ['oracle', 'oracle', true],
      ['random', 'random', true],
      ['majority', 'majority', true],
    ]);
    const broken = result.table.rows.find((r) => r.name === 'broken');
    expect(broken?.error).toContain('empty completion');
    expect(broken?.accuracy).toEqual({ test: null });
    const row = (name: string) => result.table.rows.find((r) => r.name === name);
    expect(row('baseline')).toMatchObject({ accuracy: { test: 0.5 }, delta: { test: null } });
    expect(row('baseline')?.accuracyStdErr.test).toBeCloseTo(0.3536, 4); // √(0.5 · 0.5 / 2)
    // The change is the tuned accuracy minus the baseline's: up for er-2, down for the ORM, none for oracle.
    const er = row('er-2');
    expect(er).toMatchObject({ accuracy: { test: 1 }, delta: { test: 0.5 }, gained: { test: 1 }, lost: { test: 0 }, accuracyStdErr: { test: 0 }, selectionPrecision: 0.8 });
    expect(row('orm')).toMatchObject({ accuracy: { test: 0 }, delta: { test: -0.5 }, gained: { test: 0 }, lost: { test: 1 } });
    expect(row('oracle')).toMatchObject({ accuracy: { test: 0.5 }, delta: { test: 0 }, gained: { test: 1 }, lost: { test: 1 } });
    // Paired standard errors, √(((gained + lost)/n − δ²)/n): one question gained of two, √((1/2 − 1/4)/2) = 0.3536;
    // one lost, the same; one gained and one lost, δ = 0, √((2/2)/2) = 0.7071 although the accuracy did not move.
    expect(er?.deltaStdErr.test).toBeCloseTo(0.3536, 4);
    expect(row('orm')?.deltaStdErr.test).toBeCloseTo(0.3536, 4);
    expect(row('oracle')?.deltaStdErr.test).toBeCloseTo(0.7071, 4);
    // A row whose policy changed no answer has no noise in its change; the baseline and the failed row have no counts.
    for (const name of ['random', 'majority']) expect(row(name)).toMatchObject({ delta: { test: 0 }, deltaStdErr: { test: 0 }, gained: { test: 0 }, lost: { test: 0 } });
    expect(result.table.rows[0]).toMatchObject({ deltaStdErr: { test: null }, gained: { test: null } });
    expect(broken).toMatchObject({ deltaStdErr: { test: null }, gained: { test: null } });
    expect(result.table.deltaStdErrForm).toBe('paired');
    // Every finished iteration paired its evaluation against the one shared baseline evaluation.
    expect(calls.filter((c) => c.startsWith('compare:')).sort()).toEqual(
      ['er-2', 'majority', 'oracle', 'orm', 'random'].map((name) => `compare:test:cmp-1-baseline->cmp-1-${name}-after`),
    );
    expect(reported[0]?.selected.sort()).toEqual(['er-2', 'majority', 'oracle', 'orm', 'random']);
  });
});

describe('comparePrms cancelled', () => {
  it('cancels every iteration, each ends cancelled, and the comparison ends cancelled without a table', async () => {
    if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
    const input = { ...comparePrmsInputFromConfig(parsed.config), taskQueues: { cpu: 'cancel-cpu', gpu: 'cancel-gpu' } };
    const calls: string[] = [];
    const base = mockActivities(calls);
    // Every iteration (three reward models, three baselines) trains until it is cancelled.
    let training = 0;
    let allTraining!: () => void;
    const trainingStarted = new Promise<void>((resolve) => {
      allTraining = resolve;
    });
    const activities = {
      ...base,
      async runSft(): Promise<never> {
        const ctx = Context.current();
        if (++training === 6) allTraining();
        // Heartbeats carry the cancellation to the activity; the sleep ends with it.
        for (;;) {
          ctx.heartbeat();
          await ctx.sleep(50);
        }
      },
      async writeComparisonReportFiles() {
        calls.push('report');
        return { html: '/r.html', markdown: '/r.md', csv: '/r.csv', json: '/r.json' };
      },
    };
    const err = await runWorkers(
      env,
      [input.taskQueues.cpu, input.taskQueues.gpu, STOP_QUEUE],
      activities,
      async () => {
        const handle = await env.client.workflow.start('comparePrms', { taskQueue: input.taskQueues.cpu, workflowId: 'cmp-cancel', args: [input] });
        await trainingStarted;
        await handle.cancel();
        return handle.result().catch((e: unknown) => e);
      },
      { maxHeartbeatThrottleInterval: '50ms' },
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    expect(calls).not.toContain('report');
    for (const name of ['er-2', 'broken', 'orm', 'oracle', 'random', 'majority']) {
      expect((await env.client.workflow.getHandle(`cmp-cancel-${name}`).describe()).status.name).toBe('CANCELLED');
    }
  });
});

const chain = parseConfigText(
  `
name: chain
policy: { model: m, baseUrls: ["http://127.0.0.1:9/v1"], checkpoint: /ckpt/base }
prompt: { preset: tinymath }
evaluation: { datasets: [{ name: test, source: tinymath, path: t.jsonl }] }
sampling: { n: 4, shardSize: 10, maxShardsInFlight: 2, datasets: [{ name: train, source: tinymath, path: tr.jsonl }] }
labeling: { solutions: 2, completions: 2, shardSize: 50, datasets: [{ name: label, source: tinymath, path: tr.jsonl, skip: 100, limit: 25 }] }
prmTraining: { base: /ckpt/base, maxSteps: 5 }
rewardModels:
  - { name: hard, train: { labels: hard } }
  - { name: er-2, train: { labels: er, eta: 2 } }
  - { name: bad-labels, train: { labels: soft } }
  - { name: served, model: s, baseUrls: ["http://127.0.0.1:9"] }
temporal: { taskQueues: { cpu: chain-cpu, gpu: chain-gpu } }
`,
  'chain.yaml',
);

describe('comparePrms with reward models it trains', () => {
  it('labels once, trains each model from that run, and each iteration serves its own PRM for its scoring only', async () => {
    if (!chain.ok) throw new Error(chain.problems.join('\n'));
    const input = comparePrmsInputFromConfig(chain.config);
    expect(input.training?.labeling?.labeling.datasets[0]).toMatchObject({ skip: 100, limit: 25 });
    const calls: string[] = [];
    const base = mockActivities(calls);
    const activities = {
      ...base,
      async writeLabelPlan() {
        calls.push('labelPlan');
      },
      async labelShard(i: { shard: { index: number } }) {
        calls.push(`label:${i.shard.index}`);
        return { ...manifest(`/l/${i.shard.index}`), dataset: 'label', shard: i.shard.index, start: 0, end: 25, problems: 25, solutions: 50, correctSolutions: 20, steps: 100, completions: 200, incomplete: 0, cached: false };
      },
      async exportPrmTrainingData({ labelRunDir, train }: { labelRunDir: string; train: { labels: string; eta?: number } }) {
        calls.push(`export:${labelRunDir.split('/').at(-1)}:${train.labels}${train.eta ?? ''}`);
        return manifest(`/prm-data/${train.labels}`, 50);
      },
      async runPrmTraining({ data, train }: { data: { uri: string }; train: { labels: string; eta?: number } }) {
        calls.push(`trainPrm:${data.uri}`);
        if (train.labels === 'soft') throw ApplicationFailure.nonRetryable('PRM training job rejected its config or data: line 3: labels out of [0, 1]', 'BadInput');
        const provenance = { labelRunDir: '/l', labels: train.labels, eta: train.eta ?? null, base: '/ckpt/base', trainingData: manifest(data.uri), job: {} };
        return { checkpoint: `/cache/prm/${train.labels}/checkpoint`, provenance, steps: 5, lossFirst: 1, lossLast: 0.5, cached: false };
      },
      async startPrmServer(i: { checkpoint: string; model: string; serving: { command: string[] } }) {
        calls.push(`servePrm:${i.model}:${i.checkpoint}:${i.serving.command.includes('prm_raft.prm_server')}`);
        return { model: i.model, baseUrl: `http://127.0.0.1:7${i.model.length}`, pid: 5000 + i.model.length, stopQueue: STOP_QUEUE };
      },
      async checkPrm({ prm }: { prm: { model: string; baseUrls: string[] } }) {
        calls.push(`checkPrm:${prm.model}@${prm.baseUrls.join(',')}`);
        return { fingerprint: `${prm.model}@x` };
      },
      async writeComparisonReportFiles() {
        return { html: '/r.html', markdown: '/r.md', csv: '/r.csv', json: '/r.json' };
      },
    };
    const result = await runWorkers(env, [input.taskQueues.cpu, input.taskQueues.gpu, STOP_QUEUE], activities, () =>
      env.client.workflow.execute<(i: typeof input) => Promise<ComparisonResult>>('comparePrms', { taskQueue: input.taskQueues.cpu, workflowId: 'chain-1', args: [input] }),
    );

    // One labeling run (one shard of 25 problems), shared by the three trained models.
    expect(calls.filter((c) => c.startsWith('label:'))).toEqual(['label:0']);
    expect(calls.filter((c) => c.startsWith('export:')).sort()).toEqual(['export:chain-1-labeling:er2', 'export:chain-1-labeling:hard', 'export:chain-1-labeling:soft']);
    expect(calls.filter((c) => c.startsWith('trainPrm:')).sort()).toEqual(['trainPrm:/prm-data/er', 'trainPrm:/prm-data/hard', 'trainPrm:/prm-data/soft']);
    // Each trained PRM is served from its checkpoint by the prm_server command, checked there, and stopped again.
    expect(calls.filter((c) => c.startsWith('servePrm:')).sort()).toEqual(['servePrm:er-2:/cache/prm/er/checkpoint:true', 'servePrm:hard:/cache/prm/hard/checkpoint:true']);
    expect(calls).toContain('checkPrm:hard@http://127.0.0.1:74');
    expect(calls).toContain('checkPrm:er-2@http://127.0.0.1:74');
    expect(calls).toContain('checkPrm:s@http://127.0.0.1:9');
    expect(calls.filter((c) => c === 'stop:5004')).toHaveLength(2); // hard and er-2 (both names 4 long)
    // A model whose training failed is a row with the reason; the others ran.
    expect(result.table.rows.map((r) => [r.name, r.kind, r.error === null])).toEqual([
      ['baseline', 'baseline', true],
      ['hard', 'prm', true],
      ['er-2', 'prm', true],
      ['bad-labels', 'prm', false],
      ['served', 'prm', true],
      ['oracle', 'oracle', true],
      ['random', 'random', true],
      ['majority', 'majority', true],
    ]);
    expect(result.table.rows.find((r) => r.name === 'bad-labels')?.error).toMatch(/^training bad-labels: .*labels out of \[0, 1\]/);
    // The representative comparison history: labeling and training children, served PRMs, a failed row.
    await recordHistory(env.client, 'chain-1');
  });

  it('takes a finished labeling run instead of labeling, and refuses a config that cannot train', () => {
    if (!chain.ok) throw new Error(chain.problems.join('\n'));
    const input = comparePrmsInputFromConfig(chain.config, undefined, '/runs/label-x');
    expect(input.training).toMatchObject({ labelRunDir: '/runs/label-x', prmTraining: { base: '/ckpt/base', maxSteps: 5 } });
    expect(input.training?.labeling).toBeUndefined();
    const { prmTraining: _p, labeling: _l, ...lacking } = chain.config;
    expect(() => comparePrmsInputFromConfig(lacking)).toThrow(/lacks: prmTraining .*; labeling \(the run the reward models with `train` learn from\), or --labels RUN/);
  });

  it('with a prl section, adds a prl row ranked by the log-ratios under π and π0; the other rows never see prl', async () => {
    const withPrl = parseConfigText(
      `
name: cmp
policy: { model: m, baseUrls: ["http://127.0.0.1:9/v1"], checkpoint: /ckpt/now }
prompt: { preset: tinymath }
evaluation: { datasets: [{ name: test, source: tinymath, path: t.jsonl }] }
sampling: { n: 4, shardSize: 10, maxShardsInFlight: 2, datasets: [{ name: train, source: tinymath, path: tr.jsonl }] }
rewardModels: [{ name: er-2, model: er, baseUrls: ["http://127.0.0.1:9"] }]
prl: { eta: 2, initialPolicy: /ckpt/first }
temporal: { taskQueues: { cpu: cmpl-cpu, gpu: cmpl-gpu } }
`,
      'prl.yaml',
    );
    if (!withPrl.ok) throw new Error(withPrl.problems.join('\n'));
    const input = comparePrmsInputFromConfig(withPrl.config);
    expect(input.prl).toMatchObject({ eta: 2, initialPolicy: '/ckpt/first', steps: { by: 'newline' } });
    const calls: string[] = [];
    const base = mockActivities(calls);
    const selections: Array<{ mode: string; prl: unknown; logprobs: boolean }> = [];
    const activities = {
      ...base,
      ...pairedEvaluations(calls, () => [true, false]),
      async selectResponses(i: Parameters<typeof base.selectResponses>[0]) {
        selections.push({ mode: i.selection.mode, prl: i.prl, logprobs: i.shards.every((s) => s.logprobs?.initial !== undefined) });
        return base.selectResponses(i);
      },
      async writeComparisonReportFiles() {
        return { html: '/r.html', markdown: '/r.md', csv: '/r.csv', json: '/r.json' };
      },
    };
    const result = await runWorkers(env, [input.taskQueues.cpu, input.taskQueues.gpu, STOP_QUEUE], activities, () =>
      env.client.workflow.execute<(i: typeof input) => Promise<ComparisonResult>>('comparePrms', { taskQueue: input.taskQueues.cpu, workflowId: 'cmp-prl', args: [input] }),
    );

    expect(result.table.rows.map((r) => [r.name, r.kind])).toEqual([
      ['baseline', 'baseline'],
      ['er-2', 'prm'],
      ['oracle', 'oracle'],
      ['random', 'random'],
      ['majority', 'majority'],
      ['prl', 'prl'],
    ]);
    // Only the prl row takes PRL's settings and the log-probs: every shard under π (the input policy) and π0, on the gpu queue.
    expect(selections.map((s) => [s.mode, s.prl !== undefined, s.logprobs]).sort()).toEqual([
      ['majority', false, false],
      ['oracle', false, false],
      ['prl', true, true],
      ['prm', false, false],
      ['random', false, false],
    ]);
    expect(calls.filter((c) => c.startsWith('logprobs:')).sort()).toEqual(
      ['0', '1', '2'].flatMap((shard) => [`logprobs:${shard}:/ckpt/first@cmpl-gpu`, `logprobs:${shard}:/ckpt/now@cmpl-gpu`]).sort(),
    );
    expect(calls.filter((c) => c.startsWith('sample:'))).toHaveLength(3);
  });
});
