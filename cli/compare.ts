// prm-raft compare — tune the policy once per reward model from one shared sampling stage, and tabulate the results.
import { comparePrmsInputFromConfig } from '../core/comparison.js';
import { configWorkflowCommand } from './run-workflow.js';

const USAGE = 'prm-raft compare --config FILE [--policy CHECKPOINT_DIR] [--json] [--detach]';

export function compareCommand(args: string[]): Promise<number> {
  return configWorkflowCommand(args, USAGE, { type: 'comparePrms', idPrefix: 'compare', inputOf: comparePrmsInputFromConfig }, 'checkpoint');
}
