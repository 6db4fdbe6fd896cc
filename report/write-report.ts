// Writes a run's report files atomically into its folder: the HTML page and the tables it shows.
import { join } from 'node:path';
import type { BonReport } from '../core/best-of-n.js';
import type { CampaignView } from '../core/campaign.js';
import type { ComparisonTable } from '../core/comparison.js';
import { campaignMarkdown, campaignPage } from './campaign.js';
import { writeFileAtomic } from '../store/files.js';
import { bestOfNMarkdown, comparisonCsv, comparisonMarkdown } from './markdown.js';
import { bestOfNPage, comparisonPage } from './pages.js';

export interface ComparisonReportFiles {
  html: string;
  markdown: string;
  csv: string;
  json: string;
}

export interface BestOfNReportFiles {
  html: string;
  markdown: string;
}

export async function writeComparisonReport(dir: string, table: ComparisonTable, selectedScores: Record<string, number[]>): Promise<ComparisonReportFiles> {
  const files: ComparisonReportFiles = { html: join(dir, 'report.html'), markdown: join(dir, 'table.md'), csv: join(dir, 'table.csv'), json: join(dir, 'table.json') };
  // Render first: a plot that fails to render leaves the previous report untouched.
  const html = await comparisonPage(table, selectedScores);
  await writeFileAtomic(files.markdown, comparisonMarkdown(table));
  await writeFileAtomic(files.csv, comparisonCsv(table));
  await writeFileAtomic(files.json, JSON.stringify(table, null, 2) + '\n');
  await writeFileAtomic(files.html, html);
  return files;
}

export async function writeBestOfNReport(dir: string, report: BonReport): Promise<BestOfNReportFiles> {
  const files: BestOfNReportFiles = { html: join(dir, 'report.html'), markdown: join(dir, 'table.md') };
  const html = await bestOfNPage(report);
  await writeFileAtomic(files.markdown, bestOfNMarkdown(report));
  await writeFileAtomic(files.html, html);
  return files;
}

export interface CampaignReportFiles {
  html: string;
  markdown: string;
  json: string;
}

/** The campaign's state as JSON (what `prm-raft report` rebuilds the page from), its table and its page. */
export async function writeCampaignReport(dir: string, view: CampaignView): Promise<CampaignReportFiles> {
  const files: CampaignReportFiles = { html: join(dir, 'report.html'), markdown: join(dir, 'table.md'), json: join(dir, 'campaign.json') };
  const html = await campaignPage(view);
  await writeFileAtomic(files.json, JSON.stringify(view, null, 2) + '\n');
  await writeFileAtomic(files.markdown, campaignMarkdown(view));
  await writeFileAtomic(files.html, html);
  return files;
}
