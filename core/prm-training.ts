// PRM training as a pipeline stage, the pure part: what the trainPrm workflow takes and returns, and the job file
// prm_train reads.
import { z } from 'zod';
import { loraJob, PrmLabels, PrmTrainingConfig, type Config } from './config.js';
import { LabelKind } from './labels.js';
import { ArtifactManifest } from './manifests.js';

export const TrainPrmInput = z.strictObject({
  name: z.string(),
  /** A finished `prm-raft label` run: its folder. */
  labelRunDir: z.string(),
  train: PrmLabels,
  training: PrmTrainingConfig.omit({ serving: true }),
  python: z.string(),
  storeRoot: z.string(),
  taskQueues: z.strictObject({ cpu: z.string(), gpu: z.string() }),
});
export type TrainPrmInput = z.infer<typeof TrainPrmInput>;

/** Where a trained PRM came from: enough to tell two checkpoints apart and to make one again. */
export const PrmProvenance = z.strictObject({
  labelRunDir: z.string(),
  labels: LabelKind,
  eta: z.number().nullable(),
  base: z.string(),
  /** The exported training set (content hash, solutions). */
  trainingData: ArtifactManifest,
  /** prm_train's job file, as the job read it. */
  job: z.record(z.string(), z.unknown()),
});
export type PrmProvenance = z.infer<typeof PrmProvenance>;

export const PrmTrainingResult = z.strictObject({
  checkpoint: z.string(),
  provenance: PrmProvenance,
  steps: z.number().int(),
  lossFirst: z.number().nullable(),
  lossLast: z.number().nullable(),
  cached: z.boolean(),
});
export type PrmTrainingResult = z.infer<typeof PrmTrainingResult>;

/** prm_train's job file (python-sft/prm_raft/prm_train.py documents each key). */
export function prmTrainJob(training: TrainPrmInput['training'], trainFile: string, outputDir: string): Record<string, unknown> {
  const t = training;
  return {
    base: t.base,
    train_file: trainFile,
    output_dir: outputDir,
    kind: t.kind,
    epochs: t.epochs,
    max_steps: t.maxSteps,
    learning_rate: t.learningRate,
    batch_size: t.batchSize,
    warmup_steps: t.warmupSteps,
    weight_decay: t.weightDecay,
    seed: t.seed,
    step_logprob_feature: t.stepLogprobFeature,
    lm_loss_weight: t.lmLossWeight,
    pairwise_loss_weight: t.pairwiseLossWeight,
    gradient_checkpointing: t.gradientCheckpointing,
    save_steps: t.saveSteps,
    ...(t.bf16 === undefined ? {} : { bf16: t.bf16 }),
    ...(t.lora ? { lora: loraJob(t.lora) } : {}),
    ...(t.maxLength === undefined ? {} : { max_length: t.maxLength }),
    ...(t.threads === undefined ? {} : { threads: t.threads }),
  };
}

/** `labels` → "hard", "soft", "er-2": how a training set and its PRM are named. */
export function labelsTag(train: PrmLabels): string {
  return train.labels === 'er' ? `er-${train.eta}` : train.labels;
}

export function trainPrmInputFromConfig(config: Config, labelRunDir: string, train: PrmLabels): TrainPrmInput {
  if (!config.prmTraining) throw new Error(`config "${config.name}" has no prmTraining section (the base checkpoint and the training settings)`);
  const { serving: _s, ...training } = config.prmTraining;
  return {
    name: `${config.name}-${labelsTag(train)}`,
    labelRunDir,
    train,
    training,
    python: config.python,
    storeRoot: config.store.root,
    taskQueues: config.temporal.taskQueues,
  };
}
