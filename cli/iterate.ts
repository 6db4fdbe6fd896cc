// prm-raft iterate — start one RAFT iteration and follow it stage by stage.
import { stat } from 'node:fs/promises';
import { raftIterationInputFromConfig } from '../core/raft.js';
import { connectClient, resolveTemporalTarget } from '../stack/temporal-connection.js';
import { parseFlags } from './flags.js';
import { loadConfig, UsageError } from './load-config.js';
import { newWorkflowId, startAndFollow } from './run-workflow.js';

const USAGE = 'prm-raft iterate --config FILE [--policy CHECKPOINT_DIR] [--json] [--detach]';

export async function iterateCommand(args: string[]): Promise<number> {
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
    input = raftIterationInputFromConfig(config, values.policy);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const client = await connectClient(resolveTemporalTarget(config.temporal));
  return startAndFollow(
    client,
    { type: 'raftIteration', workflowId: newWorkflowId('raft', config.name), taskQueue: config.temporal.taskQueues.cpu, input },
    { json: values.json, detach: values.detach },
  );
}
