// The activity options of shard activities (sampling, scoring, evaluating, labeling), one set for every workflow.
import type { ActivityOptions } from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';

/**
 * Shards heartbeat on a clock (activities/heartbeat.ts), also while a client call retries and while the grader
 * runs, so this no longer depends on how long a request may take: a silent shard is a dead worker, handed to
 * another within two minutes.
 */
export const SHARD_HEARTBEAT_TIMEOUT = '2 minutes';

export function shardActivityOptions(taskQueue: string, startToCloseTimeout: Duration): ActivityOptions {
  return {
    taskQueue,
    startToCloseTimeout,
    heartbeatTimeout: SHARD_HEARTBEAT_TIMEOUT,
    retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 8 },
  };
}
