// Stage: the SFT job on the gpu queue — launched from the config's command, followed through its JSON lines,
// its exit code turned into a retry decision. A restarted job resumes from its own last checkpoint.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { runProcess } from '../clients/process.js';
import { BadInputError, TransientError } from '../core/errors.js';
import { cacheDir } from '../core/layout.js';
import type { ArtifactManifest } from '../core/manifests.js';
import { SftResult, type RaftIterationInput } from '../core/raft.js';
import { fillCommand } from '../core/command.js';
import { contentKey, exists, readJson, writeFileAtomic } from '../store/files.js';
import { withFailureClasses } from './failures.js';
import { gpuLease } from './gpu-lease.js';

export interface RunSftInput {
  base: string;
  sftData: ArtifactManifest;
  sft: RaftIterationInput['sft'];
  /** This attempt's split of the effective batch (halved after an out-of-memory). */
  perDeviceBatchSize: number;
  gradientAccumulationSteps: number;
  python: string;
  storeRoot: string;
}

export interface SftHeartbeat {
  step: number;
  total: number;
  loss: number | null;
  /** Set while the job waits for this worker's GPU (a server started on it is still up). */
  waitingFor?: string;
}

/** Job events on stdout (DESIGN §4); anything else on stdout is ignored. */
interface JobEvent {
  event: string;
  step?: number;
  total?: number;
  loss?: number;
  output?: string;
  metrics?: { steps?: number; loss_first?: number; loss_last?: number };
}

export async function runSft(input: RunSftInput): Promise<SftResult> {
  return withFailureClasses(async () => {
    const { sft } = input;
    // The batch split is left out on purpose: after halving, the job resumes the same run from its checkpoint.
    const { command: _c, allowBatchHalving: _a, maxAttempts: _m, timeoutHours: _t, perDeviceBatchSize, gradientAccumulationSteps, ...hyper } = sft;
    const key = contentKey({ v: 1, base: resolve(input.base), data: input.sftData.sha256, hyper, effectiveBatch: perDeviceBatchSize * gradientAccumulationSteps });
    const outDir = resolve(cacheDir(input.storeRoot, 'sft', key));
    const resultPath = join(outDir, 'result.json');
    if (await exists(resultPath)) return { ...SftResult.parse(await readJson(resultPath)), cached: true };

    const ctx = Context.current();
    await gpuLease.acquire('an SFT job', {
      signal: ctx.cancellationSignal,
      onWait: (holder) => ctx.heartbeat({ step: 0, total: 0, loss: null, waitingFor: `the GPU, held by ${holder.what}` } satisfies SftHeartbeat),
    });
    try {
      return await runSftJob(input, outDir, ctx);
    } finally {
      gpuLease.release();
    }
  });
}

/** Writes the job's config, runs it to its end and turns its exit into a result or a failure class. */
async function runSftJob(input: RunSftInput, outDir: string, ctx: Context): Promise<SftResult> {
  const { sft } = input;
  const jobPath = join(outDir, 'job.json');
  // The job leaves this on out-of-memory; a marker from an earlier attempt says nothing about this one.
  const failurePath = join(outDir, 'failure.json');
  await rm(failurePath, { force: true });
  await writeFileAtomic(
    jobPath,
    JSON.stringify(
      {
        model: resolve(input.base),
        train_file: resolve(input.sftData.uri),
        output_dir: outDir,
        method: sft.method,
        ...(sft.lora ? { lora: { r: sft.lora.r, alpha: sft.lora.alpha, dropout: sft.lora.dropout, target_modules: sft.lora.targetModules } } : {}),
        epochs: sft.epochs,
        max_steps: sft.maxSteps,
        learning_rate: sft.learningRate,
        per_device_batch_size: input.perDeviceBatchSize,
        gradient_accumulation_steps: input.gradientAccumulationSteps,
        max_length: sft.maxLength,
        bf16: sft.bf16,
        gradient_checkpointing: sft.gradientCheckpointing,
        save_steps: sft.saveSteps,
        seed: sft.seed,
        warmup_ratio: sft.warmupRatio,
        lr_scheduler: sft.lrScheduler,
      },
      null,
      2,
    ),
  );

  let last: SftHeartbeat = { step: 0, total: 0, loss: null };
  let lossFirst: number | null = null;
  let done: JobEvent | null = null;
  // Liveness between progress lines (a 7B step can take minutes); a hung job is bounded by the timeout.
  const timer = setInterval(() => ctx.heartbeat(last), 10_000);
  const [file, ...args] = fillCommand(sft.command, { python: input.python, config: jobPath, output_dir: outDir }) as [string, ...string[]];
  let outcome;
  try {
    ctx.heartbeat(last);
    outcome = await runProcess(file, args, {
      signal: ctx.cancellationSignal,
      env: { HF_HUB_OFFLINE: '1' },
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
  if (outcome.exitCode === 2) throw new BadInputError(`SFT job rejected its config or data (${jobPath}): ${tail}`);
  const marker = (await exists(failurePath)) ? ((await readJson(failurePath)) as { kind?: string }) : null;
  // A multi-process launcher may turn the job's exit code 3 into 1; the marker file does not change.
  if (outcome.exitCode === 3 || (outcome.exitCode !== 0 && marker?.kind === 'out_of_memory')) {
    throw ApplicationFailure.nonRetryable(`SFT job ran out of GPU memory at per-device batch ${input.perDeviceBatchSize}: ${tail}`, 'OutOfMemory');
  }
  if (outcome.exitCode !== 0) throw new TransientError(`SFT job exited ${outcome.exitCode}; the next attempt resumes from its last checkpoint: ${tail}`);
  const finished = done as JobEvent | null;
  if (!finished?.output || !(await exists(finished.output))) throw new TransientError(`SFT job exited 0 without a usable "done" event: ${tail}`);
  const result: SftResult = {
    checkpoint: finished.output,
    steps: finished.metrics?.steps ?? last.step,
    lossFirst: finished.metrics?.loss_first ?? lossFirst,
    lossLast: finished.metrics?.loss_last ?? last.loss,
    perDeviceBatchSize: input.perDeviceBatchSize,
    gradientAccumulationSteps: input.gradientAccumulationSteps,
    cached: false,
  };
  await writeFileAtomic(join(outDir, 'result.json'), JSON.stringify(result, null, 2));
  return result;
}
