// Every shard of a run's datasets, within what one workflow history can hold.
import { ApplicationFailure } from '@temporalio/workflow';
import { planShards, type ShardPlan } from '../core/evaluation.js';
import type { DatasetManifest } from '../core/manifests.js';

/**
 * Each shard costs a handful of history events and its inputs; past this many a run nears Temporal's history
 * warnings (10K events / 10 MB), so it is refused up front with the size that would fit.
 */
export const MAX_SHARDS_PER_RUN = 1000;

export function shardJobs(datasets: DatasetManifest[], shardSize: number, setting: string): Array<{ dataset: DatasetManifest; shard: ShardPlan }> {
  const jobs = datasets.flatMap((dataset) => planShards(dataset.count, shardSize).map((shard) => ({ dataset, shard })));
  if (jobs.length > MAX_SHARDS_PER_RUN) {
    const items = datasets.reduce((n, d) => n + d.count, 0);
    throw ApplicationFailure.nonRetryable(
      `${items} items in shards of ${shardSize} make ${jobs.length} shards, more than one run holds (${MAX_SHARDS_PER_RUN}); set ${setting} to at least ${Math.ceil(items / MAX_SHARDS_PER_RUN)}`,
      'BadInput',
    );
  }
  return jobs;
}
