// prm-raft iterate — start one RAFT iteration and follow it stage by stage.
import { raftIterationInputFromConfig } from '../core/raft.js';
import { parseFlags } from './flags.js';
import { UsageError } from './load-config.js';
import { checkpointFlag, startFromConfig } from './run-workflow.js';

const USAGE = 'prm-raft iterate --config FILE [--policy CHECKPOINT_DIR] [--json] [--detach]';

export async function iterateCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    { config: { type: 'string' }, policy: { type: 'string' }, json: { type: 'boolean', default: false }, detach: { type: 'boolean', default: false } },
    USAGE,
  );
  if (!values.config || positionals.length > 0) throw new UsageError(`usage: ${USAGE}`);
  const policy = await checkpointFlag(values.policy);
  return startFromConfig(values.config, { type: 'raftIteration', idPrefix: 'raft', inputOf: (c) => raftIterationInputFromConfig(c, policy) }, values);
}
