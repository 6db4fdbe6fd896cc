// PRM training as a durable stage: a finished labeling run's labels (kind and η chosen here) → a trained PRM
// checkpoint with its provenance. Each stage is content-addressed; the training job resumes after a crash.
import { defineQuery, proxyActivities, setHandler } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { PrmTrainingResult, TrainPrmInput } from '../core/prm-training.js';

export const trainPrmProgressQuery = defineQuery<{ stage: 'exporting' | 'training' | 'done' }>('progress');

export async function trainPrm(input: TrainPrmInput): Promise<PrmTrainingResult> {
  const progress: { stage: 'exporting' | 'training' | 'done' } = { stage: 'exporting' };
  setHandler(trainPrmProgressQuery, () => progress);
  const quick = proxyActivities<Activities>({
    taskQueue: input.taskQueues.cpu,
    startToCloseTimeout: '1 hour',
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 5 },
  });
  const training = proxyActivities<Activities>({
    taskQueue: input.taskQueues.gpu,
    startToCloseTimeout: `${input.training.timeoutHours} hours`,
    heartbeatTimeout: '2 minutes',
    // Each attempt resumes from the job's saved state; bad data and out-of-memory never come back here.
    retry: { initialInterval: '30 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes', maximumAttempts: input.training.maxAttempts },
  });
  const data = await quick.exportPrmTrainingData({ labelRunDir: input.labelRunDir, train: input.train, storeRoot: input.storeRoot });
  progress.stage = 'training';
  const result = await training.runPrmTraining({
    labelRunDir: input.labelRunDir,
    train: input.train,
    data,
    training: input.training,
    python: input.python,
    storeRoot: input.storeRoot,
  });
  progress.stage = 'done';
  return result;
}
