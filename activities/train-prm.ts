// Stages of PRM training: a labeling run's counts → a training set (cpu), then the training job (gpu), both
// content-addressed, so a rerun reuses what is finished and a crashed job resumes from its own saved state.
import { join, resolve } from 'node:path';
import { cacheDir } from '../core/layout.js';
import type { ArtifactManifest } from '../core/manifests.js';
import type { PrmLabels } from '../core/config.js';
import { PrmTrainingResult, prmTrainJob, type TrainPrmInput } from '../core/prm-training.js';
import { exportLabels, readFinishedLabelRun } from '../store/label-export.js';
import { contentKey, exists, readJson, sha256File, writeFileAtomic } from '../store/files.js';
import { withFailureClasses } from './failures.js';
import { runTrainingJob } from './training-job.js';

export interface ExportPrmTrainingDataInput {
  labelRunDir: string;
  train: PrmLabels;
  storeRoot: string;
}

export async function exportPrmTrainingData(input: ExportPrmTrainingDataInput): Promise<ArtifactManifest> {
  return withFailureClasses(async () => {
    const summary = await readFinishedLabelRun(input.labelRunDir);
    // The shards' hashes are the run's content: the same counts give the same training set, wherever the run is.
    const key = contentKey({ v: 1, shards: summary.shards.map((s) => s.sha256), train: input.train });
    const dir = cacheDir(input.storeRoot, 'prm-data', key);
    const manifestPath = join(dir, 'manifest.json');
    if (await exists(manifestPath)) return (await readJson(manifestPath)) as ArtifactManifest;
    const uri = join(dir, 'train.jsonl');
    const stats = await exportLabels({ runDir: input.labelRunDir, kind: input.train.labels, eta: input.train.eta, format: 'jsonl', out: uri });
    const manifest: ArtifactManifest = { uri, count: stats.solutions, sha256: await sha256File(uri) };
    await writeFileAtomic(manifestPath, JSON.stringify(manifest, null, 2));
    return manifest;
  });
}

export interface RunPrmTrainingInput {
  labelRunDir: string;
  train: PrmLabels;
  data: ArtifactManifest;
  training: TrainPrmInput['training'];
  python: string;
  storeRoot: string;
}

export async function runPrmTraining(input: RunPrmTrainingInput): Promise<PrmTrainingResult> {
  return withFailureClasses(async () => {
    // What cannot change the weights stays out of the key (the job's own identity check leaves them out too).
    const { command: _c, maxAttempts: _m, timeoutHours: _t, threads: _th, saveSteps: _s, gradientCheckpointing: _g, ...hyper } = input.training;
    const base = resolve(input.training.base);
    // The labels' kind and η are in the key although the data's hash carries them: when two kinds give the same
    // numbers (all counts 0 or m), each checkpoint must still say truthfully where it came from.
    const key = contentKey({ v: 1, base, data: input.data.sha256, train: input.train, hyper });
    const outDir = resolve(cacheDir(input.storeRoot, 'prm', key));
    const resultPath = join(outDir, 'result.json');
    if (await exists(resultPath)) return { ...PrmTrainingResult.parse(await readJson(resultPath)), cached: true };

    const checkpoint = join(outDir, 'checkpoint');
    const job = prmTrainJob({ ...input.training, base }, resolve(input.data.uri), checkpoint);
    const outcome = await runTrainingJob({
      what: 'PRM training job',
      command: input.training.command,
      python: input.python,
      storeRoot: input.storeRoot,
      outDir,
      job,
      outOfMemoryHint: `at batch ${input.training.batchSize} (lower prmTraining.batchSize, or set maxLength)`,
    });
    const provenance = { labelRunDir: resolve(input.labelRunDir), labels: input.train.labels, eta: input.train.eta ?? null, base, trainingData: input.data, job };
    // Beside the weights, so a checkpoint copied elsewhere still says where it came from.
    await writeFileAtomic(join(outcome.output, 'provenance.json'), JSON.stringify(provenance, null, 2));
    const result: PrmTrainingResult = { checkpoint: outcome.output, provenance, steps: outcome.steps, lossFirst: outcome.lossFirst, lossLast: outcome.lossLast, cached: false };
    await writeFileAtomic(resultPath, JSON.stringify(result, null, 2));
    return result;
  });
}
