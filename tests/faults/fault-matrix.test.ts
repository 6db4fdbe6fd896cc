// The fault matrix, for real: one embedded stack (`prm-raft dev up`), a tiny RAFT iteration per cell, one fault per
// cell, and after each the run ends as the README documents, with every shard present exactly once (manifests from
// the histories, checked against the files by sha256 and ids) and no process of the run left on the machine.
//
// | fault                                         | where                                              |
// | worker SIGKILLed during sampling              | tests/e2e (killed mid-sampling, shards once)      |
// | SFT job crashes, run fails, `resume`          | tests/e2e (fault hook crash@2, then resumed)       |
// | Temporal dev server SIGKILLed mid-sampling    | run 1, 'Temporal server killed mid-sampling'       |
// | worker SIGKILLed while a server starts        | run 1, 'worker killed while the new policy server starts' |
// | worker SIGKILLed during SFT                   | run 2, 'worker killed during SFT'                  |
// | worker SIGKILLed while the new policy serves  | run 2, 'worker killed while the new policy serves the evaluation' |
// | SFT process SIGKILLed after a checkpoint      | 'SFT process killed after a checkpoint'            |
// | policy server SIGKILLed during evaluation     | 'policy server killed during evaluation'           |
// | PRM answers 503                               | 'PRM answering 503'                                |
// | PRM answers garbage (scores outside [0, 1])   | 'PRM answering garbage'                            |
// Two faults share a run where they hit different stages (a fresh iteration costs about two minutes here).
//
// Cells share the stack and the cache: sampling seeds and SFT seeds differ where a cell needs that stage fresh; the PRM
// cells score the first cell's samples afresh (their PRM presents weights of its own), the rest of their run is cached.
// Each prints `[faults] <cell>: …` with what it cost (for the README's reliability table).
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EvaluationProgress } from '../../core/evaluation.js';
import { EvaluationSummary } from '../../core/manifests.js';
import { RaftIterationResult, RaftProgress } from '../../core/raft.js';
import { makeStack, ROOT, type TestStack } from '../helpers/stack.js';
import { activityOutcomes, expectShardsOnce, processesMentioning, startPrmProxy, temporalClient, until } from './harness.js';

const MARK = '# --- cell sections ---';
let stack: TestStack;
let header: string;
let address: string;
let prmPort: number;
let store: string;

interface Cell {
  /** The stack's own config: its PRM server is started by `dev up`. */
  stack?: boolean;
  samplingSeed: number;
  sftSeed: number;
  prmUrl?: string;
  evalSkip?: number;
}

