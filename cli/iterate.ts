// prm-raft iterate — start one RAFT iteration and follow it stage by stage.
import { raftIterationInputFromConfig, type RaftIterationInput } from '../core/raft.js';
import { configWorkflowCommand } from './run-workflow.js';

const USAGE = 'prm-raft iterate --config FILE [--policy CHECKPOINT_DIR] [--json] [--detach]';

export function iterateCommand(args: string[]): Promise<number> {
  return configWorkflowCommand(args, USAGE, { type: 'raftIteration', idPrefix: 'raft', inputOf: raftIterationInputFromConfig, datasetsOf: iterationDatasets }, 'checkpoint');
}

/** What an iteration reads: its prompt sets, then the evaluation sets it grades the policy on before and after. */
export function iterationDatasets(input: Pick<RaftIterationInput, 'sampling' | 'evaluation'>) {
  return [...input.sampling.datasets, ...input.evaluation.datasets];
}
