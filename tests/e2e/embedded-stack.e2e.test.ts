// End to end, for real: the Temporal dev server, a worker, the CPU policy server with the shipped tiny policy and
// the PRM server with the shipped tiny PRM, started by `prm-raft dev up` and driven through the CLI.
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../clients/process.js';
import { LabeledSolution, LabelRunSummary } from '../../core/labeling.js';
import { EvalResultRecord, EvaluationSummary } from '../../core/manifests.js';
import { ComparisonResult } from '../../core/comparison.js';
import { PrmTrainingResult } from '../../core/prm-training.js';
import { RaftIterationResult } from '../../core/raft.js';
import { makeStack, ROOT, type TestStack } from '../helpers/stack.js';
import { waitFor } from '../helpers/temporal.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await makeStack(
    ({ prm }) => `
sampling:
  n: 4
  maxTokens: 100
  shardSize: 4
  datasets: [{ name: tinymath-train, source: tinymath, path: ${join(ROOT, 'data/tinymath/train.jsonl')}, limit: 8 }]
prm:
  model: tinymath-prm
  baseUrls: [http://127.0.0.1:${prm}]
  localServer: { checkpoint: ${join(ROOT, 'models/tinymath-prm')}, port: ${prm} }
selection: { dropNoAnswer: false, dropTruncated: false }
labeling:
  solutions: 2
  completions: 4
  maxTokens: 100
  shardSize: 2
  datasets: [{ name: tinymath-train, source: tinymath, path: ${join(ROOT, 'data/tinymath/train.jsonl')}, limit: 3 }]
sft: { maxSteps: 3, perDeviceBatchSize: 4, saveSteps: 1, learningRate: 0.0005, maxLength: 384, maxAttempts: 1 }
`,
  );
  // The SFT job crashes once at step 2 (per output folder): the first iteration fails there, its resume succeeds.
  const up = await stack.cli(['dev', 'up', '--config', stack.config], { PRM_RAFT_SFT_FAULT: 'crash@2:once' });
  expect(up.exitCode, up.stderr).toBe(0);
}, 300_000);
afterAll(async () => {
  await stack?.cli(['dev', 'down', '--config', stack.config]);
}, 120_000);

