// The process registry: one small JSON file per process a stage started, under `<store>/processes/`, so that a
// retry, a restarted worker and `prm-raft dev down` can find it and stop it. A record names the process by pid
// *and* start time: a pid the kernel has handed to another process since is never signalled.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import {
  type ActivityRef,
  earlierAttempts,
  type Here,
  type ProcessIdentity,
  type ProcessKind,
  ProcessRecord,
  parseProcStat,
  recordFileName,
} from '../core/process-record.js';

/** Where the records of a store live. */
export function processRegistryDir(storeRoot: string): string {
  return join(resolve(storeRoot), 'processes');
}

/** Every registry this process has written to or was told about: a stop may come for any of them. */
const knownDirs = new Set<string>();
export function rememberRegistryDir(dir: string): void {
  knownDirs.add(resolve(dir));
}
export function knownRegistryDirs(): string[] {
  return [...knownDirs];
}

let hereCache: Here | null = null;
export function here(): Here {
  if (!hereCache) {
    let bootId = 'unknown';
    try {
      bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      // Not Linux: pids are then compared by `ps` start times alone.
    }
    hereCache = { host: hostname(), bootId };
  }
  return hereCache;
}

interface Stat {
  pid: number;
  pgid: number;
  startTime: string;
}

function readStat(pid: number): Stat | null {
  try {
    const s = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    // A zombie has exited: only its parent's wait is missing (and an orphan's parent may be a PID 1 that never waits).
    return s && s.state !== 'Z' && s.state !== 'X' ? { pid: s.pid, pgid: s.pgid, startTime: s.startTicks } : null;
  } catch {
    if (hasProc()) return null;
    // No /proc (macOS): ps knows the start time to the second, which is still enough to tell a recycled pid.
    try {
      const out = execFileSync('ps', ['-o', 'pgid=,lstart=', '-p', String(pid)], { encoding: 'utf8' }).trim();
      const m = /^(\d+)\s+(.+)$/.exec(out);
      return m ? { pid, pgid: Number(m[1]), startTime: m[2]!.replace(/\s+/g, ' ') } : null;
    } catch {
      return null;
    }
  }
}

let procCache: boolean | null = null;
function hasProc(): boolean {
  if (procCache === null) {
    try {
      readFileSync('/proc/self/stat');
      procCache = true;
    } catch {
      procCache = false;
    }
  }
  return procCache;
}

/** The identity of a live process, or null when there is no such process. */
export function identify(pid: number): ProcessIdentity | null {
  const s = readStat(pid);
  return s ? { pid, startTime: s.startTime } : null;
}

export function isSame(id: ProcessIdentity): boolean {
  const now = readStat(id.pid);
  return now !== null && now.startTime === id.startTime;
}

/** This process, as an owner of what it starts. */
let selfCache: ProcessIdentity | null = null;
export function self(): ProcessIdentity {
  selfCache ??= identify(process.pid) ?? { pid: process.pid, startTime: `node-${Date.now() - Math.round(process.uptime() * 1000)}` };
  return selfCache;
}

/** Members of a process group started no earlier than its recorded leader (a group outlives its leader). */
function groupMembers(pgid: number): Stat[] {
  if (!hasProc()) return [];
  const out: Stat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s && s.pgid === pgid) out.push(s);
  }
  return out;
}

/** Is the recorded process (or, once it is gone, a descendant still in its group) running? */
export function recordState(r: ProcessRecord): 'alive' | 'group-only' | 'gone' {
  if (r.host !== here().host || r.bootId !== here().bootId) return 'gone';
  const now = readStat(r.process.pid);
  if (now !== null) {
    // The pid is another process now: the kernel hands out no pid still used as a group id, so the recorded group was
    // empty when this one was born, and any group of that number is the newcomer's.
    return now.startTime === r.process.startTime ? 'alive' : 'gone';
  }
  // The leader is gone, its group may not be (a launcher's workers, a server's engine). Ticks since boot: a member
  // started before the recorded leader cannot be its descendant.
  const since = /^\d+$/.test(r.process.startTime) ? BigInt(r.process.startTime) : null;
  return groupMembers(r.pgid).some((m) => since !== null && /^\d+$/.test(m.startTime) && BigInt(m.startTime) >= since) ? 'group-only' : 'gone';
}

export interface RecordSpec {
  /** The registry directory (processRegistryDir of the store). */
  dir: string;
  kind: ProcessKind;
  what: string;
  activity: ActivityRef | null;
  log?: string | null;
}

