// comparePrms on the time-skipping test server with mocked activities: one sampling stage, one iteration per
// reward model and per selection baseline, and a failed iteration that leaves the others' rows.
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { comparePrmsInputFromConfig, type ComparisonResult, type ComparisonTable } from '../../core/comparison.js';
import { parseConfigText } from '../../core/parse-config.js';
import { mockActivities, STOP_QUEUE } from '../helpers/raft-mocks.js';
import { timeSkippingEnv, workflowBundle } from '../helpers/temporal.js';

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
    const activities = {
      ...base,
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
      async compareEvaluations(i: Parameters<typeof base.compareEvaluations>[0]) {
        const r = await base.compareEvaluations(i);
        // Only er-2's policy changed any answer; every other pairing finds none.
        return i.after.uri.includes('-er-2-after/') ? r : { ...r, gained: 0, lost: 0 };
      },
      async writeComparisonReportFiles({ table, selected }: { runDir: string; table: ComparisonTable; selected: Record<string, { uri: string }> }) {
        reported.push({ table, selected: Object.keys(selected) });
        return { html: '/r.html', markdown: '/r.md', csv: '/r.csv', json: '/r.json' };
      },
    };
    // Scores carry their model in the path, so selection (and SFT) can tell the broken one.
    const scoreShard = activities.scoreShard;
    activities.scoreShard = async (i) => ({ ...(await scoreShard(i)), uri: `/p/${i.prm.model}/${i.samples.shard}` });

    const bundle = await workflowBundle();
    const workers = await Promise.all(
      [input.taskQueues.cpu, input.taskQueues.gpu, STOP_QUEUE].map((taskQueue) =>
        Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: bundle, activities }),
      ),
    );
    const execution = env.client.workflow.execute('comparePrms', { taskQueue: input.taskQueues.cpu, workflowId: 'cmp-1', args: [input] });
    const [first, ...rest] = workers;
    const result = (await first!.runUntil(Promise.all(rest.map((w) => w.runUntil(execution))).then((r) => r[0]))) as ComparisonResult;

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
    const er = result.table.rows.find((r) => r.name === 'er-2');
    expect(er).toMatchObject({ accuracy: { test: 0.5 }, delta: { test: 0 }, gained: { test: 1 }, lost: { test: 1 }, selectionPrecision: 0.8 });
    // 1 of 2 questions right: √(0.5 · 0.5 / 2) = 0.3536. The change is paired: one question gained and one lost of
    // two, √((2/2 − 0²)/2) = 0.7071.
    expect(er?.accuracyStdErr.test).toBeCloseTo(0.3536, 4);
    expect(er?.deltaStdErr.test).toBeCloseTo(0.7071, 4);
    // A row whose policy changed no answer has no noise in its change; the baseline and the failed row have no counts.
    expect(result.table.rows.find((r) => r.name === 'oracle')).toMatchObject({ deltaStdErr: { test: 0 }, gained: { test: 0 }, lost: { test: 0 } });
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
