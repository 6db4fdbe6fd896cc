// Stage: the SFT job on the gpu queue, content-addressed by its base, data and settings.
import { join, resolve } from 'node:path';
import { loraJob } from '../core/config.js';
import { cacheDir } from '../core/layout.js';
import type { ArtifactManifest } from '../core/manifests.js';
import { SftResult, type RaftIterationInput } from '../core/raft.js';
import { contentKey, exists, readJson, writeFileAtomic } from '../store/files.js';
import { withFailureClasses } from './failures.js';
import { runTrainingJob } from './training-job.js';

export type { TrainingHeartbeat as SftHeartbeat } from './training-job.js';

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

export async function runSft(input: RunSftInput): Promise<SftResult> {
  return withFailureClasses(async () => {
    const { sft } = input;
    // The batch split is left out on purpose: after halving, the job resumes the same run from its checkpoint.
    const { command: _c, allowBatchHalving: _a, maxAttempts: _m, timeoutHours: _t, perDeviceBatchSize, gradientAccumulationSteps, ...hyper } = sft;
    const key = contentKey({ v: 1, base: resolve(input.base), data: input.sftData.sha256, hyper, effectiveBatch: perDeviceBatchSize * gradientAccumulationSteps });
    const outDir = resolve(cacheDir(input.storeRoot, 'sft', key));
    const resultPath = join(outDir, 'result.json');
    if (await exists(resultPath)) return { ...SftResult.parse(await readJson(resultPath)), cached: true };

    const outcome = await runTrainingJob({
      what: 'SFT job',
      command: sft.command,
      python: input.python,
      storeRoot: input.storeRoot,
      outDir,
      outOfMemoryHint: `at per-device batch ${input.perDeviceBatchSize}`,
      job: {
        model: resolve(input.base),
        train_file: resolve(input.sftData.uri),
        output_dir: outDir,
        method: sft.method,
        ...(sft.lora ? { lora: loraJob(sft.lora) } : {}),
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
    });
    const result: SftResult = {
      checkpoint: outcome.output,
      steps: outcome.steps,
      lossFirst: outcome.lossFirst,
      lossLast: outcome.lossLast,
      perDeviceBatchSize: input.perDeviceBatchSize,
      gradientAccumulationSteps: input.gradientAccumulationSteps,
      cached: false,
    };
    await writeFileAtomic(resultPath, JSON.stringify(result, null, 2));
    return result;
  });
}
