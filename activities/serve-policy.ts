// Stages: serve a checkpoint (gpu queue) — a policy for evaluation, or a PRM an iteration trained for its scoring —
// and stop it again (on the same worker's own queue). A server holds this worker's GPU lease until it is stopped.
import { Context } from '@temporalio/activity';
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { freePort } from '../clients/ports.js';
import { isAlive, startBackground, startedHere, stopBackground } from '../clients/process.js';
import { findRecordByPid, processRegistryDir, stopEarlierAttempts, stopRecorded } from '../clients/process-registry.js';
import { fillCommand } from '../core/command.js';
import { TransientError } from '../core/errors.js';
import type { RaftIterationInput, ServedPolicy } from '../core/raft.js';
import { withFailureClasses } from './failures.js';
import { gpuLease } from './gpu-lease.js';
import { currentActivity } from './training-job.js';

export interface StartPolicyServerInput {
  checkpoint: string;
  model: string;
  serving: RaftIterationInput['serving'];
  python: string;
  storeRoot: string;
}

type Role = 'policy' | 'PRM';

export function createServingActivities(stopQueue: string) {
  async function startServer(role: Role, input: StartPolicyServerInput): Promise<ServedPolicy> {
    return withFailureClasses(async () => {
      const ctx = Context.current();
      const what = `${role} server for ${input.checkpoint}`;
      // A worker killed while starting it left the earlier attempt's server running: stopped before another starts.
      await stopEarlierAttempts(processRegistryDir(input.storeRoot), currentActivity(ctx), (line) => ctx.log.warn(line));
      await gpuLease.acquire(what, {
        signal: ctx.cancellationSignal,
        onWait: (holder) => ctx.heartbeat({ waitingFor: `the GPU, held by ${holder.what}` }),
      });
      try {
        const port = await freePort();
        const pid = await launchServer(what, role, port, input, ctx);
        gpuLease.handOver(pid);
        // The policy speaks the OpenAI API under /v1; the PRM client adds its own /v1/score.
        const baseUrl = `http://${input.serving.host}:${port}${role === 'policy' ? '/v1' : ''}`;
        return { model: input.model, baseUrl, pid, stopQueue };
      } catch (err) {
        gpuLease.release();
        throw err;
      }
    });
  }

  return {
    startPolicyServer: (input: StartPolicyServerInput) => startServer('policy', input),
    startPrmServer: (input: StartPolicyServerInput) => startServer('PRM', input),

    /**
     * Stops a server on the machine that runs it. Any worker of that machine may get this (the stop queue is the
     * host's): one that did not start it stops it through its record, which makes sure the pid is still that server.
     */
    async stopPolicyServer(input: { pid: number }): Promise<void> {
      if (startedHere(input.pid)) {
        await stopBackground(input.pid);
      } else {
        const found = findRecordByPid(input.pid);
        if (found) await stopRecorded(found);
        else Context.current().log.warn(`no server with pid ${input.pid} is recorded on this machine; nothing to stop`);
      }
      gpuLease.release(input.pid);
    },
  };
}

/** Starts the configured server command on `port` and waits for its /health; a failed start leaves no process. */
async function launchServer(what: string, role: Role, port: number, input: StartPolicyServerInput, ctx: Context): Promise<number> {
  const logDir = resolve(input.storeRoot, 'logs');
  await mkdir(logDir, { recursive: true });
  const logPath = join(logDir, `${role.toLowerCase()}-server-${port}.log`);
  const [file, ...args] = fillCommand(input.serving.command, {
    python: input.python,
    checkpoint: resolve(input.checkpoint),
    model: input.model,
    port: String(port),
  }) as [string, ...string[]];
  // Recorded in the store's process registry: a retry, a restarted worker and `dev down` find it there. (No server
  // reads PRM_RAFT_PARENT_PID today: a server outliving its worker is the registry's to stop, once its run is over.)
  const pid = startBackground(file, args, logPath, { HF_HUB_OFFLINE: '1', PRM_RAFT_PARENT_PID: String(process.pid) }, {
    dir: processRegistryDir(input.storeRoot),
    kind: 'server',
    what,
    activity: currentActivity(ctx),
    log: logPath,
  });
  const deadline = Date.now() + input.serving.startupTimeoutSeconds * 1000;
  const health = `http://127.0.0.1:${port}/health`;
  try {
    for (;;) {
      ctx.heartbeat({ waitingFor: health });
      if (!isAlive(pid)) throw new TransientError(`${what} exited during start-up: ${await logTail(logPath)}`);
      if (await isHealthy(health)) return pid;
      if (Date.now() > deadline) throw new TransientError(`${what} not healthy after ${input.serving.startupTimeoutSeconds}s: ${await logTail(logPath)}`);
      ctx.cancellationSignal.throwIfAborted();
      await new Promise((r) => setTimeout(r, 500));
    }
  } catch (err) {
    await stopBackground(pid);
    throw err;
  }
}

async function isHealthy(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok;
  } catch {
    return false;
  }
}

async function logTail(path: string): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.trim().split('\n').slice(-15).join('\n') || `(no output; see ${path})`;
}
