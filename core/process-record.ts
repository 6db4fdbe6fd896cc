// What a stage records about a process it starts (an SFT or PRM-training job, a served policy or PRM), and the
// decisions made from such records: whether a process is still the one recorded, and what a worker, a retry or
// `dev down` does with it. No I/O here: the registry (clients/process-registry.ts) gathers the facts.
import { z } from 'zod';

/** A process as the kernel names it: a pid is only ever compared together with its start time. */
export const ProcessIdentity = z.strictObject({
  pid: z.number().int().positive(),
  /** Start time in clock ticks since boot (/proc/PID/stat field 22), or `ps`'s start time where there is no /proc. */
  startTime: z.string().min(1),
});
export type ProcessIdentity = z.infer<typeof ProcessIdentity>;

/** The Temporal activity attempt that started a process: a retry of the same activity finds it by these. */
export const ActivityRef = z.strictObject({
  workflowId: z.string(),
  runId: z.string(),
  activityId: z.string(),
  activityType: z.string(),
  attempt: z.number().int().positive(),
});
export type ActivityRef = z.infer<typeof ActivityRef>;

export const ProcessKind = z.enum(['job', 'server']);
export type ProcessKind = z.infer<typeof ProcessKind>;

export const ProcessRecord = z.strictObject({
  v: z.literal(1),
  /** A job ends by itself; a server runs until it is stopped (it outlives the activity that started it). */
  kind: ProcessKind,
  /** How messages name it: "SFT job", "policy server for …". */
  what: z.string(),
  command: z.array(z.string()).min(1),
  /** Pids mean something only on their machine and until it reboots. */
  host: z.string(),
  bootId: z.string(),
  process: ProcessIdentity,
  /** The process group the whole tree runs in (the process leads it). */
  pgid: z.number().int().positive(),
  startedAt: z.string(),
  /** The worker that started it: when that worker is gone, nobody else would stop it. */
  owner: ProcessIdentity,
  activity: ActivityRef.nullable(),
  /** Its log, if it has one of its own. */
  log: z.string().nullable(),
});
export type ProcessRecord = z.infer<typeof ProcessRecord>;

/** The machine a registry is read on. */
export interface Here {
  host: string;
  bootId: string;
}

/** One file per process, named so that two records never collide (a recycled pid has another start time). */
export function recordFileName(r: Pick<ProcessRecord, 'host' | 'process'>): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9_.-]/g, '_');
  return `${safe(r.host)}-${r.process.pid}-${safe(r.process.startTime)}.json`;
}

/** The fields of /proc/PID/stat the registry needs. The command name may hold spaces and parentheses. */
export function parseProcStat(text: string): { pid: number; state: string; ppid: number; pgid: number; startTicks: string } | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const pid = Number(text.slice(0, open).trim());
  // After the name: state (field 3), ppid (4), pgrp (5), …, starttime (22).
  const rest = text.slice(close + 1).trim().split(/\s+/);
  const [state, ppid, pgid, startTicks] = [rest[0] ?? '', Number(rest[1]), Number(rest[2]), rest[19]];
  if (!Number.isInteger(pid) || !Number.isInteger(ppid) || !Number.isInteger(pgid) || startTicks === undefined || !/^\d+$/.test(startTicks)) return null;
  return { pid, state, ppid, pgid, startTicks };
}

/** What is known about a recorded process right now. */
export interface ProcessFacts {
  /** The recorded process itself (same pid and start time), or only members of its group, or nothing. */
  state: 'alive' | 'group-only' | 'gone';
  /** Its owner worker is the same process as recorded. */
  ownerAlive: boolean;
  /** The workflow run that started it: running, closed, or unknown (Temporal unreachable, or not asked). */
  workflow: 'running' | 'closed' | 'unknown';
  /** The activity attempt that started it is still pending and started, i.e. nobody has taken over from it. */
  attemptPending: boolean;
}

export type ReapDecision =
  /** Stop the process group, then forget the record. */
  | { action: 'stop'; why: string }
  /** The process is gone (or cannot be ours): just forget the record. */
  | { action: 'forget'; why: string }
  | { action: 'keep'; why: string };

/**
 * What a worker does with a record it finds (at start-up and every so often while it runs).
 * - Another machine's record is never judged here; one from before this machine's last boot is stale.
 * - A job whose worker is dead is stopped: its activity will be retried, and two jobs in one output folder must
 *   never run side by side.
 * - A server whose worker died while starting it (the start activity is still pending) is stopped: the retry starts
 *   another one.
 * - A server already handed to its workflow is kept while that workflow runs (its evaluation may still be using it;
 *   the stop comes through the host's queue, which any worker here serves), and stopped once the run has ended
 *   whoever owns it: nothing else would ever stop it.
 */
export function decideReap(record: ProcessRecord, here: Here, facts: ProcessFacts): ReapDecision {
  if (record.host !== here.host) return { action: 'keep', why: `started on ${record.host}` };
  if (record.bootId !== here.bootId) return { action: 'forget', why: 'started before this machine rebooted' };
  if (facts.state === 'gone') return { action: 'forget', why: 'already gone' };
  if (record.kind === 'job') {
    return facts.ownerAlive ? { action: 'keep', why: 'its worker is running it' } : { action: 'stop', why: `its worker (pid ${record.owner.pid}) is gone` };
  }
  if (facts.workflow === 'closed') return { action: 'stop', why: `its run ${record.activity?.workflowId ?? ''} has ended`.replace('  ', ' ') };
  if (facts.ownerAlive) return { action: 'keep', why: 'its worker serves it' };
  if (facts.attemptPending) return { action: 'stop', why: `its worker (pid ${record.owner.pid}) died while starting it; the retry starts another` };
  if (record.activity === null) return { action: 'stop', why: `its worker (pid ${record.owner.pid}) is gone and no run uses it` };
  return { action: 'keep', why: `its worker is gone but its run ${record.activity.workflowId} may still use it` };
}

/** Records left by earlier attempts of the same activity (same run, same activity id), on this machine. */
export function earlierAttempts(records: readonly ProcessRecord[], here: Here, activity: ActivityRef): ProcessRecord[] {
  return records.filter(
    (r) =>
      r.host === here.host &&
      r.bootId === here.bootId &&
      r.activity !== null &&
      r.activity.workflowId === activity.workflowId &&
      r.activity.runId === activity.runId &&
      r.activity.activityId === activity.activityId &&
      r.activity.attempt < activity.attempt,
  );
}

/** "3 processes", "1 process". */
export function processCount(n: number): string {
  return `${n} process${n === 1 ? '' : 'es'}`;
}

/**
 * The pid of a worker named by its Temporal identity (the SDK's default, `<pid>@<host>`), if it ran on `host`.
 * A pid that is not running on that host means the worker is gone: its started activities will never finish.
 */
export function workerPidOnHost(identity: string, host: string): number | null {
  const m = /^(\d+)@(.+)$/.exec(identity);
  return m && m[2] === host ? Number(m[1]) : null;
}
