// Every activity the worker serves; workflows import only the type.
import { checkPolicy } from './check-policy.js';
import { evaluateShard } from './evaluate-shard.js';
import { prepareDataset } from './prepare-dataset.js';
import { mergeShardResults, writeRunSummary } from './write-results.js';

export function createActivities() {
  return { prepareDataset, checkPolicy, evaluateShard, mergeShardResults, writeRunSummary };
}

export type EvaluationActivities = ReturnType<typeof createActivities>;
