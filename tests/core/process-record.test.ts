// The decisions made from process records: pure, so every case is a table row.
import { describe, expect, it } from 'vitest';
import { decideReap, earlierAttempts, parseProcStat, type ProcessFacts, type ProcessRecord, recordFileName, workerPidOnHost } from '../../core/process-record.js';

const here = { host: 'gpu-1', bootId: 'boot-a' };
const activity = { workflowId: 'raft-1', runId: 'run-a', activityId: '7', activityType: 'startPolicyServer', attempt: 1 };
function record(over: Partial<ProcessRecord> = {}): ProcessRecord {
  return {
    v: 1,
    kind: 'server',
    what: 'policy server for /ckpt',
    command: ['python', '-m', 'prm_raft.policy_server'],
    host: 'gpu-1',
    bootId: 'boot-a',
    process: { pid: 4242, startTime: '1000' },
    pgid: 4242,
    startedAt: '2026-12-06T10:00:00.000Z',
    owner: { pid: 100, startTime: '50' },
    activity,
    log: null,
    ...over,
  };
}
const facts = (over: Partial<ProcessFacts> = {}): ProcessFacts => ({ state: 'alive', ownerAlive: true, workflow: 'running', attemptPending: false, ...over });

describe('parseProcStat', () => {
  it('reads pid, state, pgid and start time, whatever the command name holds', () => {
    const line = '4242 (python (x) y) S 1 4242 4242 0 -1 4194560 1 0 0 0 5 3 0 0 20 0 1 0 987654 1000 10 18446744073709551615';
    expect(parseProcStat(line)).toEqual({ pid: 4242, state: 'S', ppid: 1, pgid: 4242, startTicks: '987654' });
  });
  it('refuses what is not a stat line', () => {
    expect(parseProcStat('garbage')).toBeNull();
    expect(parseProcStat('12 (x) S 1')).toBeNull();
  });
});

describe('decideReap', () => {
  const cases: Array<[string, ProcessRecord, ProcessFacts, 'stop' | 'keep' | 'forget']> = [
    ['another machine: never judged here', record({ host: 'gpu-2' }), facts({ ownerAlive: false, workflow: 'closed' }), 'keep'],
    ['before a reboot: stale', record({ bootId: 'boot-0' }), facts({ ownerAlive: false }), 'forget'],
    ['gone: forgotten', record(), facts({ state: 'gone', ownerAlive: false }), 'forget'],
    ['job of a live worker', record({ kind: 'job' }), facts(), 'keep'],
    ['job of a dead worker', record({ kind: 'job' }), facts({ ownerAlive: false }), 'stop'],
    ['job of a dead worker, only its group left', record({ kind: 'job' }), facts({ state: 'group-only', ownerAlive: false }), 'stop'],
    ['server of a live worker, run going', record(), facts(), 'keep'],
    ['server whose run ended, worker alive', record(), facts({ workflow: 'closed' }), 'stop'],
    ['server whose run ended, worker dead', record(), facts({ ownerAlive: false, workflow: 'closed' }), 'stop'],
    ['server whose worker died while starting it', record(), facts({ ownerAlive: false, attemptPending: true }), 'stop'],
    ['server handed over, worker dead, run going', record(), facts({ ownerAlive: false }), 'keep'],
    ['server handed over, worker dead, Temporal unreachable', record(), facts({ ownerAlive: false, workflow: 'unknown' }), 'keep'],
    ['server no run uses, worker dead', record({ activity: null }), facts({ ownerAlive: false, workflow: 'unknown' }), 'stop'],
  ];
  it.each(cases)('%s', (_name, r, f, action) => {
    expect(decideReap(r, here, f).action).toBe(action);
  });
});

describe('earlierAttempts', () => {
  it('finds what earlier attempts of the same activity in the same run left, on this machine only', () => {
    const mine = record({ process: { pid: 1, startTime: '1' } });
    const otherActivity = record({ process: { pid: 2, startTime: '1' }, activity: { ...activity, activityId: '8' } });
    const otherRun = record({ process: { pid: 3, startTime: '1' }, activity: { ...activity, runId: 'run-b' } });
    const otherHost = record({ process: { pid: 4, startTime: '1' }, host: 'gpu-2' });
    const sameAttempt = record({ process: { pid: 5, startTime: '1' }, activity: { ...activity, attempt: 2 } });
    const found = earlierAttempts([mine, otherActivity, otherRun, otherHost, sameAttempt], here, { ...activity, attempt: 2 });
    expect(found).toEqual([mine]);
  });
});

describe('recordFileName', () => {
  it('differs for a recycled pid and keeps to safe characters', () => {
    const a = recordFileName(record({ host: 'a/b' }));
    const b = recordFileName(record({ host: 'a/b', process: { pid: 4242, startTime: '2000' } }));
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[A-Za-z0-9_.-]+\.json$/);
  });
});

describe('workerPidOnHost', () => {
  it("reads the pid of a worker's default identity on this host only", () => {
    expect(workerPidOnHost('4242@gpu-1', 'gpu-1')).toBe(4242);
    expect(workerPidOnHost('4242@gpu-2', 'gpu-1')).toBeNull();
    expect(workerPidOnHost('reaper 4242@gpu-1', 'gpu-1')).toBeNull();
    expect(workerPidOnHost('my-worker', 'gpu-1')).toBeNull();
  });
});
