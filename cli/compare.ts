// prm-raft compare — tune the policy once per reward model from one shared sampling stage, and tabulate the results.
import { comparePrmsInputFromConfig, type ComparePrmsInput } from '../core/comparison.js';
import type { Config } from '../core/config.js';
import { iterationDatasets } from './iterate.js';
import { configWorkflowCommand, runFolderIn } from './run-workflow.js';

const USAGE = 'prm-raft compare --config FILE [--policy CHECKPOINT_DIR] [--labels RUN] [--json] [--detach]';

/** `--labels RUN`: a finished labeling run the reward models with `train` learn from, instead of labeling first. */
export async function compareCommand(args: string[]): Promise<number> {
  const workflow = {
    type: 'comparePrms',
    idPrefix: 'compare',
    inputOf: async (c: Config, policy: string | undefined, { labels }: Record<string, string | undefined>) =>
      comparePrmsInputFromConfig(c, policy, labels === undefined ? undefined : await runFolderIn(labels, c.store.root)),
    // A finished labeling run given with --labels is read from the store, not from the labeling datasets.
    datasetsOf: (i: ComparePrmsInput) => [...iterationDatasets(i), ...(i.training?.labeling?.labeling.datasets ?? [])],
  };
  return configWorkflowCommand(args, USAGE, workflow, 'checkpoint', ['labels']);
}
