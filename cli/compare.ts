// prm-raft compare — tune the policy once per reward model from one shared sampling stage, and tabulate the results.
import { comparePrmsInputFromConfig } from '../core/comparison.js';
import { parseFlags } from './flags.js';
import { UsageError } from './load-config.js';
import { runFolder, configWorkflowCommand } from './run-workflow.js';

const USAGE = 'prm-raft compare --config FILE [--policy CHECKPOINT_DIR] [--labels RUN] [--json] [--detach]';

/** `--labels RUN`: a finished labeling run the reward models with `train` learn from, instead of labeling first. */
export async function compareCommand(args: string[]): Promise<number> {
  const at = args.indexOf('--labels');
  const labels = at >= 0 ? args[at + 1] : undefined;
  if (at >= 0 && (labels === undefined || labels.startsWith('--'))) throw new UsageError(`--labels needs a run (a folder or a run id)\nusage: ${USAGE}`);
  const rest = at >= 0 ? [...args.slice(0, at), ...args.slice(at + 2)] : args;
  const { values } = parseFlags(rest, { config: { type: 'string' }, policy: { type: 'string' }, json: { type: 'boolean' }, detach: { type: 'boolean' } }, USAGE);
  const labelRunDir = labels === undefined || !values.config ? undefined : await runFolder(labels, values.config);
  return configWorkflowCommand(rest, USAGE, { type: 'comparePrms', idPrefix: 'compare', inputOf: (c, policy) => comparePrmsInputFromConfig(c, policy, labelRunDir) }, 'checkpoint');
}
