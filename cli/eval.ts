// prm-raft eval — start evaluatePolicy and follow it.
import { randomBytes } from 'node:crypto';
import { evaluatePolicyInputFromConfig } from '../core/evaluation.js';
import { connectClient, resolveTemporalTarget } from '../stack/temporal-connection.js';
import { parseFlags } from './flags.js';
import { loadConfig, UsageError } from './load-config.js';
import { formatAccuracyTable, watchRun } from './watch.js';

const USAGE = 'prm-raft eval --config FILE [--policy MODEL] [--json] [--detach]';

export async function evalCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    { config: { type: 'string' }, policy: { type: 'string' }, json: { type: 'boolean', default: false }, detach: { type: 'boolean', default: false } },
    USAGE,
  );
  if (!values.config || positionals.length > 0) throw new UsageError(`usage: ${USAGE}`);
  const config = await loadConfig(values.config);
  const input = evaluatePolicyInputFromConfig(config, values.policy);
  const target = resolveTemporalTarget(config.temporal);
  const client = await connectClient(target);
  const workflowId = `eval-${config.name}-${new Date().toISOString().replace(/[-:T.Z]/g, '').slice(0, 14)}-${randomBytes(2).toString('hex')}`;
  await client.workflow.start('evaluatePolicy', { taskQueue: config.temporal.taskQueues.cpu, workflowId, args: [input] });
  process.stderr.write(`started ${workflowId} on ${target.address} (namespace ${target.namespace})\n`);
  if (values.detach) {
    process.stdout.write(`${workflowId}\n`);
    return 0;
  }
  const outcome = await watchRun(client, workflowId);
  if (outcome.kind === 'detached') return 0;
  process.stdout.write(values.json ? `${JSON.stringify(outcome.result, null, 2)}\n` : formatAccuracyTable(outcome.result));
  return 0;
}