function sections(prm: number, c: Cell): string {
  return `${MARK}
sampling:
  n: 4
  maxTokens: 100
  shardSize: 4
  seed: ${c.samplingSeed}
  datasets: [{ name: tinymath-train, source: tinymath, path: ${join(ROOT, 'data/tinymath/train.jsonl')}, limit: 8 }]
prm:
  model: tinymath-prm
  baseUrls: [${c.prmUrl ?? `http://127.0.0.1:${prm}`}]
${c.stack ? `  localServer: { checkpoint: ${join(ROOT, 'models/tinymath-prm')}, port: ${prm} }
` : ''}selection: { dropNoAnswer: false, dropTruncated: false }
sft: { maxSteps: 3, perDeviceBatchSize: 4, saveSteps: 1, learningRate: 0.0005, maxLength: 384, maxAttempts: 2, seed: ${c.sftSeed} }
`;
}

async function cellConfig(name: string, c: Cell): Promise<string> {
  let head = header;
  if (c.evalSkip !== undefined) head = head.replace('limit: 12 }]', `skip: ${c.evalSkip}, limit: 12 }]`);
  const path = join(stack.dir, `${name}.yaml`);
  await writeFile(path, `${head}${sections(prmPort, c)}`);
  return path;
}

async function stackPid(part: string): Promise<number> {
  const status = await stack.cli(['dev', 'status', '--config', stack.config]);
  const pid = Number(new RegExp(`^${part}\\s+healthy pid (\\d+)`, 'm').exec(status.stdout)?.[1]);
  expect(pid, status.stdout).toBeGreaterThan(0);
  return pid;
}

async function startIteration(config: string): Promise<string> {
  const started = await stack.cli(['iterate', '--config', config, '--detach']);
  expect(started.exitCode, started.stderr).toBe(0);
  return started.stdout.trim();
}

async function progress(runId: string): Promise<RaftProgress> {
  const client = await temporalClient(address);
  try {
    return RaftProgress.parse(await client.workflow.getHandle(runId).query('progress'));
  } finally {
    await client.connection.close();
  }
}

/** Follows the run to its end through the CLI, as a user reattaches. */
async function follow(runId: string, config: string) {
  return stack.cli(['status', runId, '--config', config, '--json']);
}

/**
 * Every shard of the iteration (sampling, scoring, both evaluations) present once; no process of the store left.
 * `handedBack` names the activities (of the run, or `after:` of its evaluation of the new policy) whose attempt on a
 * killed worker must have been failed by the next worker (WorkerLost), not left to its heartbeat timeout.
 */
async function expectRunWhole(runId: string, handedBack: string[] = []): Promise<void> {
  const client = await temporalClient(address);
  try {
    const run = await activityOutcomes(client, runId);
    const after = await activityOutcomes(client, `${runId}-after`);
    for (const name of handedBack) {
      const [outcomes, type] = name.startsWith('after:') ? [after, name.slice(6)] : [run, name];
      expect(outcomes.retryCauses[type], `why ${name} was retried`).toContain('WorkerLost');
    }
    const sampled = await expectShardsOnce(run, 'sampleShard', 2);
    expect(sampled).toHaveLength(8);
    expect((await expectShardsOnce(run, 'scoreShard', 2)).sort()).toEqual([...sampled].sort());
    for (const child of [`${runId}-before`, `${runId}-after`]) {
      expect(await expectShardsOnce(await activityOutcomes(client, child), 'evaluateShard', 2)).toHaveLength(12);
    }
  } finally {
    await client.connection.close();
  }
  await expectNothingLeft();
}

/** No process started for this store is running, and the registry holds no record of one. */
async function expectNothingLeft(ms = 45_000): Promise<void> {
  // The stop of a server comes through the host's queue; the reaper's 30 s pass is the backstop.
  await until(async () => (await processesMentioning(join(stack.dir, 'runs'))).length === 0, 'every process of the store to be gone', ms, 500).catch(async (err) => {
    throw new Error(`${(err as Error).message}: ${JSON.stringify(await processesMentioning(join(stack.dir, 'runs')))}`);
  });
  const records = await readdir(join(store, 'processes')).catch(() => []);
  expect(records).toEqual([]);
}

const timings: string[] = [];
function note(line: string): void {
  timings.push(line);
  console.log(`[faults] ${line}`);
}
const secs = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(0)} s`;

beforeAll(async () => {
  stack = await makeStack(({ prm }) => {
    prmPort = prm;
    return sections(prm, { stack: true, samplingSeed: 11, sftSeed: 1 });
  });
  const text = await readFile(stack.config, 'utf8');
  header = text.slice(0, text.indexOf(MARK));
  address = /address: (\S+)/.exec(text)![1]!;
  store = join(stack.dir, 'runs');
  const up = await stack.cli(['dev', 'up', '--config', stack.config]);
  expect(up.exitCode, up.stderr).toBe(0);
}, 300_000);

afterAll(async () => {
  if (stack) await stack.cli(['dev', 'down', '--config', stack.config]);
  console.log(`[faults] summary\n${timings.join('\n')}`);
}, 120_000);

