// Every workflow the worker serves.
export { evaluatePolicy, evaluationProgressQuery } from './evaluate-policy.js';
export { raftIteration, raftProgressQuery } from './raft-iteration.js';
