// prm-raft compare — tune the policy once per reward model from one shared sampling stage, and tabulate the results.
import { comparePrmsInputFromConfig, type ComparePrmsInput } from '../core/comparison.js';
import type { Config } from '../core/config.js';
import { parseFlags } from './flags.js';
import { iterationDatasets } from './iterate.js';
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
  const workflow = {
    type: 'comparePrms',
    idPrefix: 'compare',
    inputOf: (c: Config, policy: string | undefined) => comparePrmsInputFromConfig(c, policy, labelRunDir),
    // A finished labeling run given with --labels is read from the store, not from the labeling datasets.
    datasetsOf: (i: ComparePrmsInput) => [...iterationDatasets(i), ...(i.training?.labeling?.labeling.datasets ?? [])],
  };
  return configWorkflowCommand(rest, USAGE, workflow, 'checkpoint');
}
