// Every workflow the worker serves.
export { evaluatePolicy, evaluationProgressQuery } from './evaluate-policy.js';
