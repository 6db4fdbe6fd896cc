// prm-raft eval — start evaluatePolicy and follow it.
import { evaluatePolicyInputFromConfig } from '../core/evaluation.js';
import { configWorkflowCommand } from './run-workflow.js';

const USAGE = 'prm-raft eval --config FILE [--policy MODEL] [--json] [--detach]';

export function evalCommand(args: string[]): Promise<number> {
  return configWorkflowCommand(args, USAGE, { type: 'evaluatePolicy', idPrefix: 'eval', inputOf: evaluatePolicyInputFromConfig, datasetsOf: (i) => i.evaluation.datasets }, 'model');
}
