// What a campaign's Schedule starts: one signal to the campaign, which takes it as `next` when idle and counts it
// as skipped otherwise (a Schedule can only start workflows, and a workflow can signal but not update another).
import { getExternalWorkflowHandle } from '@temporalio/workflow';
import { scheduledTriggerSignal } from './raft-campaign.js';

export async function triggerCampaign(input: { campaignId: string }): Promise<void> {
  await getExternalWorkflowHandle(input.campaignId).signal(scheduledTriggerSignal);
}
