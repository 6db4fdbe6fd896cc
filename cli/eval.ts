// prm-raft eval — start evaluatePolicy and follow it.
import { evaluatePolicyInputFromConfig } from '../core/evaluation.js';
import { parseFlags } from './flags.js';
import { UsageError } from './load-config.js';
import { startFromConfig } from './run-workflow.js';

const USAGE = 'prm-raft eval --config FILE [--policy MODEL] [--json] [--detach]';

export async function evalCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    { config: { type: 'string' }, policy: { type: 'string' }, json: { type: 'boolean', default: false }, detach: { type: 'boolean', default: false } },
    USAGE,
  );
  if (!values.config || positionals.length > 0) throw new UsageError(`usage: ${USAGE}`);
  return startFromConfig(values.config, { type: 'evaluatePolicy', idPrefix: 'eval', inputOf: (c) => evaluatePolicyInputFromConfig(c, values.policy) }, values);
}
