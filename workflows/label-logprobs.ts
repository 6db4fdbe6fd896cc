// The log-prob stage for a finished labeling run (issue 14): every solution's token log-probs under the policy π and
// under π0, per labels shard, on the gpu queue. `label export --kind prl` and `label agreement` start it and compute
// the PRL labels from its files; each shard's file is content-addressed, so asking again costs nothing.
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { LabelLogprobsInput, LabelLogprobsResult } from '../core/prl-export.js';

export async function labelLogprobs(input: LabelLogprobsInput): Promise<LabelLogprobsResult> {
  const gpu = proxyActivities<Activities>({
    taskQueue: input.taskQueues.gpu,
    startToCloseTimeout: `${input.timeoutHours} hours`,
    heartbeatTimeout: '2 minutes',
    // Each attempt resumes the job's partial file; bad input (exit 2) and out of memory (exit 3) do not come back.
    retry: { initialInterval: '30 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes', maximumAttempts: input.maxAttempts },
  });
  const same = input.initialPolicy.replace(/\/+$/, '') === input.policy.replace(/\/+$/, '');
  const job = { kind: 'labels' as const, prompt: input.prompt, logprobs: input.logprobs, python: input.python, storeRoot: input.storeRoot };
  const shards: LabelLogprobsResult['shards'] = [];
  // One shard after another: the gpu worker runs one job at a time anyway.
  for (const shard of input.shards) {
    const current = await gpu.logprobShard({ ...job, shard, checkpoint: input.policy });
    const initial = same ? null : await gpu.logprobShard({ ...job, shard, checkpoint: input.initialPolicy });
    shards.push({ current, initial });
  }
  return { shards };
}
