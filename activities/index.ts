// Every activity the worker serves; workflows import only the types.
import { bestOfNTables } from './best-of-n-tables.js';
import { checkPolicy } from './check-policy.js';
import { checkPrm } from './check-prm.js';
import { compareEvaluations } from './compare-evaluations.js';
import { evaluateShard } from './evaluate-shard.js';
import { labelShard, writeLabelPlan } from './label-shard.js';
import { logprobShard } from './logprob-shard.js';
import { prepareDataset } from './prepare-dataset.js';
import { runSft } from './run-sft.js';
import { sampleShard } from './sample-shard.js';
import { scoreShard } from './score-shard.js';
import { selectResponses } from './select-responses.js';
import { createServingActivities } from './serve-policy.js';
import { exportPrmTrainingData, runPrmTraining } from './train-prm.js';
import { writeCampaignReport } from './write-campaign-report.js';
import { writeComparisonReportFiles } from './write-comparison-report.js';
import { mergeShardResults, writeRunSummary } from './write-results.js';

export interface ActivityDeps {
  /** This worker's own task queue: activities that must run where a server was started go there. */
  workerQueue: string;
}

export function createActivities(deps: ActivityDeps) {
  return {
    prepareDataset,
    checkPolicy,
    evaluateShard,
    mergeShardResults,
    writeRunSummary,
    compareEvaluations,
    checkPrm,
    sampleShard,
    scoreShard,
    selectResponses,
    runSft,
    writeLabelPlan,
    labelShard,
    writeComparisonReportFiles,
    writeCampaignReport,
    bestOfNTables,
    exportPrmTrainingData,
    runPrmTraining,
    logprobShard,
    ...createServingActivities(deps.workerQueue),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type EvaluationActivities = Pick<Activities, 'prepareDataset' | 'checkPolicy' | 'evaluateShard' | 'mergeShardResults' | 'writeRunSummary'>;