describe('the fault matrix', () => {
  /** The iteration's own policy server (serving the new checkpoint), once its process exists. */
  const newPolicyServer = () =>
    until(async () => (await processesMentioning('prm_raft.policy_server')).find((p) => p.cmd.includes(join(store, 'cache', 'sft'))), 'the new policy server', 600_000, 100);
  const sftJob = () => until(async () => (await processesMentioning('prm_raft.sft')).find((p) => p.cmd.includes(store)), 'the SFT job', 600_000, 100);

  /** SIGKILLs the stack's worker and starts another, as a supervisor (or the user) would. */
  async function killWorker(pid?: number): Promise<number> {
    const worker = pid ?? (await stackPid('worker'));
    process.kill(worker, 'SIGKILL');
    const at = Date.now();
    const up = await stack.cli(['dev', 'up', '--config', stack.config]);
    expect(up.stderr).toMatch(/worker: started/);
    return at;
  }

  // Run 1 (fresh sampling): Temporal killed mid-sampling, then the worker killed while the new policy server starts.
  const run1 = { id: '', config: '', t0: 0 };
  it('Temporal server killed mid-sampling and restarted on its state: the run goes on', async () => {
    run1.config = await cellConfig('run1', { samplingSeed: 11, sftSeed: 1 });
    run1.t0 = Date.now();
    run1.id = await startIteration(run1.config);
    await until(async () => (await progress(run1.id)).shardsSampled >= 1, 'a first shard sampled', 600_000, 100);
    const temporal = await stackPid('temporal');
    process.kill(temporal, 'SIGKILL');
    const killedAt = Date.now();
    const up = await stack.cli(['dev', 'up', '--config', stack.config]);
    expect(up.stderr).toMatch(/temporal: started/);
    note(`temporal-kill: killed ${secs(run1.t0)} into the run, healthy again after ${secs(killedAt)}`);
    await until(async () => ['training', 'evaluating', 'done'].includes((await progress(run1.id)).stage), 'the run to reach training', 600_000, 500);
    note(`temporal-kill: training ${secs(killedAt)} after the kill`);
  }, 900_000);

  it('worker killed while the new policy server starts: the retry stops it before starting another; the run finishes, nothing is left', async () => {
    const server = await newPolicyServer();
    const healthy = await fetch(`http://127.0.0.1:${/--port (\d+)/.exec(server.cmd)?.[1]}/health`).then((r) => r.ok, () => false);
    const killedAt = await killWorker();
    note(`serve-start-kill: worker killed while server ${server.pid} was starting (healthy: ${healthy}), ${secs(run1.t0)} into the run`);
    await until(async () => !(await processesMentioning('prm_raft.policy_server')).some((p) => p.pid === server.pid), 'the first server to be stopped', 120_000);
    const done = await follow(run1.id, run1.config);
    expect(done.exitCode, done.stderr).toBe(0);
    expect(RaftIterationResult.parse(JSON.parse(done.stdout)).after.datasets[0]?.total).toBe(12);
    note(`serve-start-kill: finished ${secs(killedAt)} after the kill (whole run ${secs(run1.t0)})`);
    await expectRunWhole(run1.id, ['startPolicyServer']);
  }, 900_000);

  // Run 2: the worker killed during SFT, and again while the new policy serves the evaluation.
  const run2 = { id: '', config: '', t0: 0 };
  it('worker killed during SFT: the orphaned job is stopped at once and the retry trains', async () => {
    run2.config = await cellConfig('run2', { samplingSeed: 11, sftSeed: 2 });
    run2.t0 = Date.now();
    run2.id = await startIteration(run2.config);
    const job = await sftJob();
    const killedAt = await killWorker();
    note(`sft-worker-kill: worker killed during SFT (job ${job.pid}), ${secs(run2.t0)} into the run`);
    // The new worker stops the dead one's job at start-up: no two jobs ever train in one folder.
    await until(async () => !(await processesMentioning('prm_raft.sft')).some((p) => p.pid === job.pid), 'the orphaned SFT job to be stopped', 60_000);
    await until(async () => ['evaluating', 'done'].includes((await progress(run2.id)).stage), 'the retried SFT to finish', 600_000, 500);
    note(`sft-worker-kill: trained ${secs(killedAt)} after the kill`);
  }, 900_000);

  it('worker killed while the new policy serves the evaluation: the run finishes on it, then it is stopped, nothing is left', async () => {
    // Mid-evaluation: the evaluation of the new policy has its shards in flight. Twelve questions take seconds, so
    // the worker's pid is read beforehand and the kill lands within one poll.
    const worker = await stackPid('worker');
    const client = await temporalClient(address);
    const server = await newPolicyServer();
    await until(
      async () => {
        const p = await client.workflow.getHandle(`${run2.id}-after`).query('progress').catch(() => null);
        const e = p === null ? null : EvaluationProgress.parse(p);
        const d = e?.datasets[0];
        return e?.stage === 'sampling' && d !== undefined && d.questionsDone < d.total;
      },
      'the evaluation of the new policy to run its shards',
      300_000,
      50,
    );
    await client.connection.close();
    const killedAt = await killWorker(worker);
    note(`serve-kill: worker killed while server ${server.pid} served the evaluation, ${secs(run2.t0)} into the run`);
    const done = await follow(run2.id, run2.config);
    expect(done.exitCode, done.stderr).toBe(0);
    const result = RaftIterationResult.parse(JSON.parse(done.stdout));
    expect(result.sft).toMatchObject({ steps: 3, cached: false });
    expect(result.after.datasets[0]?.total).toBe(12);
    note(`serve-kill: finished ${secs(killedAt)} after the kill (whole run ${secs(run2.t0)})`);
    await expectRunWhole(run2.id, ['runSft', 'after:evaluateShard']);
  }, 900_000);

  it('SFT process killed after a checkpoint: the retry resumes from it and the run finishes', async () => {
    const config = await cellConfig('sft-kill', { samplingSeed: 11, sftSeed: 3 });
    const t0 = Date.now();
    const runId = await startIteration(config);
    // Killed once checkpoint-1 is complete (the Trainer writes trainer_state.json last), so the retry has one to resume.
    let seen: number | null = null;
    const job = await until(
      async () => {
        const p = (await processesMentioning('prm_raft.sft')).find((q) => q.cmd.includes(store));
        if (!p && seen !== null) throw new Error(`the SFT job ${seen} ended before it could be killed after a checkpoint`);
        const jobJson = p && /--config (\S+)/.exec(p.cmd)?.[1];
        if (!p || !jobJson) return null;
        seen = p.pid;
        const state = await readFile(join(jobJson, '..', 'checkpoints', 'checkpoint-1', 'trainer_state.json'), 'utf8').catch(() => '');
        try {
          return (JSON.parse(state) as { global_step?: number }).global_step === 1 ? p : null;
        } catch {
          return null; // not there yet, or still being written
        }
      },
      'the SFT job to complete its first checkpoint',
      600_000,
      50,
    );
    process.kill(job.pid, 'SIGKILL');
    const killedAt = Date.now();
    note(`SFT process ${job.pid} killed, ${secs(t0)} into the run`);
    const done = await follow(runId, config);
    expect(done.exitCode, done.stderr).toBe(0);
    const result = RaftIterationResult.parse(JSON.parse(done.stdout));
    expect(result.sft.steps).toBe(3);
    const summary = JSON.parse(await readFile(join(result.sft.checkpoint, 'prm_raft_sft.json'), 'utf8')) as { resumed_from: string | null };
    expect(summary.resumed_from).toMatch(/checkpoint-\d+$/);
    note(`sft-kill: finished ${secs(killedAt)} after the kill, resumed from ${summary.resumed_from?.split('/').at(-1)} (whole run ${secs(t0)})`);
    await expectRunWhole(runId);
  }, 900_000);

  it('policy server killed during evaluation: the shard retries until it is back, every question once', async () => {
    const config = await cellConfig('policy-kill', { samplingSeed: 11, sftSeed: 1, evalSkip: 40 });
    const t0 = Date.now();
    const started = await stack.cli(['eval', '--config', config, '--detach']);
    expect(started.exitCode, started.stderr).toBe(0);
    const runId = started.stdout.trim();
    const client = await temporalClient(address);
    await until(async () => {
      const p = EvaluationProgress.parse(await client.workflow.getHandle(runId).query('progress'));
      return p.stage === 'sampling' || p.stage === 'summarizing';
    }, 'the evaluation to start its shards', 300_000, 100);
    const policy = await stackPid('policy');
    process.kill(policy, 'SIGKILL');
    const killedAt = Date.now();
    note(`policy server killed during evaluation, ${secs(t0)} into it`);
    // What a supervisor (or the user) does: start it again.
    const up = await stack.cli(['dev', 'up', '--config', stack.config]);
    expect(up.stderr).toMatch(/policy: started/);
    const done = await stack.cli(['status', runId, '--config', config, '--json']);
    expect(done.exitCode, done.stderr).toBe(0);
    const summary = EvaluationSummary.parse(JSON.parse(done.stdout));
    expect(summary.datasets[0]?.total).toBe(12);
    const outcomes = await activityOutcomes(client, runId);
    expect(await expectShardsOnce(outcomes, 'evaluateShard', 2)).toHaveLength(12);
    note(`policy-kill: finished ${secs(killedAt)} after the kill, retried attempts ${JSON.stringify(outcomes.failedAttempts)}`);
    await client.connection.close();
    await expectNothingLeft();
  }, 900_000);

  it('PRM answering 503: scoring retries and the run finishes, every shard once', async () => {
    const proxy = await startPrmProxy(`http://127.0.0.1:${prmPort}`, 'fault-503');
    try {
      proxy.set({ kind: 'unavailable', requests: 3 });
      const config = await cellConfig('prm-503', { samplingSeed: 11, sftSeed: 1, prmUrl: proxy.url });
      const t0 = Date.now();
      const runId = await startIteration(config);
      const done = await follow(runId, config);
      expect(done.exitCode, done.stderr).toBe(0);
      expect(proxy.seen.answered5xx).toBe(3);
      const client = await temporalClient(address);
      note(`prm-503: finished in ${secs(t0)}, retried attempts ${JSON.stringify((await activityOutcomes(client, runId)).failedAttempts)}`);
      await client.connection.close();
      await expectRunWhole(runId);
    } finally {
      await proxy.close();
    }
  }, 900_000);

  it('PRM answering garbage: the run fails naming the server, and once the PRM is fixed `resume` finishes it', async () => {
    const proxy = await startPrmProxy(`http://127.0.0.1:${prmPort}`, 'fault-garbage');
    try {
      proxy.set({ kind: 'garbage' });
      const config = await cellConfig('prm-garbage', { samplingSeed: 11, sftSeed: 1, prmUrl: proxy.url });
      const t0 = Date.now();
      const runId = await startIteration(config);
      const failed = await follow(runId, config);
      expect(failed.exitCode).toBe(1);
      expect(failed.stderr).toContain(proxy.url);
      expect(failed.stderr).toMatch(/answered off the protocol/);
      note(`prm-garbage: failed in ${secs(t0)}: ${/failed: (.*)/.exec(failed.stderr)?.[1]?.slice(0, 160)}`);
      const samplesBefore = (await readdir(join(store, 'cache', 'samples'))).sort();
      proxy.set({ kind: 'honest' });
      const t1 = Date.now();
      const resumed = await stack.cli(['resume', runId, '--config', config, '--json']);
      expect(resumed.exitCode, resumed.stderr).toBe(0);
      // Nothing was sampled again.
      expect((await readdir(join(store, 'cache', 'samples'))).sort()).toEqual(samplesBefore);
      note(`prm-garbage: resumed to the end in ${secs(t1)}`);
      await expectRunWhole(runId);
    } finally {
      await proxy.close();
    }
  }, 900_000);

  it('`dev down` stops every recorded process and says how many; nothing of the stack or its runs is left', async () => {
    const down = await stack.cli(['dev', 'down', '--config', stack.config]);
    expect(down.exitCode).toBe(0);
    expect(down.stderr).toMatch(/stopped \d+ process(es)? of the stack and \d+ process(es)? started by stages/);
    expect(await processesMentioning(stack.dir)).toEqual([]);
  }, 120_000);
});
