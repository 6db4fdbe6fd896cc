// prm-raft eval — start evaluatePolicy and follow it.
import { evaluatePolicyInputFromConfig } from '../core/evaluation.js';
import { connectClient, resolveTemporalTarget } from '../stack/temporal-connection.js';
import { parseFlags } from './flags.js';
import { loadConfig, UsageError } from './load-config.js';
import { newWorkflowId, startAndFollow } from './run-workflow.js';

const USAGE = 'prm-raft eval --config FILE [--policy MODEL] [--json] [--detach]';

export async function evalCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    { config: { type: 'string' }, policy: { type: 'string' }, json: { type: 'boolean', default: false }, detach: { type: 'boolean', default: false } },
    USAGE,
  );
  if (!values.config || positionals.length > 0) throw new UsageError(`usage: ${USAGE}`);
  const config = await loadConfig(values.config);
  const client = await connectClient(resolveTemporalTarget(config.temporal));
  return startAndFollow(
    client,
    { type: 'evaluatePolicy', workflowId: newWorkflowId('eval', config.name), taskQueue: config.temporal.taskQueues.cpu, input: evaluatePolicyInputFromConfig(config, values.policy) },
    { json: values.json, detach: values.detach },
  );
}
