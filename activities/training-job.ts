// A training job on the gpu queue (SFT, PRM training): launched from the config's command once this worker's GPU
// is free, followed through its JSON lines (DESIGN §4), its exit code turned into a retry decision. A restarted job
// resumes from its own last checkpoint.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runProcess } from '../clients/process.js';
import { processRegistryDir, stopEarlierAttempts } from '../clients/process-registry.js';
import type { ActivityRef } from '../core/process-record.js';
import { fillCommand } from '../core/command.js';
import { BadInputError, TransientError } from '../core/errors.js';
import { exists, readJson, writeFileAtomic } from '../store/files.js';
import { gpuLease } from './gpu-lease.js';

export interface TrainingHeartbeat {
  step: number;
  total: number;
  loss: number | null;
  /** Set while the job waits for this worker's GPU (a server started on it is still up). */
  waitingFor?: string;
}

/** Job events on stdout; anything else on stdout is ignored. */
interface JobEvent {
  event: string;
  step?: number;
  total?: number;
  loss?: number;
  output?: string;
  metrics?: { steps?: number; loss_first?: number; loss_last?: number };
}

export interface TrainingJobOutcome {
  /** The checkpoint the job's done event names (it exists). */
  output: string;
  steps: number;
  lossFirst: number | null;
  lossLast: number | null;
}

export interface TrainingJob {
  /** "SFT job", "PRM training job": how messages name it. */
  what: string;
  command: readonly string[];
  python: string;
  /** Written to `outDir/job.json`, the `{config}` of the command. */
  job: Record<string, unknown>;
  outDir: string;
  /** Said when the job runs out of GPU memory (what the caller can change). */
  outOfMemoryHint: string;
  /** The store whose process registry records the job while it runs. */
  storeRoot: string;
}

/** The activity attempt running now, as a process record names it (null outside a workflow). */
export function currentActivity(ctx: Context): ActivityRef | null {
  const { workflowExecution, activityId, activityType, attempt } = ctx.info;
  if (!workflowExecution) return null;
  return { workflowId: workflowExecution.workflowId, runId: workflowExecution.runId, activityId, activityType, attempt };
}

/** Runs the job to its end under this worker's GPU lease, heartbeating its progress. */
export async function runTrainingJob(spec: TrainingJob): Promise<TrainingJobOutcome> {
  const ctx = Context.current();
  // An earlier attempt whose worker died may have left its job running: two jobs must never share an output folder.
  await stopEarlierAttempts(processRegistryDir(spec.storeRoot), currentActivity(ctx), (line) => ctx.log.warn(line));
  await gpuLease.acquire(`an ${spec.what}`, {
    signal: ctx.cancellationSignal,
    onWait: (holder) => ctx.heartbeat({ step: 0, total: 0, loss: null, waitingFor: `the GPU, held by ${holder.what}` } satisfies TrainingHeartbeat),
  });
  try {
    return await followJob(spec, ctx);
  } finally {
    gpuLease.release();
  }
}

async function followJob(spec: TrainingJob, ctx: Context): Promise<TrainingJobOutcome> {
  const jobPath = join(spec.outDir, 'job.json');
  // The job leaves this on out-of-memory; a marker from an earlier attempt says nothing about this one.
  const failurePath = join(spec.outDir, 'failure.json');
  await rm(failurePath, { force: true });
  await writeFileAtomic(jobPath, JSON.stringify(spec.job, null, 2));

  let last: TrainingHeartbeat = { step: 0, total: 0, loss: null };
  let lossFirst: number | null = null;
  let done: JobEvent | null = null;
  // Liveness between progress lines (a 7B step can take minutes); a hung job is bounded by the timeout.
  const timer = setInterval(() => ctx.heartbeat(last), 10_000);
  const [file, ...args] = fillCommand(spec.command, { python: spec.python, config: jobPath, output_dir: spec.outDir }) as [string, ...string[]];
  let outcome;
  try {
    ctx.heartbeat(last);
    outcome = await runProcess(file, args, {
      signal: ctx.cancellationSignal,
      env: { HF_HUB_OFFLINE: '1' },
      record: { dir: processRegistryDir(spec.storeRoot), kind: 'job', what: spec.what, activity: currentActivity(ctx) },
      onStdoutLine: (line) => {
        let e: JobEvent;
        try {
          e = JSON.parse(line) as JobEvent;
        } catch {
          return;
        }
        if (e.event === 'progress' && typeof e.step === 'number') {
          last = { step: e.step, total: e.total ?? last.total, loss: e.loss ?? last.loss };
          lossFirst ??= e.loss ?? null;
          ctx.heartbeat(last);
        } else if (e.event === 'done') {
          done = e;
        }
      },
    });
  } finally {
    clearInterval(timer);
  }
  const tail = outcome.stderrTail || 'no message';
  if (outcome.exitCode === 2) throw new BadInputError(`${spec.what} rejected its config or data (${jobPath}): ${tail}`);
  const marker = (await exists(failurePath)) ? ((await readJson(failurePath)) as { kind?: string }) : null;
  // A multi-process launcher may turn the job's exit code 3 into 1; the marker file does not change.
  if (outcome.exitCode === 3 || (outcome.exitCode !== 0 && marker?.kind === 'out_of_memory')) {
    throw ApplicationFailure.nonRetryable(`${spec.what} ran out of GPU memory ${spec.outOfMemoryHint}: ${tail}`, 'OutOfMemory');
  }
  if (outcome.exitCode !== 0) throw new TransientError(`${spec.what} exited ${outcome.exitCode}; the next attempt resumes from its last checkpoint: ${tail}`);
  const finished = done as JobEvent | null;
  if (!finished?.output || !(await exists(finished.output))) throw new TransientError(`${spec.what} exited 0 without a usable "done" event: ${tail}`);
  return {
    output: finished.output,
    steps: finished.metrics?.steps ?? last.step,
    lossFirst: finished.metrics?.loss_first ?? lossFirst,
    lossLast: finished.metrics?.loss_last ?? last.loss,
  };
}
