// End to end, for real: Temporal dev server, worker, CPU policy server and the shipped tiny policy,
// started by `prm-raft dev up`, evaluated by `prm-raft eval`, stopped by `prm-raft dev down`.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EvalResultRecord, EvaluationSummary } from '../../core/manifests.js';
import { isAlive } from '../../clients/process.js';
import { makeStack, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await makeStack(() => '');
  const up = await stack.cli(['dev', 'up', '--config', stack.config]);
  expect(up.exitCode, up.stderr).toBe(0);
}, 300_000);
afterAll(async () => {
  await stack?.cli(['dev', 'down', '--config', stack.config]);
}, 120_000);

describe('the embedded stack', () => {
  it('reports every part healthy', async () => {
    const status = await stack.cli(['dev', 'status', '--config', stack.config]);
    expect(status.exitCode, status.stdout + status.stderr).toBe(0);
    for (const part of ['temporal', 'policy', 'worker']) expect(status.stdout).toMatch(new RegExp(`^${part}\\s+healthy pid \\d+`, 'm'));
  });

  it('evaluates the tiny policy through a real workflow, and a second run reuses every shard', async () => {
    const first = await stack.cli(['eval', '--config', stack.config, '--json']);
    expect(first.exitCode, first.stderr).toBe(0);
    const summary = EvaluationSummary.parse(JSON.parse(first.stdout));
    const d = summary.datasets[0];
    expect(d).toMatchObject({ dataset: 'tinymath-test', total: 12 });
    expect(summary.shardsRun).toBe(2);
    const records = (await readFile(d!.results.uri, 'utf8')).trim().split('\n').map((l) => EvalResultRecord.parse(JSON.parse(l)));
    expect(records).toHaveLength(12);
    expect(records.filter((r) => r.correct)).toHaveLength(d!.correct);
    for (const r of records) {
      // tinymath answers are integers: a right grade is exactly an extracted answer equal to the reference.
      expect(r.correct).toBe(r.extracted === r.reference);
      expect(['stop', 'length']).toContain(r.finishReason);
      expect(r.prediction.length).toBeGreaterThan(0);
    }

    const second = await stack.cli(['eval', '--config', stack.config, '--json']);
    const again = EvaluationSummary.parse(JSON.parse(second.stdout));
    expect(again.shardsCached).toBe(2);
    expect(again.datasets[0]?.correct).toBe(d!.correct);
  });

  it('lists the runs, and `dev down` stops exactly what `dev up` started', async () => {
    const list = await stack.cli(['status', '--config', stack.config]);
    expect(list.stdout).toMatch(/eval-e2e-\d+-[0-9a-f]{4}\s+evaluatePolicy\s+COMPLETED/);
    const before = await stack.cli(['dev', 'status', '--config', stack.config]);
    const pids = [...before.stdout.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(3);
    const down = await stack.cli(['dev', 'down', '--config', stack.config]);
    expect(down.exitCode).toBe(0);
    expect(pids.filter(isAlive)).toEqual([]);
    const after = await stack.cli(['dev', 'status', '--config', stack.config]);
    expect(after.exitCode).toBe(1);
  });
});
