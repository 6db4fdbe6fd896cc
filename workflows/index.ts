// Every workflow the worker serves.
export { evaluatePolicy, evaluationProgressQuery } from './evaluate-policy.js';
export { raftIteration, raftProgressQuery } from './raft-iteration.js';
export { labelPrmData, labelProgressQuery } from './label-prm-data.js';
export { bestOfN, bestOfNProgressQuery } from './best-of-n.js';
export { comparePrms, compareProgressQuery } from './compare-prms.js';
export { trainPrm, trainPrmProgressQuery } from './train-prm.js';
export { raftCampaign, campaignQuery, nextIterationUpdate, scheduledTriggerSignal, pauseSignal, resumeSignal, stopSignal } from './raft-campaign.js';
export { triggerCampaign } from './trigger-campaign.js';
export { labelLogprobs } from './label-logprobs.js';
