// Child processes in their own process group, so cancelling kills the whole tree, never leaving orphans.
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { forgetRecord, recordProcess, type RecordSpec } from './process-registry.js';

/** Every process group this process started and has not seen end, with its registry record if it has one. */
const liveGroups = new Map<number, string | null>();

/** Kills every process group this process started, and forgets their records; the worker calls it on shutdown. */
export function killAllProcessGroups(signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const [pid, record] of liveGroups) {
    killGroup(pid, signal);
    if (record && signal === 'SIGKILL') forgetRecord(record);
  }
}

function track(pid: number, file: string, args: readonly string[], record: RecordSpec | undefined): void {
  let path: string | null = null;
  if (record) {
    try {
      path = recordProcess(record, pid, [file, ...args]).path;
    } catch (err) {
      // An unrecorded process is still killed with this worker; only a restarted worker would not find it.
      process.stderr.write(`could not record ${record.what} (pid ${pid}) in ${record.dir}: ${(err as Error).message}\n`);
    }
  }
  liveGroups.set(pid, path);
}

function untrack(pid: number): void {
  const path = liveGroups.get(pid);
  if (path) forgetRecord(path);
  liveGroups.delete(pid);
}

export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

export interface ProcessResult {
  exitCode: number;
  /** The last lines of stderr, for error messages. */
  stderrTail: string;
}

export interface RunProcessOptions {
  cwd?: string;
  env?: Record<string, string>;
  signal?: AbortSignal;
  /** Called with each stdout line as it arrives (JSON-lines progress). */
  onStdoutLine?: (line: string) => void;
  /** Seconds between SIGTERM and SIGKILL on cancellation. */
  killGraceSeconds?: number;
  /** Records the process in a registry while it runs (see clients/process-registry.ts). */
  record?: RecordSpec;
}

/** Runs a command to completion; resolves with its exit code whatever it is, rejects if it cannot start or is cancelled. */
export async function runProcess(file: string, args: readonly string[], opts: RunProcessOptions = {}): Promise<ProcessResult> {
  const child = execa(file, args, {
    cwd: opts.cwd,
    env: opts.env,
    detached: true,
    reject: false,
    buffer: { stdout: false, stderr: true },
    stdin: 'ignore',
    stripFinalNewline: false,
  });
  const pid = child.pid;
  if (pid === undefined) {
    const result = await child;
    throw new Error(`could not start ${file}: ${result.message ?? 'unknown error'}`);
  }
  track(pid, file, args, opts.record);
  const cancel = () => {
    killGroup(pid, 'SIGTERM');
    setTimeout(() => killGroup(pid, 'SIGKILL'), (opts.killGraceSeconds ?? 5) * 1000).unref();
  };
  if (opts.signal?.aborted) cancel();
  opts.signal?.addEventListener('abort', cancel, { once: true });
  if (opts.onStdoutLine && child.stdout) {
    const onLine = opts.onStdoutLine;
    createInterface({ input: child.stdout }).on('line', (line) => onLine(line));
  } else {
    child.stdout?.resume();
  }
  try {
    const result = await child;
    if (result.failed && result.exitCode === undefined && !result.isTerminated) {
      throw new Error(`could not run ${file}: ${result.shortMessage}`);
    }
    // A cancelled run ends with the cancellation, not with the exit code it was killed into.
    if (opts.signal?.aborted) throw opts.signal.reason ?? new Error(`${file} was cancelled`);
    const stderr = typeof result.stderr === 'string' ? result.stderr : '';
    return { exitCode: result.exitCode ?? -1, stderrTail: stderr.trim().split('\n').slice(-20).join('\n') };
  } finally {
    opts.signal?.removeEventListener('abort', cancel);
    // Grandchildren may outlive a finished parent; the group goes with it.
    killGroup(pid, 'SIGKILL');
    untrack(pid);
  }
}

/**
 * Starts a long-lived server in its own process group, its output appended to `logPath`. It is killed with
 * the worker (killAllProcessGroups) or by `stopBackground`.
 */
export function startBackground(file: string, args: readonly string[], logPath: string, env?: Record<string, string>, record?: RecordSpec): number {
  const log = openSync(logPath, 'a');
  try {
    const child = spawn(file, args, { detached: true, stdio: ['ignore', log, log], env: { ...process.env, ...env } });
    if (child.pid === undefined) throw new Error(`could not start ${file}`);
    child.unref();
    track(child.pid, file, args, record);
    return child.pid;
  } finally {
    closeSync(log);
  }
}

/** SIGTERM, then SIGKILL after the grace period; resolves once the process is gone. */
export async function stopBackground(pid: number, graceSeconds = 10): Promise<void> {
  killGroup(pid, 'SIGTERM');
  const deadline = Date.now() + graceSeconds * 1000;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  if (isAlive(pid)) killGroup(pid, 'SIGKILL');
  untrack(pid);
}

/** Whether this process started `pid` and has not seen it end. */
export function startedHere(pid: number): boolean {
  return liveGroups.has(pid);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
