// prm-raft report RUN — rebuild a comparison's, best-of-N run's or campaign's HTML report and tables from its stored artifacts.
import { join } from 'node:path';
import { writeComparisonReportFiles } from '../activities/write-comparison-report.js';
import { BestOfNResult } from '../core/best-of-n.js';
import { ComparisonResult } from '../core/comparison.js';
import { writeBestOfNReport, writeCampaignReport } from '../report/write-report.js';
import { CampaignView } from '../core/campaign.js';
import { exists, readJson } from '../store/files.js';
import { DEFAULT_CONFIG, parseFlags } from './flags.js';
import { UsageError } from './load-config.js';
import { runFolder } from './run-workflow.js';

const USAGE = 'prm-raft report RUN [--config FILE]   (RUN: a run id, or its folder)';

export async function reportCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { config: { type: 'string', default: DEFAULT_CONFIG } }, USAGE);
  const [run, ...extra] = positionals;
  if (!run || extra.length > 0) throw new UsageError(`usage: ${USAGE}`);
  const dir = await runFolder(run, values.config);
  // A campaign keeps its state beside its report, rewritten after every iteration: no summary to wait for.
  const campaignPath = join(dir, 'campaign.json');
  if (await exists(campaignPath)) {
    const files = await writeCampaignReport(dir, CampaignView.parse(await readJson(campaignPath)));
    process.stdout.write(`${files.html}\n`);
    return 0;
  }
  const summaryPath = join(dir, 'summary.json');
  if (!(await exists(summaryPath))) {
    throw new UsageError(`${dir} has no summary.json: the run has not finished (\`prm-raft status ${run}\` shows where it is)`);
  }
  const summary = await readJson(summaryPath);
  const comparison = ComparisonResult.safeParse(summary);
  if (comparison.success) {
    const files = await writeComparisonReportFiles({ runDir: dir, table: comparison.data.table, selected: comparison.data.selected });
    process.stdout.write(`${files.html}\n`);
    return 0;
  }
  const bestOfN = BestOfNResult.safeParse(summary);
  if (bestOfN.success) {
    const files = await writeBestOfNReport(dir, bestOfN.data.report);
    process.stdout.write(`${files.html}\n`);
    return 0;
  }
  throw new UsageError(`${summaryPath} is not the summary of a comparison or a best-of-N run; only those and campaigns have reports`);
}
