// The process registry with real processes: records written when a stage starts one, a pid checked by its start
// time before any signal, whole groups stopped, earlier attempts and dead workers' jobs reaped.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive, runProcess, startBackground, stopBackground } from '../../clients/process.js';
import { identify, listRecords, recordProcess, recordState, stopAllRecorded, stopEarlierAttempts, stopRecorded } from '../../clients/process-registry.js';
import { ProcessRecord } from '../../core/process-record.js';
import { reapOnce } from '../../stack/process-reaper.js';

const started: number[] = [];
afterEach(() => {
  for (const pid of started.splice(0)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

const activity = { workflowId: 'raft-t', runId: 'run-1', activityId: '3', activityType: 'runSft', attempt: 1 };

/** A shell leading its own group with a grandchild: stopping must take both. */
function startTree(dir: string, over: { kind?: 'job' | 'server'; attempt?: number; activity?: null } = {}): { pid: number; grandchildFile: string } {
  const grandchildFile = join(dir, `gc-${Math.random()}`);
  const pid = startBackground('sh', ['-c', `sleep 300 & echo $! > ${grandchildFile}; wait`], join(dir, 'log.txt'), undefined, {
    dir: join(dir, 'processes'),
    kind: over.kind ?? 'job',
    what: 'test job',
    activity: over.activity === null ? null : { ...activity, attempt: over.attempt ?? 1 },
  });
  started.push(pid);
  return { pid, grandchildFile };
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function grandchild(file: string): Promise<number> {
  await until(async () => (await readFile(file, 'utf8').catch(() => '')).trim() !== '', 'the grandchild pid');
  return Number((await readFile(file, 'utf8')).trim());
}

/** Rewrites a record as if another (dead) worker had started the process. */
async function orphan(path: string): Promise<void> {
  const dead = spawn('true');
  const deadPid = dead.pid!;
  const deadId = identify(deadPid) ?? { pid: deadPid, startTime: '1' };
  await new Promise((r) => dead.on('exit', r));
  const record = ProcessRecord.parse(JSON.parse(await readFile(path, 'utf8')));
  await writeFile(path, JSON.stringify({ ...record, owner: deadId }));
}

describe('the process registry', () => {
  it('records a started server with its pid, group and start time, and forgets it once stopped', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'registry-'));
    const { pid, grandchildFile } = startTree(dir, { kind: 'server' });
    const gc = await grandchild(grandchildFile);
    const [rp] = listRecords(join(dir, 'processes'));
    expect(rp?.record).toMatchObject({ kind: 'server', process: { pid }, pgid: pid, owner: { pid: process.pid }, activity, command: ['sh', '-c', expect.any(String)] });
    expect(rp!.record.process.startTime).toBe(identify(pid)!.startTime);
    await stopBackground(pid, 2);
    await until(() => !isAlive(gc), 'the grandchild to die');
    expect(await readdir(join(dir, 'processes'))).toEqual([]);
  });

  it('records a job while it runs and removes the record when it ends', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'registry-'));
    const reg = join(dir, 'processes');
    let seen = 0;
    const result = await runProcess('sh', ['-c', 'echo go; sleep 0.3'], {
      record: { dir: reg, kind: 'job', what: 'test job', activity },
      onStdoutLine: () => (seen = listRecords(reg).length),
    });
    expect(result.exitCode).toBe(0);
    expect(seen).toBe(1);
    expect(listRecords(reg)).toEqual([]);
  });

  it('never signals a pid that now belongs to another process (a recycled pid)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'registry-'));
    const victim = spawn('sleep', ['300'], { detached: true });
    started.push(victim.pid!);
    // A record of "the same pid" started at another time: what a record looks like after the pid was recycled.
    const rp = recordProcess({ dir: join(dir, 'processes'), kind: 'job', what: 'old job', activity }, victim.pid!, ['old']);
    await writeFile(rp.path, JSON.stringify({ ...rp.record, process: { ...rp.record.process, startTime: '1' } }));
    const [stale] = listRecords(join(dir, 'processes'));
    expect(recordState(stale!.record)).toBe('gone');
    expect(await stopRecorded(stale!, 1)).toBe(false);
    expect(isAlive(victim.pid!)).toBe(true);
    expect(listRecords(join(dir, 'processes'))).toEqual([]);
  });

  it("a retry stops what the activity's earlier attempt left running, and nothing else", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'registry-'));
    const first = startTree(dir, { attempt: 1 });
    const gc = await grandchild(first.grandchildFile);
    const other = startTree(dir, { activity: null });
    const lines: string[] = [];
    expect(await stopEarlierAttempts(join(dir, 'processes'), { ...activity, attempt: 2 }, (l) => lines.push(l))).toBe(1);
    await until(() => !isAlive(first.pid), 'the first attempt to die');
    await until(() => !isAlive(gc), 'the grandchild to die');
    expect(isAlive(other.pid)).toBe(true);
    expect(lines.join('\n')).toMatch(/attempt 1 of this activity left running/);
  });

  it("a worker's reaper stops the jobs of a dead worker and keeps its own, and a server a run may still use", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'registry-'));
    const reg = join(dir, 'processes');
    const mine = startTree(dir);
    const lost = startTree(dir, { attempt: 1 });
    const lostGc = await grandchild(lost.grandchildFile);
    const served = startTree(dir, { kind: 'server' });
    const unused = startTree(dir, { kind: 'server', activity: null });
    const byPid = new Map(listRecords(reg).map((r) => [r.record.process.pid, r.path]));
    for (const pid of [lost.pid, served.pid, unused.pid]) await orphan(byPid.get(pid)!);
    const lines: string[] = [];
    const stopped = await reapOnce({ workflowService: null, namespace: 'default', dirs: () => [reg], log: (l) => lines.push(l) });
    expect(stopped.map((r) => r.process.pid).sort()).toEqual([lost.pid, unused.pid].sort());
    await until(() => !isAlive(lostGc), "the lost job's grandchild to die");
    expect(isAlive(mine.pid)).toBe(true);
    // Its worker is gone, but without Temporal nobody can say its run has ended: it stays until `dev down`.
    expect(isAlive(served.pid)).toBe(true);
    expect(lines.join('\n')).toMatch(/stopping the test job .*its worker \(pid \d+\) is gone/);
    const down: string[] = [];
    expect((await stopAllRecorded(reg, (l) => down.push(l))).length).toBe(2);
    await until(() => [mine.pid, served.pid].filter(isAlive).length === 0, 'every recorded process to die');
    expect(listRecords(reg)).toEqual([]);
  });

  it('leaves a file that is not a record alone, and says so', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'registry-'));
    const reg = join(dir, 'processes');
    startTree(dir);
    await writeFile(join(reg, 'junk.json'), '{"pid": 1}');
    const lines: string[] = [];
    expect((await stopAllRecorded(reg, (l) => lines.push(l))).length).toBe(1);
    expect(lines.join('\n')).toMatch(/junk\.json: not a process record/);
    expect(await readdir(reg)).toEqual(['junk.json']);
  });
});