describe('the embedded stack', () => {
  it('reports every part healthy', async () => {
    const status = await stack.cli(['dev', 'status', '--config', stack.config]);
    expect(status.exitCode, status.stdout + status.stderr).toBe(0);
    for (const part of ['temporal', 'policy', 'prm', 'worker']) expect(status.stdout).toMatch(new RegExp(`^${part}\\s+healthy pid \\d+`, 'm'));
  }, 60_000);

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
  }, 300_000);

  it('runs a RAFT iteration whose failed SFT stage is resumed without sampling again', async () => {
    const failed = await stack.cli(['iterate', '--config', stack.config, '--json']);
    expect(failed.exitCode).toBe(1);
    expect(failed.stderr).toMatch(/failed: .*fake crash/s);
    const runId = /started raftIteration (\S+)/.exec(failed.stderr)?.[1];
    expect(runId).toBeDefined();
    const samplesDir = join(stack.dir, 'runs', 'cache', 'samples');
    const sampled = await readdir(samplesDir);
    expect(sampled).toHaveLength(2);
    const mtimes = await Promise.all(sampled.map(async (k) => (await stat(join(samplesDir, k, 'result.json'))).mtimeMs));

    const resumed = await stack.cli(['resume', runId!, '--config', stack.config, '--json']);
    expect(resumed.exitCode, resumed.stderr).toBe(0);
    const result = RaftIterationResult.parse(JSON.parse(resumed.stdout));
    // Nothing was sampled again: the same two shards, untouched.
    expect(await readdir(samplesDir)).toEqual(sampled);
    expect(await Promise.all(sampled.map(async (k) => (await stat(join(samplesDir, k, 'result.json'))).mtimeMs))).toEqual(mtimes);

    expect(result.sampling).toMatchObject({ prompts: 8, responses: 32 });
    expect(result.selection.kept).toBe(8);
    expect(result.sft).toMatchObject({ steps: 3, cached: false });
    expect(result.sft.lossFirst).not.toBeNull();
    // The resumed job went on from the checkpoint the crashed one saved (step 1; it crashed at step 2 before saving),
    // not from the base model: the job's own record in the checkpoint says so.
    const sftRecord = JSON.parse(await readFile(join(result.policyAfter, 'prm_raft_sft.json'), 'utf8')) as { resumed_from: string | null };
    expect(sftRecord.resumed_from).toBe(join(dirname(result.policyAfter), 'checkpoints', 'checkpoint-1'));
    expect((await stat(join(result.policyAfter, 'config.json'))).isFile()).toBe(true);
    expect(result.before.datasets[0]?.total).toBe(12);
    expect(result.after.datasets[0]?.total).toBe(12);
    // The input policy's evaluation is the one the eval test already ran: every shard reused.
    expect(result.before.shardsCached).toBe(2);
    const sft = (await readFile(join(stack.dir, 'runs', 'cache', 'selection', (await readdir(join(stack.dir, 'runs', 'cache', 'selection')))[0]!, 'sft.jsonl'), 'utf8')).trim().split('\n');
    expect(sft).toHaveLength(8);
    expect(JSON.parse(sft[0]!)).toEqual({ prompt: expect.stringMatching(/^Question: .*\nAnswer:\n$/s), completion: expect.any(String) });
  }, 900_000);

  it('finishes an iteration whose worker was killed mid-shard: finished shards are kept, the killed one resumes from its partial file', async () => {
    // Three shards of four prompts, one shard and one prompt per request at a time: each prompt's answers are
    // appended to the shard's samples.partial.jsonl as they come, so the kill lands inside a shard. The shard the
    // dead worker held goes to the new one after the heartbeat timeout (2 minutes).
    const config = join(stack.dir, 'kill.yaml');
    const text = (await readFile(stack.config, 'utf8'))
      .replace('  shardSize: 4\n', '  shardSize: 4\n  maxShardsInFlight: 1\n  seed: 7\n')
      .replace('limit: 8 }]', 'limit: 12 }]')
      .replace('  promptsPerRequest: 8\n  maxConcurrency: 2\n', '  promptsPerRequest: 1\n  maxConcurrency: 1\n  requestTimeoutSeconds: 20\n')
      .replace('  model: tinymath-prm\n', '  model: tinymath-prm\n  requestTimeoutSeconds: 20\n');
    expect(text).toContain('promptsPerRequest: 1\n');
    await writeFile(config, text);
    const samplesDir = join(stack.dir, 'runs', 'cache', 'samples');
    const earlier = new Set(await readdir(samplesDir));
    const ours = async () => (await readdir(samplesDir)).filter((k) => !earlier.has(k));
    const finished = async (key: string) => (await stat(join(samplesDir, key, 'result.json')).catch(() => null))?.mtimeMs;
    type Asked = { id: string; responses: Array<{ text: string }> };
    /** The answers a shard's partial file holds (a line torn by the kill is not one: the next attempt drops it too). */
    const partialRecords = async (key: string): Promise<Asked[]> =>
      (await readFile(join(samplesDir, key, 'samples.partial.jsonl'), 'utf8').catch(() => '')).split('\n').flatMap((l) => {
        try {
          const x = JSON.parse(l) as Asked;
          return typeof x?.id === 'string' && Array.isArray(x.responses) ? [x] : [];
        } catch {
          return [];
        }
      });

    const status = await stack.cli(['dev', 'status', '--config', config]);
    const worker = Number(/^worker\s+healthy pid (\d+)/m.exec(status.stdout)?.[1]);
    expect(worker, status.stdout).toBeGreaterThan(0);
    const started = await stack.cli(['iterate', '--config', config, '--detach']);
    expect(started.exitCode, started.stderr).toBe(0);
    const runId = started.stdout.trim();

    // Kill once a shard has finished and the next one has answers in its partial file but no result yet.
    const midShard = await waitFor(
      async () => {
        let done = 0;
        let partial: string | undefined;
        for (const key of await ours()) {
          if ((await finished(key)) !== undefined) done += 1;
          else if ((await partialRecords(key)).length > 0) partial = key;
        }
        return done >= 1 && partial ? partial : undefined;
      },
      { timeoutMs: 600_000, intervalMs: 50, what: 'a finished shard and a shard with a partial file' },
    );
    process.kill(worker, 'SIGKILL');
    await waitFor(() => !isAlive(worker), { timeoutMs: 10_000, what: `worker ${worker} to die` });

    const finishedBefore = new Map<string, number>();
    for (const key of await ours()) {
      const mtime = await finished(key);
      if (mtime !== undefined) finishedBefore.set(key, mtime);
    }
    expect(finishedBefore.size).toBeGreaterThanOrEqual(1);
    expect(finishedBefore.size).toBeLessThan(3);
    expect(finishedBefore.has(midShard), 'the kill landed after the shard finished: no partial file to resume').toBe(false);
    // What the dead worker had asked. One answer is marked: if the new attempt used the partial file, the marked
    // text is in the shard's samples; had it asked the policy again, it would not be.
    const asked = await partialRecords(midShard);
    expect(asked.length).toBeGreaterThan(0);
    expect(asked.length).toBeLessThanOrEqual(4);
    const MARK = 'RESUMED-FROM-THE-PARTIAL-FILE';
    asked[0]!.responses[0]!.text = MARK;
    await writeFile(join(samplesDir, midShard, 'samples.partial.jsonl'), asked.map((a) => `${JSON.stringify(a)}\n`).join(''));

    const up = await stack.cli(['dev', 'up', '--config', config]);
    expect(up.stderr).toMatch(/worker: started/);
    const followed = await stack.cli(['status', runId, '--config', config, '--json']);
    expect(followed.exitCode, followed.stderr).toBe(0);
    const result = RaftIterationResult.parse(JSON.parse(followed.stdout));
    expect(result.sampling).toMatchObject({ prompts: 12, responses: 48 });
    // Every shard finished before the kill is untouched; the rest were sampled by the new worker, once each.
    for (const [key, mtime] of finishedBefore) expect(await finished(key)).toBe(mtime);
    expect(await ours()).toHaveLength(3);
    // The killed shard kept every answer its partial file held (the marked one included) and asked only the rest.
    const samples = (await readFile(join(samplesDir, midShard, 'samples.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Asked);
    expect(samples).toHaveLength(4);
    for (const a of asked) expect(samples.find((x) => x.id === a.id)?.responses.map((r) => r.text)).toEqual(a.responses.map((r) => r.text));
    expect(samples.find((x) => x.id === asked[0]!.id)?.responses[0]?.text).toBe(MARK);
    // Its scratch files are gone once the shard's output is written.
    await expect(stat(join(samplesDir, midShard, 'samples.partial.jsonl'))).rejects.toThrow();
  }, 900_000);

  it('labels steps by Monte-Carlo completions, and exports every label kind from the stored counts', async () => {
    const run = await stack.cli(['label', '--config', stack.config, '--json']);
    expect(run.exitCode, run.stderr).toBe(0);
    const summary = LabelRunSummary.parse(JSON.parse(run.stdout));
    expect(summary).toMatchObject({ problems: 3, solutions: 6, incomplete: 0 });
    expect(summary.shards).toHaveLength(2);
    const solutions = (await Promise.all(summary.shards.map(async (s) => (await readFile(s.uri, 'utf8')).trim().split('\n'))))
      .flat()
      .map((l) => LabeledSolution.parse(JSON.parse(l)));
    expect(solutions).toHaveLength(6);
    for (const s of solutions) {
      expect(s.counts).toHaveLength(s.steps.length);
      // Every prefix but the last got its 4 completions; the last step is the solution's own outcome.
      for (const c of s.counts.slice(0, -1)) expect(c.m).toBe(4);
      if (s.steps.length > 0) expect(s.counts.at(-1)).toEqual({ k: s.correct ? 1 : 0, m: 1 });
    }
    expect(summary.completions).toBe(solutions.reduce((n, s) => n + 4 * Math.max(0, s.steps.length - 1), 0));
    const runId = /started labelPrmData (\S+)/.exec(run.stderr)?.[1];

    const exported = async (kind: string, format: string, eta?: string) => {
      const r = await stack.cli(['label', 'export', '--run', runId!, '--kind', kind, ...(eta ? ['--eta', eta] : []), '--format', format, '--config', stack.config]);
      expect(r.exitCode, r.stderr).toBe(0);
      return (await readFile(r.stdout.trim(), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    };
    const withSteps = solutions.filter((s) => s.steps.length > 0);
    const hard = await exported('hard', 'jsonl');
    const soft = await exported('soft', 'jsonl');
    const er = await exported('er', 'jsonl', '2');
    expect(hard).toHaveLength(withSteps.length);
    withSteps.forEach((s, i) => {
      expect(hard[i].labels).toEqual(s.counts.map((c) => (c.k > 0 ? 1 : 0)));
      expect(soft[i].labels).toEqual(s.counts.map((c) => c.k / c.m));
      s.counts.forEach((c, j) => {
        expect(er[i].labels[j]).toBeGreaterThanOrEqual(soft[i].labels[j] - 1e-12);
        expect(er[i].labels[j]).toBeLessThanOrEqual(hard[i].labels[j] + 1e-12);
      });
    });
    const shepherd = await exported('er', 'math-shepherd', '-1000');
    for (const [i, line] of shepherd.entries()) expect(line.input.split('ки').length - 1).toBe(withSteps[i]!.steps.length);
  }, 600_000);

  it('compares reward models it trains itself: label, train each PRM, RAFT with each, as one command', async () => {
    const config = join(stack.dir, 'chain.yaml');
    // SFT may crash once per job (the stack's fault hook): a second attempt resumes it.
    const text = (await readFile(stack.config, 'utf8')).replace('maxAttempts: 1 }', 'maxAttempts: 2 }');
    await writeFile(
      config,
      `${text}prmTraining: { base: ${join(ROOT, 'models/tinymath-policy')}, maxSteps: 3, batchSize: 4, learningRate: 0.0005, threads: 1 }
rewardModels:
  - { name: hard, train: { labels: hard } }
  - { name: er-2, train: { labels: er, eta: 2 } }
`,
    );
    const run = await stack.cli(['compare', '--config', config, '--json']);
    expect(run.exitCode, run.stderr).toBe(0);
    const result = ComparisonResult.parse(JSON.parse(run.stdout));
    expect(result.table.rows.map((r) => [r.name, r.error])).toEqual(
      ['baseline', 'hard', 'er-2', 'oracle', 'random', 'majority'].map((name) => [name, null]),
    );
    const compareId = /started comparePrms (\S+)/.exec(run.stderr)?.[1];
    // One labeling child; the two PRMs were trained from it, each with its labels, and recorded where they came from.
    const prmDir = join(stack.dir, 'runs', 'cache', 'prm');
    const trained = await Promise.all(
      (await readdir(prmDir)).map(async (key) => PrmTrainingResult.parse(JSON.parse(await readFile(join(prmDir, key, 'result.json'), 'utf8')))),
    );
    expect(trained.map((t) => [t.provenance.labels, t.provenance.eta]).sort()).toEqual([['er', 2], ['hard', null]]);
    for (const t of trained) {
      expect(t.provenance.labelRunDir).toBe(join(stack.dir, 'runs', 'runs', `${compareId}-labeling`));
      expect(t.steps).toBe(3);
      expect(JSON.parse(await readFile(join(t.checkpoint, 'provenance.json'), 'utf8'))).toMatchObject({ labels: t.provenance.labels });
      expect((await stat(join(t.checkpoint, 'prm_config.json'))).isFile()).toBe(true);
    }
    // Each trained PRM scored its iteration's samples (its own server, started and stopped by the iteration).
    for (const name of ['hard', 'er-2']) {
      const row = result.table.rows.find((r) => r.name === name)!;
      const summary = RaftIterationResult.parse(JSON.parse(await readFile(join(row.runDir!, 'summary.json'), 'utf8')));
      expect(summary.selection.mode).toBe('prm');
      expect(summary.selection.scored).toBeGreaterThan(0);
    }
    const logs = await readdir(join(stack.dir, 'runs', 'logs'));
    expect(logs.filter((f) => f.startsWith('prm-server-'))).toHaveLength(2);
  }, 900_000);

  it('lists the runs, and `dev down` stops exactly what `dev up` started', async () => {
    const list = await stack.cli(['status', '--config', stack.config]);
    expect(list.stdout).toMatch(/eval-e2e-\d+-[0-9a-f]{4}\s+evaluatePolicy\s+COMPLETED/);
    expect(list.stdout).toMatch(/raft-e2e-\d+-[0-9a-f]{4}\s+raftIteration\s+COMPLETED/);
    const before = await stack.cli(['dev', 'status', '--config', stack.config]);
    const pids = [...before.stdout.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(4);
    const down = await stack.cli(['dev', 'down', '--config', stack.config]);
    expect(down.exitCode).toBe(0);
    expect(pids.filter(isAlive)).toEqual([]);
    const after = await stack.cli(['dev', 'status', '--config', stack.config]);
    expect(after.exitCode).toBe(1);
  }, 120_000);
});
