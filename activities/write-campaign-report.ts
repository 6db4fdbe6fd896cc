// Stage: a campaign's state, table and report page in its run folder, after every iteration and when it stops.
import type { CampaignView } from '../core/campaign.js';
import { writeCampaignReport as writeFiles, type CampaignReportFiles } from '../report/write-report.js';

export function writeCampaignReport(input: { runDir: string; campaign: CampaignView }): Promise<CampaignReportFiles> {
  return writeFiles(input.runDir, input.campaign);
}
