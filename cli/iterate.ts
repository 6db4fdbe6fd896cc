// prm-raft iterate — start one RAFT iteration and follow it stage by stage.
import { raftIterationInputFromConfig } from '../core/raft.js';
import { configWorkflowCommand } from './run-workflow.js';

const USAGE = 'prm-raft iterate --config FILE [--policy CHECKPOINT_DIR] [--json] [--detach]';

export function iterateCommand(args: string[]): Promise<number> {
  return configWorkflowCommand(args, USAGE, { type: 'raftIteration', idPrefix: 'raft', inputOf: raftIterationInputFromConfig }, 'checkpoint');
}
