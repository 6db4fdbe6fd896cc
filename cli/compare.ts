// prm-raft compare — tune the policy once per reward model from one shared sampling stage, and tabulate the results.
import { comparePrmsInputFromConfig } from '../core/comparison.js';
import { parseFlags } from './flags.js';
import { UsageError } from './load-config.js';
import { checkpointFlag, startFromConfig } from './run-workflow.js';

const USAGE = 'prm-raft compare --config FILE [--policy CHECKPOINT_DIR] [--json] [--detach]';

export async function compareCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    { config: { type: 'string' }, policy: { type: 'string' }, json: { type: 'boolean', default: false }, detach: { type: 'boolean', default: false } },
    USAGE,
  );
  if (!values.config || positionals.length > 0) throw new UsageError(`usage: ${USAGE}`);
  const policy = await checkpointFlag(values.policy);
  return startFromConfig(values.config, { type: 'comparePrms', idPrefix: 'compare', inputOf: (c) => comparePrmsInputFromConfig(c, policy) }, values);
}
