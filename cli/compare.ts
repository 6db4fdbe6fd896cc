// prm-raft compare — tune the policy once per reward model from one shared sampling stage, and tabulate the results.
import { stat } from 'node:fs/promises';
import { comparePrmsInputFromConfig } from '../core/comparison.js';
import { connectClient, resolveTemporalTarget } from '../stack/temporal-connection.js';
import { parseFlags } from './flags.js';
import { loadConfig, UsageError } from './load-config.js';
import { newWorkflowId, startAndFollow } from './run-workflow.js';

const USAGE = 'prm-raft compare --config FILE [--policy CHECKPOINT_DIR] [--json] [--detach]';

export async function compareCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    { config: { type: 'string' }, policy: { type: 'string' }, json: { type: 'boolean', default: false }, detach: { type: 'boolean', default: false } },
    USAGE,
  );
  if (!values.config || positionals.length > 0) throw new UsageError(`usage: ${USAGE}`);
  const config = await loadConfig(values.config);
  if (values.policy !== undefined && !(await stat(values.policy).then((s) => s.isDirectory(), () => false))) {
    throw new UsageError(`--policy: ${values.policy} is not a checkpoint directory (the pipeline serves it itself for sampling and evaluation)`);
  }
  let input;
  try {
    input = comparePrmsInputFromConfig(config, values.policy);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const client = await connectClient(resolveTemporalTarget(config.temporal));
  return startAndFollow(
    client,
    { type: 'comparePrms', workflowId: newWorkflowId('compare', config.name), taskQueue: config.temporal.taskQueues.cpu, input },
    { json: values.json, detach: values.detach },
  );
}