export interface RecordedProcess {
  path: string;
  record: ProcessRecord;
}

/**
 * Records a process just started (synchronously: the window in which a killed worker leaves an unrecorded process
 * is the time of one small write). Its group is its own: it was started detached.
 */
export function recordProcess(spec: RecordSpec, pid: number, command: readonly string[]): RecordedProcess {
  rememberRegistryDir(spec.dir);
  const identity = identify(pid) ?? { pid, startTime: 'unknown' };
  const record: ProcessRecord = {
    v: 1,
    kind: spec.kind,
    what: spec.what,
    command: [...command],
    host: here().host,
    bootId: here().bootId,
    process: identity,
    pgid: pid,
    startedAt: new Date().toISOString(),
    owner: self(),
    activity: spec.activity,
    log: spec.log ?? null,
  };
  mkdirSync(spec.dir, { recursive: true });
  const path = join(spec.dir, recordFileName(record));
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`);
  renameSync(tmp, path);
  return { path, record };
}

export function forgetRecord(path: string): void {
  rmSync(path, { force: true });
}

/** Every readable record in a registry; a file that is not one is reported, never acted on. */
export function listRecords(dir: string, onBad?: (path: string, why: string) => void): RecordedProcess[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: RecordedProcess[] = [];
  for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
    const path = join(dir, name);
    try {
      out.push({ path, record: ProcessRecord.parse(JSON.parse(readFileSync(path, 'utf8'))) });
    } catch (err) {
      onBad?.(path, (err as Error).message.split('\n')[0] ?? 'unreadable');
    }
  }
  return out;
}

function signalGroup(r: ProcessRecord, signal: NodeJS.Signals): void {
  // Checked right before each signal: the group is signalled only while it is still the recorded one.
  if (recordState(r) === 'gone') return;
  try {
    process.kill(-r.pgid, signal);
  } catch {
    // Gone in between.
  }
}

/** SIGTERM to the whole group, SIGKILL after `graceSeconds`; resolves once nothing of it is left. Forgets the record. */
export async function stopRecorded(rp: RecordedProcess, graceSeconds = 10): Promise<boolean> {
  const { record } = rp;
  const wasRunning = recordState(record) !== 'gone';
  if (wasRunning) {
    signalGroup(record, 'SIGTERM');
    const deadline = Date.now() + graceSeconds * 1000;
    while (recordState(record) !== 'gone' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    signalGroup(record, 'SIGKILL');
    const hard = Date.now() + 5000;
    while (recordState(record) !== 'gone' && Date.now() < hard) await new Promise((r) => setTimeout(r, 50));
  }
  forgetRecord(rp.path);
  return wasRunning;
}

/** Before an activity starts its process: whatever an earlier attempt of it left running is stopped first. */
export async function stopEarlierAttempts(dir: string, activity: ActivityRef | null, log: (line: string) => void): Promise<number> {
  let stopped = 0;
  if (!activity) return 0;
  const all = listRecords(dir);
  const earlier = new Set(earlierAttempts(all.map((r) => r.record), here(), activity));
  for (const rp of all.filter((r) => earlier.has(r.record))) {
    if (await stopRecorded(rp)) {
      stopped += 1;
      log(`stopped the ${rp.record.what} (pid ${rp.record.process.pid}) that attempt ${rp.record.activity?.attempt} of this activity left running`);
    }
  }
  return stopped;
}

/** The record of a pid in any known registry, if it is still that process. */
export function findRecordByPid(pid: number, dirs: readonly string[] = knownRegistryDirs()): RecordedProcess | null {
  for (const dir of dirs) {
    for (const rp of listRecords(dir)) {
      if (rp.record.process.pid === pid && rp.record.host === here().host && recordState(rp.record) !== 'gone') return rp;
    }
  }
  return null;
}

/** `dev down`: every process recorded on this machine is stopped. Returns what was stopped. */
export async function stopAllRecorded(dir: string, log: (line: string) => void): Promise<ProcessRecord[]> {
  const stopped: ProcessRecord[] = [];
  for (const rp of listRecords(dir, (path, why) => log(`${path}: not a process record (${why}); left alone`))) {
    if (rp.record.host !== here().host) continue;
    if (await stopRecorded(rp, 15)) {
      stopped.push(rp.record);
      const run = rp.record.activity ? ` of ${rp.record.activity.workflowId}` : '';
      log(`${rp.record.what}${run}: stopped (pid ${rp.record.process.pid})`);
    }
  }
  return stopped;
}
